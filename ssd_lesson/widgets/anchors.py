"""Lesson 01's explorer: change a feature map's size, scales and aspect ratios; see its anchors."""

from __future__ import annotations

from typing import NamedTuple

import ipywidgets
from torch import Tensor

from ssd_lesson.anchors import make_anchors
from ssd_lesson.plotting import ANCHOR_COLOR, draw_boxes, draw_grid, show_image
from ssd_lesson.widgets.explorer import Explorer, dropdown, int_slider, slider

ASPECT_RATIO_CHOICES = {"squares only": (), "2 and 1/2": (2.0,), "2, 1/2, 3, 1/3": (2.0, 3.0)}


class AnchorLayout(NamedTuple):
    """The anchors of one feature map, and those of the highlighted cell."""

    map_size: int
    boxes_per_cell: int
    anchors: Tensor  # (map_size * map_size * boxes_per_cell, 4) xyxy
    cell_anchors: Tensor  # (boxes_per_cell, 4) xyxy: the middle cell (just below and right of
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
    _draw_centres(ax, layout.anchors, line_color)
    if show_all:
        draw_boxes(ax, layout.anchors, "#56B4E9", linewidth=0.5, alpha=0.5)
        _draw_centres(ax, layout.anchors, "#56B4E9")
    draw_boxes(ax, layout.cell_anchors, ANCHOR_COLOR, linewidth=2)
    _draw_centres(ax, layout.cell_anchors, ANCHOR_COLOR)
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
        "map_size": int_slider("map size", 5, 1, 10),
        "scale": slider("scale s_k", 0.3, 0.05, 1.0),
        "next_scale": slider("next scale s_k+1", 0.5, 0.05, 1.0),
        "aspect_ratios": dropdown("extra ratios", list(ASPECT_RATIO_CHOICES), "2 and 1/2"),
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


def _draw_centres(ax, anchors_xyxy: Tensor, color: str) -> None:
    centres = ((anchors_xyxy[:, :2] + anchors_xyxy[:, 2:]) / 2).unique(dim=0).numpy()
    ax.plot(centres[:, 0], centres[:, 1], ".", color=color, markersize=3)
