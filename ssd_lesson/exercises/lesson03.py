"""Lesson 03's exercises."""

from __future__ import annotations

import math

import torch

from ssd_lesson.boxes import cxcywh_to_xyxy
from ssd_lesson.encoding import decode, encode
from ssd_lesson.exercises import Check, close


def _close_all(answer, expected: list[float]) -> bool:
    try:
        values = [float(v) for v in torch.as_tensor(answer, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        return False
    return len(values) == len(expected) and all(
        close(v, e) for v, e in zip(values, expected, strict=True)
    )


def check_plain_offsets(answer) -> Check:
    """Offsets (t_x, t_y, t_w, t_h), no variances: anchor centre (0.5, 0.5), size 0.2 x 0.4;
    object centre (0.55, 0.4), size 0.1 x 0.4."""
    anchor = cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.4]]))
    obj = cxcywh_to_xyxy(torch.tensor([[0.55, 0.4, 0.1, 0.4]]))
    expected = encode(anchor, obj, variances=(1, 1))[0].tolist()
    return Check(
        _close_all(answer, expected),
        "the four plain offsets",
        "t_x is the centre's move divided by the anchor's width; t_w = log(object w / anchor w). "
        "Give four numbers in the order t_x, t_y, t_w, t_h.",
    )


def check_scaled_width_target(answer) -> Check:
    """t_w with the default variances for an object twice as wide as its anchor."""
    anchor = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    twice_as_wide = torch.tensor([[0.3, 0.4, 0.7, 0.6]])
    expected = encode(anchor, twice_as_wide)[0, 2].item()
    return Check(
        close(answer, expected),
        "t_w with the variances",
        "start from log(2), then divide by the size variance.",
    )


def check_decoded_box(answer) -> Check:
    """Decode offsets (1, 0, log 2, 0), no variances, on the anchor [0.4, 0.4, 0.6, 0.6]."""
    anchor = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    offsets = torch.tensor([[1.0, 0.0, math.log(2.0), 0.0]])
    expected = decode(anchor, offsets, variances=(1, 1))[0].tolist()
    return Check(
        _close_all(answer, expected),
        "the decoded box",
        "move the centre by t_x anchor widths, multiply the width by e^t_w, then write x1, y1, "
        "x2, y2.",
    )
