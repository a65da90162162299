"""Lesson 01's exercises."""

from __future__ import annotations

import math

import torch

from ssd_lesson.anchors import make_anchors
from ssd_lesson.boxes import box_iou
from ssd_lesson.exercises import Check, close, exact

IOU_EXERCISE_BOXES = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]])


def check_iou(answer) -> Check:
    """The IoU of the two boxes in ``IOU_EXERCISE_BOXES``, worked out by hand."""
    expected = float(box_iou(IOU_EXERCISE_BOXES[:1], IOU_EXERCISE_BOXES[1:]))
    return Check(
        close(answer, expected),
        "IoU of the two exercise boxes",
        "the overlap is a square; the union is both areas minus the overlap (counted twice).",
    )


def check_anchor_size(width, height, scale: float = 0.4, ratio: float = 3.0) -> Check:
    """Width and height of the anchor with scale ``scale`` and aspect ratio ``ratio`` (w / h)."""
    right = close(width, scale * math.sqrt(ratio)) and close(height, scale / math.sqrt(ratio))
    return Check(
        right,
        f"size of the anchor with scale {scale} and ratio {ratio}",
        "width / height must equal the ratio and width * height must equal scale squared.",
    )


SSD512_FEATURE_MAP_SIZES = (64, 32, 16, 8, 4, 2, 1)
SSD512_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))


def check_ssd512_anchor_count(answer) -> Check:
    """How many anchors does SSD512 have (maps and ratios in SSD512_FEATURE_MAP_SIZES / _RATIOS)?"""
    scales = [0.1 + 0.1 * k for k in range(len(SSD512_FEATURE_MAP_SIZES) + 1)]
    expected = len(make_anchors(SSD512_FEATURE_MAP_SIZES, scales, SSD512_ASPECT_RATIOS))
    return Check(
        exact(answer, expected),
        "SSD512's anchor count",
        "cells per map times boxes per cell (2 + 2 per extra ratio), summed over the maps.",
    )
