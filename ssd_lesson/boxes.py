"""Boxes: the two formats SSD uses, box area, and intersection over union (IoU).

A box is four numbers. ssd-lesson uses two layouts, and every name says which one it takes:

* ``xyxy``: (x1, y1, x2, y2), the top-left and bottom-right corners.
* ``cxcywh``: (cx, cy, w, h), the centre, the width and the height.

Coordinates are fractions of the image (0 = left/top edge, 1 = right/bottom edge) unless a name
says ``_px``. Every public function checks its input and raises ``ValueError`` saying what it
expected and what it got, so that a mix-up of formats or of pixels and fractions fails loudly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Anchors near the image border stick out of the image by up to half their size, so fractions a
# little outside [0, 1] are legal. Pixel coordinates are tens or hundreds: anything beyond this
# margin is almost certainly pixels passed where fractions were expected.
FRACTION_MARGIN = 0.5
# Ground-truth boxes lie inside the image: allow only annotations rounded at the border.
GROUND_TRUTH_MARGIN = 0.01


def as_boxes(boxes, name: str = "boxes", check_finite: bool = True) -> Tensor:
    """Return ``boxes`` as a floating-point tensor of shape (N, 4), or raise ``ValueError``."""
    if not isinstance(boxes, Tensor):
        try:
            boxes = torch.as_tensor(boxes, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"expected {name} as a tensor of shape (N, 4), got {boxes!r}") from err
    if boxes.numel() == 0:
        boxes = boxes.reshape(0, 4)  # "no boxes", however it was written: [], (0,), (0, 4)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"expected {name} of shape (N, 4), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        boxes = boxes.float()
    if check_finite and not torch.isfinite(boxes).all():
        raise ValueError(f"expected finite {name}, got NaN or inf in {_first_bad_row(boxes)}")
    return boxes


def check_xyxy(
    boxes,
    name: str = "boxes",
    fractions: bool = True,
    positive_area: bool = False,
    margin: float = FRACTION_MARGIN,
):
    """Check boxes in xyxy format and return them as a float tensor (N, 4).

    Args:
        boxes: (N, 4) xyxy boxes.
        name: what to call them in error messages.
        fractions: if True, coordinates must be fractions of the image, within ``margin`` of
            [0, 1].
        positive_area: if True, every box must have a width and a height above zero.
        margin: how far outside [0, 1] a coordinate may go: ``FRACTION_MARGIN`` for anchors,
            which may stick out of the image, ``GROUND_TRUTH_MARGIN`` for ground truth.
    """
    boxes = as_boxes(boxes, name, check_finite=False)
    if boxes.numel() == 0:
        return boxes
    # Fast path: one small reduction decides whether anything is wrong; only then do we look
    # for the offending row to write a useful message.
    lowest, highest, min_side = torch.stack(
        (boxes.amin(), boxes.amax(), (boxes[:, 2:] - boxes[:, :2]).amin())
    ).tolist()
    fine = math.isfinite(lowest) and math.isfinite(highest) and math.isfinite(min_side)
    fine = fine and (min_side > 0 if positive_area else min_side >= 0)
    if fractions:
        fine = fine and lowest >= -margin and highest <= 1 + margin
    if not fine:
        _raise_for_bad_row(boxes, name, fractions, positive_area, margin)
    return boxes


def _raise_for_bad_row(
    boxes: Tensor, name: str, fractions: bool, positive_area: bool, margin: float
) -> None:
    as_boxes(boxes, name)  # raises on NaN or inf
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    if (widths < 0).any() or (heights < 0).any():
        row = int(torch.nonzero((widths < 0) | (heights < 0))[0])
        raise ValueError(
            f"expected {name} in xyxy format with x2 >= x1 and y2 >= y1, got row {row} = "
            f"{boxes[row].tolist()}; is it in cxcywh format, or are two corners swapped?"
        )
    if positive_area and ((widths <= 0) | (heights <= 0)).any():
        row = int(torch.nonzero((widths <= 0) | (heights <= 0))[0])
        raise ValueError(
            f"expected {name} with positive width and height, got row {row} = "
            f"{boxes[row].tolist()} with zero area"
        )
    if fractions:
        _check_fractions(boxes, name, margin)


def _check_fractions(boxes: Tensor, name: str, margin: float) -> None:
    too_far = (boxes < -margin) | (boxes > 1 + margin)
    if too_far.any():
        row = int(torch.nonzero(too_far.any(dim=1))[0])
        if boxes[row].abs().max() > 2:
            hint = "these look like pixels: divide by the image width and height"
        else:
            hint = f"coordinates may lie at most {margin} outside [0, 1]: clip them to the image"
        raise ValueError(
            f"expected {name} as fractions of the image (0..1), got row {row} = "
            f"{boxes[row].tolist()}; {hint}"
        )


def _first_bad_row(boxes: Tensor) -> str:
    row = int(torch.nonzero(~torch.isfinite(boxes).all(dim=1))[0])
    return f"row {row} = {boxes[row].tolist()}"


def xyxy_to_cxcywh(boxes_xyxy) -> Tensor:
    """Corners to centre-size: (x1, y1, x2, y2) -> (cx, cy, w, h). Shapes (N, 4) -> (N, 4)."""
    boxes = check_xyxy(boxes_xyxy, "boxes_xyxy", fractions=False)
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes_cxcywh) -> Tensor:
    """Centre-size to corners: (cx, cy, w, h) -> (x1, y1, x2, y2). Shapes (N, 4) -> (N, 4)."""
    boxes = as_boxes(boxes_cxcywh, "boxes_cxcywh")
    if (boxes[:, 2:] < 0).any():
        row = int(torch.nonzero((boxes[:, 2:] < 0).any(dim=1))[0])
        raise ValueError(
            f"expected boxes_cxcywh with width and height >= 0, got row {row} = "
            f"{boxes[row].tolist()}; is it in xyxy format?"
        )
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def box_area(boxes_xyxy) -> Tensor:
    """Area of each box: (N, 4) xyxy fractions -> (N,), as a fraction of the image's area."""
    boxes = check_xyxy(boxes_xyxy, "boxes_xyxy")
    return _area(boxes)


def _area(boxes: Tensor) -> Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2) -> Tensor:
    """Intersection over union of every pair of boxes.

    Args:
        boxes1 (Tensor[N, 4]): xyxy, fractions of the image, positive area.
        boxes2 (Tensor[M, 4]): xyxy, fractions of the image, positive area.

    Returns:
        Tensor[N, M]: ``iou[i, j]`` = area(boxes1[i] ∩ boxes2[j]) / area(boxes1[i] ∪ boxes2[j]),
        a number from 0 (no overlap) to 1 (the same box).
    """
    boxes1 = check_xyxy(boxes1, "boxes1", positive_area=True)
    boxes2 = check_xyxy(boxes2, "boxes2", positive_area=True)
    return _iou(boxes1, boxes2)


def _iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """IoU without input checks, for callers that have checked already. (N, 4), (M, 4) -> (N, M)."""
    # 1) The overlap of two boxes is itself a box: its left edge is the larger of the two left
    #    edges, its right edge the smaller of the two right edges (same for top and bottom).
    #    If those edges cross, the boxes do not overlap: clamp the width or height to 0.
    x1, y1, x2, y2 = boxes1[:, None, :].unbind(-1)  # each (N, 1)
    other_x1, other_y1, other_x2, other_y2 = boxes2.unbind(-1)  # each (M,)
    overlap_w = torch.minimum(x2, other_x2).sub_(torch.maximum(x1, other_x1)).clamp_(min=0)
    overlap_h = torch.minimum(y2, other_y2).sub_(torch.maximum(y1, other_y1)).clamp_(min=0)
    intersection = overlap_w.mul_(overlap_h)  # (N, M)
    # 2) Union = both areas minus the part counted twice.
    union = (_area(boxes1)[:, None] + _area(boxes2)[None, :]).sub_(intersection)  # (N, M)
    return intersection.div_(union)
