"""Build the course website into build/site/ from the lessons' stored outputs (``make site``).

Nothing is re-executed: the pages show what ``make notebooks`` stored. The site works with no
internet: MathJax is copied in from site/node_modules, widget scripts are not loaded (each
explorer shows its PNG snapshot), and tools/check_site.py refuses any page that loads a script,
stylesheet or font from another host.

The build stages a copy of the sources in build/site-src/ with the repository's layout
(notebooks/, teaching/), so the links between lessons, glossary and guides stay valid:
- each lesson, with its alt text where myst-nb reads it (``mystnb.image.alt``) and the Colab
  set-up cell hidden (a reader of the website launches the notebook instead);
- the glossary, the instructor guides and the handout (tools/handout.py), with the handout's
  one-page print version at handout-print.html, which ``make handout`` prints to PDF;
- the table of contents, from the lessons and guides found on disk.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import site_assets
from handout import write_handout, write_print_page
from lesson_marks import COLAB_TAG

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "site-src"
OUTPUT = ROOT / "build" / "site"
HTML = OUTPUT / "_build" / "html"


def lessons() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def guides() -> list[Path]:
    return sorted((ROOT / "teaching").glob("[0-9][0-9]_*.md"))


def stage_notebook(source: Path, target: Path) -> None:
    notebook = nbformat.read(source, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if COLAB_TAG in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
        alt = cell.metadata.get("alt")
        if alt:
            cell.metadata.setdefault("mystnb", {}).setdefault("image", {})["alt"] = alt
    nbformat.write(notebook, target)


def table_of_contents() -> str:
    lines = ["format: jb-book", "root: index", "parts:", "  - caption: Lessons", "    chapters:"]
    lines += [f"      - file: notebooks/{path.stem}" for path in lessons()]
    lines += ["  - caption: Reference", "    chapters:"]
    lines += ["      - file: notebooks/glossary", "      - file: handout"]
    lines += ["  - caption: For teachers", "    chapters:", "      - file: teaching/README"]
    lines += [f"      - file: teaching/{path.stem}" for path in guides()]
    return "\n".join(lines) + "\n"


def stage() -> None:
    if STAGE.exists():
        shutil.rmtree(STAGE)
    (STAGE / "notebooks").mkdir(parents=True)
    (STAGE / "_static").mkdir()
    for name in ("_config.yml", "index.md"):
        shutil.copy2(ROOT / "site" / name, STAGE / name)
    for path in lessons():
        stage_notebook(path, STAGE / "notebooks" / path.name)
    shutil.copy2(ROOT / "notebooks" / "glossary.md", STAGE / "notebooks" / "glossary.md")
    shutil.copytree(ROOT / "teaching", STAGE / "teaching")
    write_handout(STAGE)
    write_print_page(STAGE / "_extra" / "handout-print.html")
    (STAGE / "_toc.yml").write_text(table_of_contents())
    shutil.copy2(ROOT / "site" / "custom.css", STAGE / "_static" / "custom.css")
    site_assets.install()
    site_assets.copy_tree(site_assets.MATHJAX3, STAGE / "_static" / "mathjax", strip="mathjax/es5")


def build() -> None:
    if OUTPUT.exists():
        shutil.rmtree(OUTPUT)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(STAGE), "--path-output", str(OUTPUT)]
    subprocess.run([*command, "--warningiserror", "--keep-going", "--quiet"], check=True)


if __name__ == "__main__":
    start = time.perf_counter()
    stage()
    build()
    pages = len(list(HTML.rglob("*.html")))
    seconds = time.perf_counter() - start
    print(f"website: {HTML / 'index.html'} ({pages} HTML files, {seconds:.0f} s)")
