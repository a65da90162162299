"""Lesson 01's exercises: each check compares an answer with the package's own result and gives
a hint, never the answer. A teacher finds the answers here (or by running the checks' code)."""

from __future__ import annotations

import torch

from ssd_lesson.anchors import make_anchors
from ssd_lesson.boxes import box_iou
from ssd_lesson.exercises import Check, close, exact

# Pairs of xyxy boxes (fractions) on which a learner's IoU function is tried, with what each pair
# tests. Worked out with ``box_iou``: 1/3, 0, 0 (the boxes only share an edge), 1/4, 1.
IOU_FUNCTION_CASES = (
    ((0.1, 0.1, 0.5, 0.5), (0.3, 0.1, 0.7, 0.5), "half of each box overlaps the other"),
    ((0.0, 0.0, 0.2, 0.2), (0.6, 0.6, 0.9, 0.9), "boxes far apart, one below and right"),
    ((0.0, 0.0, 0.5, 0.5), (0.5, 0.0, 1.0, 0.5), "boxes that only share an edge"),
    ((0.2, 0.2, 0.8, 0.8), (0.35, 0.35, 0.65, 0.65), "one box inside the other"),
    ((0.1, 0.2, 0.4, 0.9), (0.1, 0.2, 0.4, 0.9), "the same box twice"),
)


def check_iou_function(iou) -> Check:
    """``iou(box1, box2) -> float`` for two xyxy boxes given as tuples of 4 floats."""
    what = "your iou function"
    if not callable(iou):
        return Check(False, what, "define a function iou(box1, box2) and pass the function itself.")
    for box1, box2, case in IOU_FUNCTION_CASES:
        expected = float(box_iou(torch.tensor([box1]), torch.tensor([box2])))
        try:
            answer = iou(box1, box2)
        except Exception as error:  # a learner's code may fail in any way
            return Check(
                False,
                what,
                f"it raised {type(error).__name__}: {error}. Each box is a tuple "
                "(x1, y1, x2, y2); unpack it with x1, y1, x2, y2 = box1.",
            )
        if close(answer, expected):
            continue
        hint = f"it gives {answer!r} for {box1} and {box2} ({case}). "
        if expected == 0:
            hint += (
                "When the overlap's right edge is left of its left edge (or its bottom above its "
                "top), there is no overlap: its width or height must count as 0, not below 0."
            )
        else:
            hint += "Draw the two boxes; the union is both areas minus the overlap."
        return Check(False, what, hint)
    return Check(True, f"{what} agrees with box_iou on {len(IOU_FUNCTION_CASES)} pairs", "")


# Why does IoU divide by the union? The options the lesson prints, and the right one.
WHY_UNION_OPTIONS = {
    "a": "Dividing by the union is faster to compute than dividing by one box's area.",
    "b": "Overlap / object's area is 1 for every box that contains the object, however big; the "
    "union grows with a too-big box, so IoU gives it a low score.",
    "c": "The union is always smaller than the overlap, so IoU is always below 1.",
}
WHY_UNION_ANSWER = "b"


def check_why_union(answer) -> Check:
    """Which option of WHY_UNION_OPTIONS says why IoU divides by the union?"""
    return Check(
        str(answer).strip().lower() == WHY_UNION_ANSWER,
        "why IoU divides by the union",
        "work out overlap / object's area and the IoU for a small object and an anchor covering "
        "the whole image: which one tells you the anchor fits badly?",
    )


# The explorer task: with both scales at this value and squares only, which map size makes the
# squares tile the image exactly, each touching its neighbours?
TILING_SCALE = 0.2


def check_tiling_map_size(answer) -> Check:
    """The map size f whose cells are exactly TILING_SCALE wide (1 / f = TILING_SCALE)."""
    expected = round(1 / TILING_SCALE)
    return Check(
        exact(answer, expected),
        f"the map size whose squares of side {TILING_SCALE} tile the image",
        "with 'show every cell's anchors' ticked, gaps between the squares mean the cells are "
        "too far apart (map too small); overlaps mean they are too close (map too big).",
    )


SSD512_FEATURE_MAP_SIZES = (64, 32, 16, 8, 4, 2, 1)
SSD512_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))


def check_ssd512_anchor_count(answer) -> Check:
    """How many anchors does SSD512 have (maps and ratios in SSD512_FEATURE_MAP_SIZES / _RATIOS)?"""
    scales = [0.1 + 0.1 * k for k in range(len(SSD512_FEATURE_MAP_SIZES) + 1)]  # any will do
    expected = len(make_anchors(SSD512_FEATURE_MAP_SIZES, scales, SSD512_ASPECT_RATIOS))
    return Check(
        exact(answer, expected),
        "SSD512's anchor count",
        "cells per map times boxes per cell (2 + 2 per extra ratio), summed over the maps.",
    )
