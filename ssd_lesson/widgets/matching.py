"""Lesson 02's explorer: move and resize a ground-truth box; see which anchors match it, and why."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson.anchors import make_anchors, paper_scales
from ssd_lesson.boxes import cxcywh_to_xyxy
from ssd_lesson.matching import MatchExplanation, explain_matches
from ssd_lesson.plotting import (
    BACKGROUND_COLOR,
    FORCED_COLOR,
    GROUND_TRUTH_COLOR,
    THRESHOLD_COLOR,
    KeyEntry,
    draw_matches,
    legend_below,
    show_image,
)
from ssd_lesson.widgets.explorer import Explorer, slider

EXPLORER_MAP_SIZES = (4, 2, 1)
EXPLORER_ASPECT_RATIOS = ((2.0,), (2.0,), (2.0,))


MATCHING_KEY = (
    KeyEntry(GROUND_TRUTH_COLOR, "ground truth (dashed)", "--", 3),
    KeyEntry(FORCED_COLOR, "forced (rule 1; may pass rule 2 too)", linewidth=2.5),
    KeyEntry(THRESHOLD_COLOR, "IoU ≥ threshold (rule 2)", linewidth=1.5),
    KeyEntry(BACKGROUND_COLOR, "background", linewidth=1),
)


def explorer_anchors() -> Tensor:
    """The 84 anchors (xyxy fractions) of the matching and encoding explorers (a new tensor at
    every call: a few microseconds)."""
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
    anchors = explorer_anchors() if anchors_xyxy is None else anchors_xyxy
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
        legend_below(ax, MATCHING_KEY)
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
        "cx": slider("centre x", cx, 0.0, 1.0),
        "cy": slider("centre y", cy, 0.0, 1.0),
        "w": slider("width", w, 0.02, 1.0),
        "h": slider("height", h, 0.02, 1.0),
        "iou_threshold": slider("IoU threshold", iou_threshold, 0.05, 1.0, step=0.05),
    }
    return Explorer(
        controls,
        matching_view,
        lambda view, ax: draw_matching_view(view, ax, legend=False),
        describe_matching_view,
        key=MATCHING_KEY,
    )
