"""Encoding: the four numbers that shift and scale an anchor onto an object.

The network never outputs box corners. For every anchor it outputs four *offsets*:

* ``t_x``, ``t_y``: move the anchor's centre by this fraction of the anchor's width (height);
* ``t_w``, ``t_h``: multiply the anchor's width (height) by ``exp(t_w)`` (``exp(t_h)``). On this
  log scale "twice as wide" (+0.69) and "half as wide" (-0.69) are the same distance from "the
  same width" (0).

``encode`` turns a matched (ground truth, anchor) pair into the offsets the network should output;
``decode`` turns offsets back into a box. Both take and give xyxy fractions of the image.

The "variances" (0.1 for the centre, 0.2 for the size) are not in the paper's equations. The
original Caffe code divides the offsets by them so that the targets are roughly unit-sized, which
suits a loss and a learning rate tuned for numbers near 1. torchvision writes the same thing as
``BoxCoder(weights=(10, 10, 5, 5))``: 1 / 0.1 = 10 and 1 / 0.2 = 5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson.boxes import as_boxes, check_xyxy
from ssd_lesson.matching import BACKGROUND, IOU_THRESHOLD, match_targets_batch

# Caffe SSD's prior_variance: the centre offsets are divided by 0.1, the size offsets by 0.2.
VARIANCES = (0.1, 0.2)
# Before ``exp``, decode caps the size offsets t_w, t_h (after undoing the variance) at
# log(1000 / 16) ≈ 4.14, so a wild prediction grows an anchor at most 62.5 times instead of
# overflowing to inf. The value is torchvision's ``bbox_xform_clip``, inherited from Detectron:
# a 16-pixel anchor may become at most a 1000-pixel box.
SIZE_CLAMP = math.log(1000.0 / 16)


class TrainingTargets(NamedTuple):
    """What every anchor of every image should predict: shapes (B, A) and (B, A, 4)."""

    labels: Tensor  # (B, A) int64: 0 = background, 1..C = object class
    offsets: Tensor  # (B, A, 4) encoded offsets; zeros for background anchors
    matched_gt: Tensor  # (B, A) int64: index of the matched object, or BACKGROUND = -1


def encode(gt_boxes, anchors_xyxy, variances: Sequence[float] = VARIANCES) -> Tensor:
    """The offsets that move each anchor onto its ground-truth box.

    Args:
        gt_boxes (Tensor[A, 4]): xyxy fractions, positive width and height; row i is the object
            matched to anchor i.
        anchors_xyxy (Tensor[A, 4]): xyxy fractions, positive width and height.
        variances: (centre, size) divisors in (0, 1], ``VARIANCES`` by default; (1, 1) gives
            the paper's plain equations.

    Returns:
        Tensor[A, 4]: (t_x, t_y, t_w, t_h) per anchor, divided by the variances.
    """
    gt = check_xyxy(gt_boxes, "gt_boxes", positive_area=True)
    anchors = check_xyxy(anchors_xyxy, "anchors_xyxy", positive_area=True)
    if gt.shape != anchors.shape:
        raise ValueError(
            f"expected one ground-truth box per anchor, got gt_boxes of shape "
            f"{tuple(gt.shape)} and anchors_xyxy of shape {tuple(anchors.shape)}"
        )
    return _encode(gt, anchors, _check_variances(variances))


def decode(offsets, anchors_xyxy, variances: Sequence[float] = VARIANCES) -> Tensor:
    """The boxes that the offsets make of the anchors (the inverse of ``encode``).

    Args:
        offsets (Tensor[A, 4] or Tensor[B, A, 4]): (t_x, t_y, t_w, t_h), divided by the variances.
        anchors_xyxy (Tensor[A, 4]): xyxy fractions, positive width and height.
        variances: the same (centre, size) divisors that encoded the offsets.

    Returns:
        Tensor of the shape of ``offsets``: xyxy boxes. They may stick out of the image.
    """
    anchors = check_xyxy(anchors_xyxy, "anchors_xyxy", positive_area=True)
    offsets = _check_offsets(offsets, anchors.shape[0])
    return _decode(offsets, anchors.to(offsets.dtype), _check_variances(variances))


@torch.no_grad()  # targets are fixed answers: no gradient, even if the boxes require one
def build_targets(
    anchors_xyxy,
    gt_boxes_list,
    gt_labels_list,
    iou_threshold: float = IOU_THRESHOLD,
    variances: Sequence[float] = VARIANCES,
) -> TrainingTargets:
    """Match and encode a whole batch: the labels and offsets every anchor should predict.

    Args:
        anchors_xyxy (Tensor[A, 4]): xyxy fractions.
        gt_boxes_list: one (G_i, 4) tensor of xyxy fractions per image; G_i may be 0.
        gt_labels_list: one (G_i,) tensor of classes 1..C per image.

    Returns:
        TrainingTargets(labels (B, A), offsets (B, A, 4), matched_gt (B, A)). Background anchors
        get label 0 and offsets 0 (their offsets are never used by the loss).
    """
    variances = _check_variances(variances)
    labels, matched = match_targets_batch(
        anchors_xyxy, gt_boxes_list, gt_labels_list, iou_threshold
    )  # (B, A) each
    anchors = as_boxes(anchors_xyxy, "anchors_xyxy").to(matched.device)
    # All images' boxes in one (sum of G_i, 4) tensor, in the anchors' dtype (pad_boxes would
    # round float64 boxes to float32); image b's boxes start at row first_box[b].
    gt_boxes = [as_boxes(b, "gt_boxes").to(anchors) for b in gt_boxes_list]  # checked already
    all_gt = torch.cat(gt_boxes) if gt_boxes else anchors.new_zeros(0, 4)
    first_box = torch.tensor([0] + [len(b) for b in gt_boxes[:-1]], device=anchors.device)
    first_box = first_box.cumsum(0)  # (B,)
    # 1) Find the positives: (image, anchor) pairs matched to an object. They are a few hundred
    #    of the B x A pairs, so only they are encoded; background anchors keep offsets 0 (the
    #    loss never looks at them).
    image, anchor = torch.nonzero(matched != BACKGROUND, as_tuple=True)  # (P,) each
    # 2) Each positive's matched box, and its offsets from its anchor.
    matched_boxes = all_gt[first_box[image] + matched[image, anchor]]  # (P, 4)
    offsets = anchors.new_zeros(*matched.shape, 4)  # (B, A, 4)
    offsets[image, anchor] = _encode(matched_boxes, anchors[anchor], variances)
    return TrainingTargets(labels, offsets, matched)


def _encode(gt: Tensor, anchors: Tensor, variances: tuple[float, float]) -> Tensor:
    """``encode`` without checks; any shape (..., 4) that broadcasts."""
    centre_var, size_var = variances
    gt_w, gt_h = gt[..., 2] - gt[..., 0], gt[..., 3] - gt[..., 1]
    a_w, a_h = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
    gt_cx, gt_cy = gt[..., 0] + 0.5 * gt_w, gt[..., 1] + 0.5 * gt_h
    a_cx, a_cy = anchors[..., 0] + 0.5 * a_w, anchors[..., 1] + 0.5 * a_h
    t_x = (gt_cx - a_cx) / a_w / centre_var  # move the centre, in anchor widths
    t_y = (gt_cy - a_cy) / a_h / centre_var
    t_w = torch.log(gt_w / a_w) / size_var  # scale the size, on a log scale
    t_h = torch.log(gt_h / a_h) / size_var
    return torch.stack((t_x, t_y, t_w, t_h), dim=-1)


def _decode(offsets: Tensor, anchors: Tensor, variances: tuple[float, float]) -> Tensor:
    """``decode`` without checks: offsets (..., A, 4), anchors (A, 4)."""
    centre_var, size_var = variances
    a_w, a_h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    a_cx, a_cy = anchors[:, 0] + 0.5 * a_w, anchors[:, 1] + 0.5 * a_h
    t_x, t_y, t_w, t_h = offsets.unbind(-1)
    cx = a_cx + t_x * centre_var * a_w
    cy = a_cy + t_y * centre_var * a_h
    w = a_w * torch.exp(torch.clamp(t_w * size_var, max=SIZE_CLAMP))
    h = a_h * torch.exp(torch.clamp(t_h * size_var, max=SIZE_CLAMP))
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


def _check_offsets(offsets, num_anchors: int) -> Tensor:
    if not isinstance(offsets, Tensor):
        try:
            offsets = torch.as_tensor(offsets, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"expected offsets as a tensor (A, 4), got {offsets!r}") from err
    if offsets.ndim not in (2, 3) or offsets.shape[-2:] != (num_anchors, 4):
        raise ValueError(
            f"expected offsets of shape ({num_anchors}, 4) or (B, {num_anchors}, 4), one row per "
            f"anchor, got {tuple(offsets.shape)}"
        )
    if not offsets.is_floating_point():
        offsets = offsets.float()
    if not torch.isfinite(offsets).all():
        raise ValueError(
            "expected finite offsets, got NaN or inf; if they come from the network, training "
            "has diverged (is the learning rate too high?)"
        )
    return offsets


def _check_variances(variances) -> tuple[float, float]:
    # Variances are two divisors in (0, 1], such as (0.1, 0.2); torchvision's BoxCoder weights
    # (10, 10, 5, 5) are their inverses. (Far above 1, decode would overflow to NaN.)
    message = (
        f"expected variances as two numbers (centre, size) in (0, 1], such as {VARIANCES}, got "
        f"{variances!r}; torchvision's BoxCoder weights (10, 10, 5, 5) are 1 / variances"
    )
    try:
        if isinstance(variances, str) or any(isinstance(v, (bool, str)) for v in variances):
            raise TypeError  # "12" would otherwise be read as (1.0, 2.0), True as 1.0
        centre_var, size_var = (float(v) for v in variances)
    except (TypeError, ValueError) as err:
        raise ValueError(message) from err
    if not (0 < centre_var <= 1 and 0 < size_var <= 1):
        raise ValueError(message)
    return centre_var, size_var
