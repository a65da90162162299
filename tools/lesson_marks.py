"""What every lesson carries besides its teaching: the Colab set-up cell and the slide marks.

``make notebooks`` (tools/run_notebooks.py) applies both before it executes a lesson, so they
never drift; ``python tools/lesson_marks.py NOTEBOOK.ipynb ...`` applies them without executing.

- The Colab cell is each lesson's first code cell. On Google Colab it installs this package,
  at the version in pyproject.toml, from the repository named there; everywhere else
  (JupyterLab, Binder, nbval) it does nothing.
- Slide marks live in cell metadata (``slideshow.slide_type``), as nbconvert's slides and
  jupyterlab-rise read them: a ``#`` or ``##`` heading starts a new slide, a ``###`` heading a
  new sub-slide (below the slide, reached with the down arrow), and so does a figure (a code
  cell with alt text) unless the cell just above it starts a slide; every other cell continues
  the slide above it, so nothing else is marked. A slide can only start at a cell, so a Markdown
  cell with a heading after its first line is split there, one cell per section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import tomllib

ROOT = Path(__file__).resolve().parents[1]
COLAB_TAG = "colab-setup"


def project() -> dict:
    """The [project] table of pyproject.toml: name, version, urls."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def colab_source() -> str:
    """The source of the Colab set-up cell, for the version in pyproject.toml."""
    meta = project()
    pin = f"{meta['name']} @ git+{meta['urls']['Repository']}@v{meta['version']}"
    return (
        "# On Google Colab only: install this series' package. Anywhere else this does nothing.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        f'    %pip install --quiet "{pin}"'
    )


def slide_type(cell) -> str | None:
    """The slide mark a cell should carry, from its heading; None for every other cell."""
    if cell.cell_type != "markdown":
        return None
    match = re.match(r"(#{1,3}) ", cell.source.lstrip())
    if not match:
        return None
    return "subslide" if len(match.group(1)) == 3 else "slide"


HEADING = re.compile(r"#{1,3} ")


def split_at_headings(source: str) -> list[str]:
    """``source`` cut before every heading that is not its first line (code fences skipped)."""
    parts, current, fenced = [], [], False
    for line in source.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and HEADING.match(line) and "".join(current).strip():
            parts.append("".join(current).rstrip("\n"))
            current = []
        current.append(line)
    parts.append("".join(current).rstrip("\n"))
    return parts


def split_sections(notebook) -> None:
    """Give every heading its own Markdown cell, so each section can start a slide."""
    cells = []
    for cell in notebook.cells:
        parts = split_at_headings(cell.source) if cell.cell_type == "markdown" else [cell.source]
        cell.source = parts[0]
        cells.append(cell)
        for number, part in enumerate(parts[1:], start=1):
            new = nbformat.v4.new_markdown_cell(part)
            new.id = f"{cell.id}-{number}"[:64]
            cells.append(new)
    notebook.cells = cells


def apply(notebook) -> None:
    """Give ``notebook`` (an nbformat node) its Colab cell and slide marks, in place."""
    split_sections(notebook)
    colab = [cell for cell in notebook.cells if COLAB_TAG in cell.metadata.get("tags", [])]
    if colab:
        colab[0].source = colab_source()
    else:
        first_code = next(i for i, c in enumerate(notebook.cells) if c.cell_type == "code")
        cell = nbformat.v4.new_code_cell(colab_source(), metadata={"tags": [COLAB_TAG]})
        cell.id = COLAB_TAG  # a fixed id: re-running this changes nothing
        notebook.cells.insert(first_code, cell)
    previous = None
    for cell in notebook.cells:
        mark = slide_type(cell)
        if mark is None and cell.cell_type == "code" and cell.metadata.get("alt") and not previous:
            mark = "subslide"  # a figure gets the screen to itself, with the code that draws it
        previous = mark
        if mark:
            cell.metadata["slideshow"] = {"slide_type": mark}
        else:
            cell.metadata.pop("slideshow", None)


def main(paths: list[str]) -> None:
    for name in paths:
        notebook = nbformat.read(name, as_version=4)
        apply(notebook)
        nbformat.write(notebook, name)
        print(f"{name}: Colab cell and slide marks applied")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: lesson_marks.py NOTEBOOK.ipynb [...]")
    main(sys.argv[1:])
