"""The one-page handout: SSD's key numbers and the pictures a learner keeps.

Every number is read from the package (the same constants the lessons use), and every picture
is the stored output of a lesson cell tagged ``handout``, with that cell's alt text and
caption (cell metadata ``alt`` and ``caption``), so the
handout cannot disagree with the lessons. ``write_handout`` writes handout.md (and its images)
for the website, and ``write_print_page`` a self-contained page laid out for one A4 sheet
(the website's handout-print.html), which ``make handout`` prints to build/handout.pdf with
Chromium.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import nbformat
import tomllib

from ssd_lesson.anchors import S_MAX, S_MIN, ssd300_anchors
from ssd_lesson.encoding import VARIANCES
from ssd_lesson.inference import NMS_IOU_THRESHOLD, SCORE_THRESHOLD, TOP_K
from ssd_lesson.loss import NEG_POS_RATIO
from ssd_lesson.matching import IOU_THRESHOLD
from ssd_lesson.metrics import VOC_IOU_THRESHOLD
from ssd_lesson.ssd300 import ssd300_config

ROOT = Path(__file__).resolve().parents[1]
TAG = "handout"
VOC_CLASSES = 20


def key_numbers() -> list[tuple[str, str, str]]:
    """(what, value, lesson) rows of the handout's table, values computed from the package."""
    anchors = len(ssd300_anchors())
    per_anchor = 4 + VOC_CLASSES + 1
    maps = ", ".join(str(side) for side in ssd300_config(VOC_CLASSES).feature_map_sizes)
    centre, size = VARIANCES
    return [
        (f"Anchors of SSD300 (feature maps {maps} cells across)", f"{anchors:,}", "01"),
        (
            f"Numbers out per anchor: 4 offsets + C classes + 1 background "
            f"(VOC: C = {VOC_CLASSES})",
            f"4 + C + 1 = {per_anchor}; {anchors:,} × {per_anchor} = {anchors * per_anchor:,}",
            "00",
        ),
        ("Anchor scales, smallest to largest map", f"{S_MIN} to {S_MAX} of the image", "01"),
        ("Matching: an anchor is positive from IoU", f"{IOU_THRESHOLD} + each object's best", "02"),
        ("Offsets divided by the 'variances' (centre, size)", f"{centre} / {size}", "03"),
        ("Loss", "(classification + 1 × localization) / N positives", "04"),
        ("Hard negatives kept per positive", f"{NEG_POS_RATIO} : 1", "05"),
        ("Inference: drop scores below", f"{SCORE_THRESHOLD}", "07"),
        ("Non-maximum suppression, per class, at IoU", f"{NMS_IOU_THRESHOLD}", "07"),
        ("Detections kept per image", f"top {TOP_K}", "07"),
        ("A detection is correct (VOC mAP) from IoU", f"{VOC_IOU_THRESHOLD}", "07"),
    ]


def tagged_figures(notebooks: list[Path]) -> list[tuple[str, str, bytes, str]]:
    """(lesson, alt text, PNG bytes, caption) of every cell tagged ``handout``, in order."""
    figures = []
    for path in notebooks:
        for cell in nbformat.read(path, as_version=4).cells:
            if TAG not in cell.metadata.get("tags", []):
                continue
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "data" in o]
            pngs = [png for png in pngs if png]
            alt, caption = cell.metadata.get("alt"), cell.metadata.get("caption")
            if len(pngs) != 1 or not alt or not caption:
                raise ValueError(f"{path.name}: a {TAG!r} cell needs one figure, alt and caption")
            figures.append((path.name[:2], alt, base64.b64decode(pngs[0]), caption))
    return figures


IDEA = (
    "The network gets a fixed list of anchor boxes. For each anchor it predicts how to shift and "
    "scale it onto whatever is nearby, and what class that thing is. Matching anchors to objects "
    "reads only anchors and ground truth: it decides where the loss is computed and what the "
    'targets are, and no gradient flows through it. One network, one pass: "single shot".'
)

PRINT_STYLE = """
@page { size: A4; margin: 12mm; }
body { font-family: sans-serif; font-size: 10.5pt; line-height: 1.35; margin: 0; }
h1 { font-size: 17pt; margin: 0 0 3mm; }
table { border-collapse: collapse; width: 100%; margin: 3mm 0; }
th, td { border-bottom: 1px solid #bbb; padding: 1.2mm 2mm; text-align: left; vertical-align: top; }
.figures { display: grid; grid-template-columns: 1fr 1fr; gap: 3mm; }
figure { margin: 0; text-align: center; }
figure img { max-width: 100%; height: 44mm; width: auto; object-fit: contain; }
figcaption { font-size: 9pt; color: #333; }
footer { font-size: 8pt; color: #555; margin-top: 2mm; }
"""


def write_print_page(path: Path) -> Path:
    """The handout as one self-contained HTML page (images inline) sized for one A4 sheet."""
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows = "".join(
        f"<tr><td>{html.escape(w)}</td><td>{html.escape(v)}</td><td>{lesson}</td></tr>"
        for w, v, lesson in key_numbers()
    )
    figures = "".join(
        f'<figure><img alt="{html.escape(alt, quote=True)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(caption)} (Lesson {lesson})</figcaption></figure>"
        for lesson, alt, png, caption in tagged_figures(notebooks)
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SSD on one page</title>
<style>{PRINT_STYLE}</style></head><body>
<h1>SSD on one page</h1>
<p><strong>The idea.</strong> {html.escape(IDEA)}</p>
<table><tr><th>What</th><th>Value</th><th>Lesson</th></tr>{rows}</table>
<div class="figures">{figures}</div>
<footer>ssd-lesson {version} · text and figures CC BY 4.0 · code MIT</footer>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def handout_markdown(figures: list[tuple[str, str, str]]) -> str:
    """The handout page; ``figures`` are (lesson, alt text, image path, caption)."""
    rows = "\n".join(f"| {what} | {value} | {lesson} |" for what, value, lesson in key_numbers())
    cards = "\n".join(
        f":::{{grid-item}}\n![{alt}]({image})\n\n{caption} (Lesson {lesson})\n:::"
        for lesson, alt, image, caption in figures
    )
    return f"""# Handout: SSD on one page

**The idea.** {IDEA}

A printable copy on one A4 page is `handout-print.html`, next to this page on the website;
`make handout` prints it to `build/handout.pdf`.

| What | Value | Lesson |
|---|---|---|
{rows}

::::{{grid}} 2
{cards}
::::
"""


def write_handout(stage: Path) -> Path:
    """Write handout.md and its images into the site's staging folder ``stage``."""
    folder = stage / "handout"
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for number, (lesson, alt, png, caption) in enumerate(tagged_figures(notebooks)):
        name = f"handout/figure{number}.png"
        (stage / name).write_bytes(png)
        figures.append((lesson, alt.replace("]", ")").replace("[", "("), name, caption))
    page = stage / "handout.md"
    page.write_text(handout_markdown(figures))
    return page
