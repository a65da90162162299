"""One reveal.js deck per lesson, into build/slides/ (``make slides``).

Slide breaks are the lessons' own: a ``#``/``##`` heading starts a slide and a ``###`` heading
a sub-slide (cell metadata ``slideshow.slide_type``, written by tools/lesson_marks.py). The
decks are made from the stored outputs, and everything they load sits next to them in
build/slides/assets/: reveal.js 4, MathJax 2.7 (the API nbconvert's template calls),
require.js and jQuery. Open build/slides/NN_name.slides.html in a browser: no internet needed.
Each explorer shows its PNG snapshot; the Colab set-up cell is left out.
"""

from __future__ import annotations

import html
import shutil
import sys
import time
from pathlib import Path

import nbformat
import site_assets
from lesson_marks import COLAB_TAG
from nbconvert import SlidesExporter

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "build" / "slides"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def copy_assets() -> None:
    site_assets.install()
    assets = OUTPUT / "assets"
    site_assets.copy_tree(site_assets.REVEAL, assets / "reveal.js", strip="reveal.js")
    site_assets.copy_tree(site_assets.MATHJAX2, assets / "mathjax", strip="mathjax2")
    site_assets.copy_tree(site_assets.SCRIPTS, assets, strip=".")


def exporter() -> SlidesExporter:
    # site/ssd_slides: nbconvert's reveal template without its CDN import of Mermaid, with
    # wrapping code lines and figures that fit the screen.
    slides = SlidesExporter(
        template_name="ssd_slides", extra_template_basedirs=[str(ROOT / "site")]
    )
    slides.reveal_url_prefix = "assets/reveal.js"
    slides.reveal_theme = "white"  # its fonts are in reveal.js itself; "simple" imports Google's
    slides.reveal_scroll = True  # a long slide scrolls instead of running off the screen
    slides.reveal_number = "c/t"  # slide numbers, to say "go to slide 7"
    slides.reveal_width = "1280"
    slides.reveal_height = "800"
    slides.exclude_input_prompt = True
    slides.exclude_output_prompt = True
    slides.mathjax_url = "assets/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"
    slides.require_js_url = "assets/requirejs/require.js"
    slides.jquery_url = "assets/jquery/dist/jquery.min.js"
    return slides


def deck_notebook(path: Path):
    """The lesson as the deck shows it: no Colab cell, explorers as their snapshots, and each
    figure as an <img> with the cell's alt text (nbconvert's slide template drops it)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells = [c for c in notebook.cells if COLAB_TAG not in c.metadata.get("tags", [])]
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        alt = html.escape(cell.metadata.get("alt", ""), quote=True)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            data.pop(WIDGET_VIEW, None)
            if "image/png" in data:
                png = data.pop("image/png")
                data["text/html"] = f'<img src="data:image/png;base64,{png}" alt="{alt}">'
                data.pop("text/plain", None)
    return notebook


def build() -> list[Path]:
    if OUTPUT.exists():
        shutil.rmtree(OUTPUT)
    OUTPUT.mkdir(parents=True)
    copy_assets()
    slides = exporter()
    decks = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = deck_notebook(path)
        title = notebook.cells[0].source.lstrip("# ").splitlines()[0]
        body, _ = slides.from_notebook_node(notebook, resources={"metadata": {"name": title}})
        deck = OUTPUT / f"{path.stem}.slides.html"
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
    return decks


if __name__ == "__main__":
    start = time.perf_counter()
    decks = build()
    seconds = time.perf_counter() - start
    print(f"slides: {len(decks)} decks in {OUTPUT} ({seconds:.0f} s)", file=sys.stderr)
