"""Lesson 02's explorer: move and resize a ground-truth box; see which anchors match it, and why."""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson.anchors import make_anchors, paper_scales
from ssd_lesson.boxes import cxcywh_to_xyxy
from ssd_lesson.matching import MatchExplanation, explain_matches
from ssd_lesson.plotting import draw_matches, matching_key_html, matching_legend, show_image
from ssd_lesson.widgets.explorer import Explorer, _slider

EXPLORER_MAP_SIZES = (4, 2, 1)
EXPLORER_ASPECT_RATIOS = ((2.0,), (2.0,), (2.0,))


def explorer_anchors() -> Tensor:
    """The 84 anchors (xyxy fractions) of the matching explorer."""
    return _explorer_anchors().clone()


@functools.cache
def _explorer_anchors() -> Tensor:
    scales = paper_scales(len(EXPLORER_MAP_SIZES), s_min=0.2, s_max=0.9)
    return make_anchors(EXPLORER_MAP_SIZES, scales, EXPLORER_ASPECT_RATIOS)


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
    return matching_explorer().redraw_ms("cx", (0.3, 0.7), n)
