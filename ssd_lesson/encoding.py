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

from ssd_lesson import checks
from ssd_lesson.matching import BACKGROUND, IOU_THRESHOLD, match_targets

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


def encode(anchors, gt_boxes, variances: Sequence[float] = VARIANCES) -> Tensor:
    """The offsets that move each anchor onto its ground-truth box.

    Args:
        anchors (Tensor[A, 4]): xyxy fractions, positive width and height.
        gt_boxes (Tensor[A, 4]): xyxy fractions, positive width and height; row i is the object
            matched to anchor i.
        variances: (centre, size) divisors in (0, 1], ``VARIANCES`` by default; (1, 1) gives
            the paper's plain equations.

    Returns:
        Tensor[A, 4]: (t_x, t_y, t_w, t_h) per anchor, divided by the variances.
    """
    anchors, gt, (centre_var, size_var) = checks.encode_inputs(anchors, gt_boxes, variances)
    a_w, a_h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    a_cx, a_cy = anchors[:, 0] + 0.5 * a_w, anchors[:, 1] + 0.5 * a_h
    gt_w, gt_h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    gt_cx, gt_cy = gt[:, 0] + 0.5 * gt_w, gt[:, 1] + 0.5 * gt_h
    t_x = (gt_cx - a_cx) / a_w / centre_var  # move the centre, in anchor widths
    t_y = (gt_cy - a_cy) / a_h / centre_var
    t_w = torch.log(gt_w / a_w) / size_var  # scale the size, on a log scale
    t_h = torch.log(gt_h / a_h) / size_var
    return torch.stack((t_x, t_y, t_w, t_h), dim=-1)


def decode(anchors, offsets, variances: Sequence[float] = VARIANCES) -> Tensor:
    """The boxes that the offsets make of the anchors (the inverse of ``encode``).

    Args:
        anchors (Tensor[A, 4]): xyxy fractions, positive width and height.
        offsets (Tensor[A, 4] or Tensor[B, A, 4]): (t_x, t_y, t_w, t_h), divided by the variances.
        variances: the same (centre, size) divisors that encoded the offsets.

    Returns:
        Tensor of the shape of ``offsets``: xyxy boxes. They may stick out of the image.
    """
    anchors, offsets, (centre_var, size_var) = checks.decode_inputs(anchors, offsets, variances)
    a_w, a_h = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    a_cx, a_cy = anchors[:, 0] + 0.5 * a_w, anchors[:, 1] + 0.5 * a_h
    t_x, t_y, t_w, t_h = offsets.unbind(-1)
    cx = a_cx + t_x * centre_var * a_w
    cy = a_cy + t_y * centre_var * a_h
    # SIZE_CLAMP caps a wild size offset before exp, so that it cannot overflow to inf.
    w = a_w * torch.exp(torch.clamp(t_w * size_var, max=SIZE_CLAMP))
    h = a_h * torch.exp(torch.clamp(t_h * size_var, max=SIZE_CLAMP))
    return torch.stack((cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h), dim=-1)


@torch.no_grad()  # targets are fixed answers: no gradient, even if the boxes require one
def build_targets(
    anchors,
    gt_boxes_list,
    gt_labels_list,
    iou_threshold: float = IOU_THRESHOLD,
    variances: Sequence[float] = VARIANCES,
) -> TrainingTargets:
    """Match and encode a whole batch: the labels and offsets every anchor should predict.

    Args:
        anchors (Tensor[A, 4]): xyxy fractions.
        gt_boxes_list: one (G_i, 4) tensor of xyxy fractions per image; G_i may be 0.
        gt_labels_list: one (G_i,) tensor of classes 1..C per image.

    Returns:
        TrainingTargets(labels (B, A), offsets (B, A, 4), matched_gt (B, A)). Background anchors
        get label 0 and offsets 0 (their offsets are never used by the loss). Training uses
        ``ssd_lesson.fast.build_targets``, the same without the loop over images.
    """
    anchors, gt_boxes_list, gt_labels_list = checks.batch_targets_inputs(
        anchors, gt_boxes_list, gt_labels_list
    )
    labels, offsets, matched = [], [], []
    for gt_boxes, gt_labels in zip(gt_boxes_list, gt_labels_list, strict=True):
        image_labels, image_matched = match_targets(anchors, gt_boxes, gt_labels, iou_threshold)
        positive = image_matched != BACKGROUND  # (A,) anchors matched to an object
        image_offsets = torch.zeros_like(anchors)  # (A, 4): background anchors keep 0
        matched_boxes = gt_boxes[image_matched[positive]]  # (P, 4) each positive's object
        image_offsets[positive] = encode(anchors[positive], matched_boxes, variances)
        labels.append(image_labels)
        offsets.append(image_offsets)
        matched.append(image_matched)
    if not matched:  # a batch of no images
        no_labels = torch.zeros(0, len(anchors), dtype=torch.long, device=anchors.device)
        return TrainingTargets(no_labels, anchors.new_zeros(0, len(anchors), 4), no_labels)
    return TrainingTargets(torch.stack(labels), torch.stack(offsets), torch.stack(matched))
