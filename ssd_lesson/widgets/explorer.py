"""Explorers: small interactive pictures for the lessons.

Each explorer is a thin wrapper over two tested pieces:

* a pure function that turns control values into data (``anchor_layout``, ``matching_view``), and
* a plotting function that draws that data on a matplotlib ``Axes``.

In JupyterLab an explorer is a live widget: move a control and the picture is redrawn. Where no
widget manager runs (GitHub, nbconvert HTML, a plain terminal) it shows a PNG snapshot and one
line of text instead. The figure is rendered to PNG with matplotlib's Agg backend and shown in an
``ipywidgets.Image``, so no Output widget and no ipympl are needed.
"""

from __future__ import annotations

import base64
import functools
import io
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import ipywidgets
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ssd_lesson.anchors import make_anchors, paper_scales
from ssd_lesson.boxes import cxcywh_to_xyxy
from ssd_lesson.matching import MatchExplanation, explain_matches
from ssd_lesson.plotting import (
    ANCHOR_COLOR,
    draw_anchors,
    draw_grid,
    draw_matches,
    matching_key_html,
    matching_legend,
    render_png,
    show_image,
)

# Resolution of the explorers' pictures. Higher looks sharper but redraws more slowly; the target
# is a redraw (control change -> picture ready) within 100 ms (see benchmarks/bench_matching.py).
FIGURE_DPI = 80


class Explorer:
    """A live widget in JupyterLab; a PNG and one line of text where widgets cannot run.

    Args:
        controls: name -> ipywidgets control; its ``value`` is passed to ``compute`` by name.
        compute: ``compute(**values) -> data``, a pure function.
        draw: ``draw(data, ax)`` draws the data on a matplotlib Axes.
        describe: ``describe(data) -> str``, the one-line readout.
        key: optional HTML shown above the picture (a colour key drawn once, not per redraw).
        draw_snapshot: optional ``draw_snapshot(data, ax)`` for the static picture shown where
            widgets cannot run; it may add what the live widget shows around its picture (a
            legend). The readout becomes its title.
    """

    def __init__(
        self,
        controls: dict[str, ipywidgets.ValueWidget],
        compute: Callable[..., Any],
        draw: Callable[[Any, Any], object],
        describe: Callable[[Any], str],
        figsize=(5.5, 5.0),
        key: str = "",
        draw_snapshot: Callable[[Any, Any], object] | None = None,
        snapshot_figsize=(5.5, 5.0),
    ):
        self.controls = controls
        self._compute, self._draw, self._describe = compute, draw, describe
        self._draw_snapshot = draw_snapshot or draw
        self._snapshot_figsize = snapshot_figsize
        # One figure, cleared and redrawn on every change: building a new one costs more than
        # the drawing itself. No pyplot, so nothing leaks into the notebook.
        self._figure = Figure(figsize=figsize, dpi=FIGURE_DPI)
        self._figure.subplots_adjust(left=0.08, right=0.97, bottom=0.07, top=0.93)
        self._ax = self._figure.add_subplot()
        # Shown at its natural size: stretched to the output's width it would look blurred.
        width, height = (round(inches * FIGURE_DPI) for inches in figsize)
        self.image = ipywidgets.Image(
            format="png", layout={"width": f"{width}px", "height": f"{height}px"}
        )
        self.readout = ipywidgets.Label()
        for control in controls.values():
            control.observe(self._on_change, names="value")
        parts = [ipywidgets.VBox(list(controls.values())), self.readout]
        if key:
            parts.append(ipywidgets.HTML(key))
        self.widget = ipywidgets.VBox([*parts, self.image])
        self.update()

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> Any:
        """Set several controls, redraw once, and return the new data."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"expected controls among {sorted(self.controls)}, got {unknown}")
        with self.widget.hold_sync():
            self._holding = True
            try:
                for name, value in values.items():
                    self.controls[name].value = value
            finally:
                self._holding = False
        return self.update()

    def update(self) -> Any:
        """Recompute the data from the controls and redraw the picture and the readout."""
        self.data = self._compute(**self.values)
        self.text = self._describe(self.data)
        self._ax.clear()
        self._draw(self.data, self._ax)
        buffer = io.BytesIO()
        self._figure.savefig(buffer, format="png")
        self.png = buffer.getvalue()
        self.image.value = self.png
        self.readout.value = self.text
        return self.data

    _holding = False

    def _on_change(self, _change) -> None:
        if not self._holding:
            self.update()

    def snapshot_png(self) -> bytes:
        """The static picture for GitHub and nbconvert: the figure, titled with the readout."""

        def draw(ax):
            self._draw_snapshot(self.data, ax)
            ax.set_title(self.text, fontsize=9)

        return render_png(draw, size=self._snapshot_figsize)

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["image/png"] = base64.b64encode(self.snapshot_png()).decode("ascii")
        bundle["text/plain"] = self.text
        return bundle


def _slider(description: str, value: float, low: float, high: float, step: float = 0.01):
    return ipywidgets.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        readout_format=".2f",
        style={"description_width": "9em"},
        layout={"width": "28em"},
    )


# ---------------------------------------------------------------- lesson 01: anchors on a grid

ASPECT_RATIO_CHOICES = {"squares only": (), "2 and 1/2": (2.0,), "2, 1/2, 3, 1/3": (2.0, 3.0)}


class AnchorLayout(NamedTuple):
    """The anchors of one feature map, and those of the highlighted cell."""

    map_size: int
    boxes_per_cell: int
    anchors: Tensor  # (map_size * map_size * boxes_per_cell, 4) cxcywh
    cell_anchors: Tensor  # (boxes_per_cell, 4) cxcywh: the middle cell (just below and right of
    # the centre when the map size is even)


def anchor_layout(
    map_size: int, scale: float, next_scale: float, aspect_ratios: str
) -> AnchorLayout:
    """Anchors of one map_size x map_size feature map with the given scales and ratio choice."""
    if aspect_ratios not in ASPECT_RATIO_CHOICES:
        raise ValueError(
            f"expected aspect_ratios among {list(ASPECT_RATIO_CHOICES)}, got {aspect_ratios!r}"
        )
    ratios = ASPECT_RATIO_CHOICES[aspect_ratios]
    anchors = make_anchors([map_size], [scale, next_scale], [ratios])
    per_cell = 2 + 2 * len(ratios)
    centre_cell = (map_size // 2) * map_size + map_size // 2
    cell = anchors[centre_cell * per_cell : (centre_cell + 1) * per_cell]
    return AnchorLayout(map_size, per_cell, anchors, cell)


def draw_anchor_layout(
    layout: AnchorLayout, ax, image=None, show_all: bool = False, title: str | None = None
):
    """The grid, every cell's centre, every anchor faintly (if ``show_all``), one cell's bold."""
    show_image(ax, image)
    line_color = "black" if image is None else "white"
    draw_grid(ax, layout.map_size, layout.map_size, color=line_color)
    centres = layout.anchors[:, :2].unique(dim=0).numpy()
    ax.plot(centres[:, 0], centres[:, 1], ".", color=line_color, markersize=3)
    if show_all:
        draw_anchors(ax, layout.anchors, color="#56B4E9", linewidth=0.5, alpha=0.5)
    draw_anchors(ax, layout.cell_anchors, color=ANCHOR_COLOR, linewidth=2)
    ax.set_title(title or f"{layout.map_size}×{layout.map_size} feature map", fontsize=9)
    return ax


def describe_anchor_layout(layout: AnchorLayout) -> str:
    n = layout.map_size
    return (
        f"{n}×{n} cells × {layout.boxes_per_cell} boxes per cell = "
        f"{len(layout.anchors)} anchors on this map"
    )


def anchor_explorer(image=None) -> Explorer:
    """Lesson 01: change the map size, the scales and the aspect ratios; see the anchors move."""
    controls = {
        "map_size": ipywidgets.IntSlider(
            value=5,
            min=1,
            max=10,
            description="map size",
            continuous_update=False,
            style={"description_width": "9em"},
            layout={"width": "28em"},
        ),
        "scale": _slider("scale s_k", 0.3, 0.05, 1.0),
        "next_scale": _slider("next scale s_k+1", 0.5, 0.05, 1.0),
        "aspect_ratios": ipywidgets.Dropdown(
            options=list(ASPECT_RATIO_CHOICES),
            value="2 and 1/2",
            description="extra ratios",
            style={"description_width": "9em"},
        ),
        "show_all": ipywidgets.Checkbox(value=False, description="show every cell's anchors"),
    }

    def compute(show_all, **values):
        return anchor_layout(**values), show_all

    return Explorer(
        controls,
        compute,
        draw=lambda data, ax: draw_anchor_layout(data[0], ax, image, show_all=data[1]),
        describe=lambda data: describe_anchor_layout(data[0]),
    )


# ---------------------------------------------------------------- lesson 02: matching

# A small anchor set that is easy to see: 4x4, 2x2 and 1x1 maps, ratios 1, 2 and 1/2.
EXPLORER_MAP_SIZES = (4, 2, 1)
EXPLORER_ASPECT_RATIOS = ((2.0,), (2.0,), (2.0,))


def explorer_anchors() -> Tensor:
    """The 84 anchors (xyxy fractions) of the matching explorer."""
    return _explorer_anchors().clone()


@functools.cache
def _explorer_anchors() -> Tensor:
    scales = paper_scales(len(EXPLORER_MAP_SIZES), s_min=0.2, s_max=0.9)
    return cxcywh_to_xyxy(make_anchors(EXPLORER_MAP_SIZES, scales, EXPLORER_ASPECT_RATIOS))


class MatchingView(NamedTuple):
    """What the matching explorer shows: one ground-truth box and how anchors matched it."""

    anchors_xyxy: Tensor  # (A, 4)
    gt_xyxy: Tensor  # (1, 4)
    explanation: MatchExplanation
    num_positives: int
    num_forced: int
    num_above_threshold: int
    best_iou: float
    iou_threshold: float


def matching_view(
    cx: float, cy: float, w: float, h: float, iou_threshold: float, anchors_xyxy=None
) -> MatchingView:
    """Match one ground-truth box (centre cx, cy; size w, h; clipped to the image) to anchors."""
    anchors = _explorer_anchors() if anchors_xyxy is None else anchors_xyxy
    gt = cxcywh_to_xyxy(torch.tensor([[cx, cy, w, h]], dtype=torch.float32)).clamp(0, 1)
    explanation = explain_matches(anchors, gt, iou_threshold)
    positives = explanation.matched_gt >= 0
    return MatchingView(
        anchors,
        gt,
        explanation,
        num_positives=int(positives.sum()),
        num_forced=int(explanation.forced.sum()),
        num_above_threshold=int(explanation.above_threshold.sum()),
        best_iou=float(explanation.best_iou_for_each_gt.max()),
        iou_threshold=iou_threshold,
    )


def draw_matching_view(view: MatchingView, ax, show_background: bool = True, legend=True):
    """Anchors coloured by the rule that matched them, the ground truth dashed green."""
    show_image(ax)
    draw_matches(ax, view.anchors_xyxy, view.gt_xyxy, view.explanation, show_background)
    if legend:
        matching_legend(ax)
    ax.set_title(f"IoU threshold {view.iou_threshold:.2f}", fontsize=9)
    return ax


def describe_matching_view(view: MatchingView) -> str:
    return (
        f"positives: {view.num_positives} (forced: {view.num_forced}, "
        f"IoU ≥ {view.iou_threshold:.2f}: {view.num_above_threshold}); "
        f"best IoU: {view.best_iou:.2f}"
    )


def matching_explorer(
    cx: float = 0.45, cy: float = 0.55, w: float = 0.3, h: float = 0.4, iou_threshold=0.5
) -> Explorer:
    """Lesson 02: move and resize a ground-truth box, set the IoU threshold; see the matches."""
    controls = {
        "cx": _slider("centre x", cx, 0.0, 1.0),
        "cy": _slider("centre y", cy, 0.0, 1.0),
        "w": _slider("width", w, 0.02, 1.0),
        "h": _slider("height", h, 0.02, 1.0),
        "iou_threshold": _slider("IoU threshold", iou_threshold, 0.05, 1.0, step=0.05),
    }
    return Explorer(
        controls,
        matching_view,
        lambda view, ax: draw_matching_view(view, ax, legend=False),
        describe_matching_view,
        key=matching_key_html(),
        draw_snapshot=draw_matching_view,
        snapshot_figsize=(5.5, 6.0),
    )


def matching_explorer_redraw_ms(n: int = 20) -> list[float]:
    """Time ``n`` redraws of the matching explorer (control change -> PNG ready), in ms."""
    explorer = matching_explorer()
    times = []
    for i in range(n):
        start = time.perf_counter()
        explorer.controls["cx"].value = 0.3 + 0.4 * (i % 2)
        times.append((time.perf_counter() - start) * 1000)
    return times
