"""Boxes: the two formats SSD uses, box area, and intersection over union (IoU).

A box is four numbers. ssd-lesson uses two layouts, and every name says which one it takes:

* ``xyxy``: (x1, y1, x2, y2), the top-left and bottom-right corners.
* ``cxcywh``: (cx, cy, w, h), the centre, the width and the height.

Coordinates are fractions of the image (0 = left/top edge, 1 = right/bottom edge) unless a name
says ``_px``. Each public function first checks its input (``ssd_lesson.checks``) and raises
``ValueError`` saying what it expected and what it got, so that a mix-up of formats or of pixels
and fractions fails loudly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssd_lesson import checks


def xyxy_to_cxcywh(boxes_xyxy) -> Tensor:
    """Corners to centre-size: (x1, y1, x2, y2) -> (cx, cy, w, h). Shapes (N, 4) -> (N, 4)."""
    boxes = checks.boxes(boxes_xyxy, "boxes_xyxy", fractions=False)
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes_cxcywh) -> Tensor:
    """Centre-size to corners: (cx, cy, w, h) -> (x1, y1, x2, y2). Shapes (N, 4) -> (N, 4)."""
    boxes = checks.cxcywh(boxes_cxcywh, "boxes_cxcywh")
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_area(boxes_xyxy) -> Tensor:
    """Area of each box: (N, 4) xyxy fractions -> (N,), as a fraction of the image's area."""
    boxes = checks.boxes(boxes_xyxy, "boxes_xyxy")
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2) -> Tensor:
    """Intersection over union of every pair of boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy, fractions of the image or pixels (IoU has no unit).
        boxes2 (Tensor[M, 4]): xyxy, in the same unit as boxes1.

    Returns:
        Tensor[N, M]: ``iou[i, j]`` = area(boxes1[i] ∩ boxes2[j]) / area(boxes1[i] ∪ boxes2[j]),
        a number from 0 (no overlap) to 1 (the same box). A box of zero area overlaps
        nothing: its IoU is 0, never 0 / 0 = NaN.
    """
    boxes1, boxes2 = checks.iou_inputs(boxes1, boxes2)
    # 1) The overlap of two boxes is itself a box: its left edge is the larger of the two left
    #    edges, its right edge the smaller of the two right edges (same for top and bottom).
    #    If those edges cross, the boxes do not overlap: clamp the width or height to 0.
    x1, y1, x2, y2 = boxes1[:, None, :].unbind(-1)  # each (N, 1)
    other_x1, other_y1, other_x2, other_y2 = boxes2.unbind(-1)  # each (M,)
    overlap_w = (torch.minimum(x2, other_x2) - torch.maximum(x1, other_x1)).clamp(min=0)
    overlap_h = (torch.minimum(y2, other_y2) - torch.maximum(y1, other_y1)).clamp(min=0)
    intersection = overlap_w * overlap_h  # (N, M)
    # 2) Union = both areas minus the part counted twice.
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])  # (N,)
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])  # (M,)
    union = area1[:, None] + area2[None, :] - intersection  # (N, M)
    # 3) A box of zero area overlaps nothing: a tiny floor on the union turns 0 / 0 into 0.
    return intersection / union.clamp(min=torch.finfo(union.dtype).tiny)
