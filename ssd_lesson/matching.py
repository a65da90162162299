"""Matching: which anchor is responsible for which ground-truth object.

The paper's two rules, applied to the IoU of every (object, anchor) pair:

1. *Forced match*: every ground-truth box is given the anchor it overlaps best, however low that
   IoU is, so that no object is left without an anchor.
2. *Threshold match*: every anchor whose best IoU with some ground truth is at least
   ``iou_threshold`` (0.5 in the paper) is given that best ground truth.

Every other anchor is background. Matching looks only at the fixed anchors and the ground truth,
never at the network's predictions: it has no parameters and no gradient. It only decides where
the loss is computed and what the targets are.

Conventions, the same as torchvision's ``SSDMatcher``:

* the threshold test is ``iou >= iou_threshold`` (the paper writes "> 0.5"; with real-valued
  IoUs the difference never matters);
* ties go to the lowest index: an anchor equally close to two objects takes the first one, an
  object equally close to two anchors is forced onto the first one;
* collisions: when two objects have the same best anchor, the later object (higher index) gets
  it, and the earlier one keeps only its threshold matches, if it has any. ssd-lesson makes this
  a rule (``scatter_reduce`` with "amax"). torchvision writes ``matches[idx] = arange(G)`` with
  repeated indices, which PyTorch leaves undefined; on the CPU the last write wins, so the two
  agree there.

Class labels: 0 is background, objects are 1..C. ``match_targets`` turns matches into labels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson.boxes import GROUND_TRUTH_MARGIN, _iou, as_boxes, check_xyxy

# "This anchor matched no object." An index into the ground-truth boxes otherwise.
BACKGROUND = -1
# The class label of background anchors; object classes are 1..C.
BACKGROUND_CLASS = 0
# The paper's IoU threshold for rule 2.
IOU_THRESHOLD = 0.5


class MatchExplanation(NamedTuple):
    """What matching decided for one image, and why (for lessons and widgets)."""

    matched_gt: Tensor  # (A,) index of the matched ground truth, or BACKGROUND
    forced: Tensor  # (A,) bool: this anchor is some object's best anchor (rule 1)
    above_threshold: Tensor  # (A,) bool: best IoU >= threshold (rule 2)
    best_iou_for_each_anchor: Tensor  # (A,)
    best_anchor_for_each_gt: Tensor  # (G,)
    best_iou_for_each_gt: Tensor  # (G,)


class MatchTargets(NamedTuple):
    """Per-anchor training targets of one image (``(B, A)`` for a batch)."""

    labels: Tensor  # (A,) class per anchor: 0 = background, 1..C = object class
    matched_gt: Tensor  # (A,) index of the matched ground truth, or BACKGROUND


def match_anchors(anchors_xyxy, gt_boxes, iou_threshold: float = IOU_THRESHOLD) -> Tensor:
    """Match one image's anchors to its ground-truth boxes with the paper's two rules.

    Args:
        anchors_xyxy (Tensor[A, 4]): xyxy, fractions of the image.
        gt_boxes (Tensor[G, 4]): xyxy, fractions of the image; G may be 0.
        iou_threshold: rule 2's threshold, in (0, 1].

    Returns:
        Tensor[A] (int64): index of the matched ground-truth box per anchor, ``BACKGROUND`` (-1)
        for anchors that matched nothing. With G = 0 every anchor is background.
    """
    anchors, gt = _check_inputs(anchors_xyxy, gt_boxes, iou_threshold)
    return _match_checked(anchors, gt, iou_threshold)


def _match_checked(anchors: Tensor, gt: Tensor, iou_threshold: float) -> Tensor:
    """``match_anchors`` on inputs that have been checked already."""
    if gt.shape[0] == 0:
        return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.long, device=anchors.device)
    return _match_from_iou(_iou(gt, anchors), iou_threshold)[0]


def _match_from_iou(iou: Tensor, iou_threshold: float) -> tuple[Tensor, Tensor, Tensor]:
    """The two rules on an IoU table (G, A), G >= 1.

    Returns matched (A,), best IoU for each anchor (A,) and best anchor for each gt (G,).
    """
    # Rule 2: each anchor takes its best ground truth if the IoU reaches the threshold.
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=0)  # (A,), (A,)
    above = best_iou_for_each_anchor >= iou_threshold
    matched = torch.where(above, best_gt_for_each_anchor, BACKGROUND)  # (A,)
    # Rule 1: each ground truth is forced onto its best anchor. "amax" makes the later ground
    # truth win a collision; include_self=False lets rule 1 overrule rule 2 on those anchors.
    best_anchor_for_each_gt = iou.argmax(dim=1)  # (G,)
    gt_index = torch.arange(iou.shape[0], device=iou.device)
    matched.scatter_reduce_(0, best_anchor_for_each_gt, gt_index, reduce="amax", include_self=False)
    return matched, best_iou_for_each_anchor, best_anchor_for_each_gt


def explain_matches(
    anchors_xyxy, gt_boxes, iou_threshold: float = IOU_THRESHOLD
) -> MatchExplanation:
    """``match_anchors`` plus the reasons: which anchors each rule picked and the best IoUs."""
    anchors, gt = _check_inputs(anchors_xyxy, gt_boxes, iou_threshold)
    num_anchors = anchors.shape[0]
    if gt.shape[0] == 0:
        nothing = torch.zeros(num_anchors, dtype=torch.bool)
        return MatchExplanation(
            matched_gt=_match_checked(anchors, gt, iou_threshold),
            forced=nothing,
            above_threshold=nothing.clone(),
            best_iou_for_each_anchor=torch.zeros(num_anchors),
            best_anchor_for_each_gt=torch.zeros(0, dtype=torch.long),
            best_iou_for_each_gt=torch.zeros(0),
        )
    iou = _iou(gt, anchors)  # (G, A)
    matched, best_iou_for_each_anchor, best_anchor_for_each_gt = _match_from_iou(iou, iou_threshold)
    forced = torch.zeros(num_anchors, dtype=torch.bool)
    forced[best_anchor_for_each_gt] = True
    return MatchExplanation(
        matched_gt=matched,
        forced=forced,
        above_threshold=best_iou_for_each_anchor >= iou_threshold,
        best_iou_for_each_anchor=best_iou_for_each_anchor,
        best_anchor_for_each_gt=best_anchor_for_each_gt,
        best_iou_for_each_gt=iou.gather(1, best_anchor_for_each_gt[:, None])[:, 0],
    )


def match_anchors_batched(
    anchors_xyxy, gt_boxes, gt_mask, iou_threshold: float = IOU_THRESHOLD
) -> Tensor:
    """``match_anchors`` for B images at once, without a Python loop over images.

    Images have different numbers of objects, so the boxes are padded to the largest count G
    (see ``pad_boxes``) and ``gt_mask`` says which rows are real.

    Args:
        anchors_xyxy (Tensor[A, 4]): xyxy fractions, shared by every image.
        gt_boxes (Tensor[B, G, 4]): xyxy fractions; padded rows may hold anything finite.
        gt_mask (Tensor[B, G], bool): True for real boxes.
        iou_threshold: rule 2's threshold.

    Returns:
        Tensor[B, A] (int64): per image, as ``match_anchors`` would return.
    """
    anchors, _ = _check_inputs(anchors_xyxy, torch.zeros(0, 4), iou_threshold)
    gt_boxes = torch.as_tensor(gt_boxes)
    gt_mask = torch.as_tensor(gt_mask)
    if gt_boxes.ndim != 3 or gt_boxes.shape[-1] != 4:
        raise ValueError(f"expected gt_boxes of shape (B, G, 4), got {tuple(gt_boxes.shape)}")
    if gt_mask.dtype != torch.bool or gt_mask.shape != gt_boxes.shape[:2]:
        raise ValueError(
            f"expected gt_mask as a bool tensor of shape {tuple(gt_boxes.shape[:2])}, "
            f"got {gt_mask.dtype} of shape {tuple(gt_mask.shape)}"
        )
    _check_gt(gt_boxes[gt_mask])
    num_images, num_gt = gt_mask.shape
    if num_gt == 0:
        shape = (num_images, anchors.shape[0])
        return torch.full(shape, BACKGROUND, dtype=torch.long, device=anchors.device)
    # IoU of every (image, object, anchor); padded objects get -1 so that they never win.
    iou = _iou(gt_boxes.reshape(-1, 4), anchors).reshape(num_images, num_gt, -1)  # (B, G, A)
    iou = iou.masked_fill(~gt_mask[..., None], -1.0)
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=1)  # (B, A)
    above = best_iou_for_each_anchor >= iou_threshold
    matched = torch.where(above, best_gt_for_each_anchor, BACKGROUND)  # (B, A)
    best_anchor_for_each_gt = iou.argmax(dim=2)  # (B, G)
    # Padded objects must not force anything: send them to a scratch column A, dropped after.
    scratch = anchors.shape[0]
    best_anchor_for_each_gt = best_anchor_for_each_gt.masked_fill(~gt_mask, scratch)
    gt_index = torch.arange(num_gt, device=gt_boxes.device).expand(num_images, num_gt)
    matched = torch.cat((matched, matched.new_full((num_images, 1), BACKGROUND)), dim=1)
    matched.scatter_reduce_(1, best_anchor_for_each_gt, gt_index, reduce="amax", include_self=False)
    return matched[:, :scratch]


def pad_boxes(gt_boxes_list) -> tuple[Tensor, Tensor]:
    """Stack a list of (G_i, 4) box tensors into (B, G, 4) with zero padding and a (B, G) mask."""
    boxes = [as_boxes(b, "gt_boxes", check_finite=False) for b in gt_boxes_list]
    most = max((b.shape[0] for b in boxes), default=0)
    padded = torch.zeros(len(boxes), most, 4)
    mask = torch.zeros(len(boxes), most, dtype=torch.bool)
    for i, b in enumerate(boxes):
        padded[i, : b.shape[0]] = b
        mask[i, : b.shape[0]] = True
    return padded, mask


def match_batch(
    anchors_xyxy, gt_boxes_list, iou_threshold: float = IOU_THRESHOLD, method: str = "auto"
) -> Tensor:
    """Match a batch of images given as a list of (G_i, 4) boxes. Returns (B, A) int64.

    ``method``: ``"per_image"`` loops over images calling ``match_anchors``; ``"batched"`` pads
    and calls ``match_anchors_batched``; ``"auto"`` picks per image on the CPU (each image's
    IoU matrix fits in the cache, so it was faster in benchmarks/bench_matching.py) and batched
    on other devices, where one big kernel beats many small ones.
    """
    if method not in ("auto", "per_image", "batched"):
        raise ValueError(f"expected method 'auto', 'per_image' or 'batched', got {method!r}")
    anchors, _ = _check_inputs(anchors_xyxy, torch.zeros(0, 4), iou_threshold)
    if method == "auto":
        method = "per_image" if anchors.device.type == "cpu" else "batched"
    if method == "batched":
        padded, mask = pad_boxes(gt_boxes_list)
        padded, mask = padded.to(anchors.device), mask.to(anchors.device)
        return match_anchors_batched(anchors, padded, mask, iou_threshold)
    # The anchors were checked once above; only each image's boxes need checking.
    matches = [_match_checked(anchors, _check_gt(gt), iou_threshold) for gt in gt_boxes_list]
    if not matches:
        return torch.zeros(0, anchors.shape[0], dtype=torch.long)
    return torch.stack(matches)


def match_targets(
    anchors_xyxy, gt_boxes, gt_labels, iou_threshold: float = IOU_THRESHOLD
) -> MatchTargets:
    """Per-anchor class labels for one image: 0 for background, the object's class otherwise.

    Args:
        anchors_xyxy (Tensor[A, 4]): xyxy fractions.
        gt_boxes (Tensor[G, 4]): xyxy fractions.
        gt_labels (Tensor[G], int): object classes, 1..C (0 is reserved for background).

    Returns:
        MatchTargets(labels (A,) int64, matched_gt (A,) int64 with BACKGROUND = -1).
    """
    gt_labels = _check_labels(gt_labels, gt_boxes)
    matched = match_anchors(anchors_xyxy, gt_boxes, iou_threshold)
    return MatchTargets(_labels_from_matches(matched, gt_labels), matched)


def match_targets_batch(
    anchors_xyxy, gt_boxes_list, gt_labels_list, iou_threshold: float = IOU_THRESHOLD
) -> MatchTargets:
    """``match_targets`` for a batch given as lists; returns labels and matches of shape (B, A)."""
    if len(gt_boxes_list) != len(gt_labels_list):
        raise ValueError(
            f"expected one labels tensor per image, got {len(gt_boxes_list)} box tensors and "
            f"{len(gt_labels_list)} label tensors"
        )
    labels_list = [
        _check_labels(lab, box) for box, lab in zip(gt_boxes_list, gt_labels_list, strict=True)
    ]
    matched = match_batch(anchors_xyxy, gt_boxes_list, iou_threshold)  # (B, A)
    # Pad the labels like the boxes, then look up every anchor's class in one gather.
    most = max((lab.shape[0] for lab in labels_list), default=0)
    padded_labels = torch.zeros(len(labels_list), max(most, 1), dtype=torch.long)
    for i, lab in enumerate(labels_list):
        padded_labels[i, : lab.shape[0]] = lab
    labels = padded_labels.to(matched.device).gather(1, matched.clamp(min=0))  # (B, A)
    labels = torch.where(matched == BACKGROUND, BACKGROUND_CLASS, labels)
    return MatchTargets(labels, matched)


def _labels_from_matches(matched: Tensor, gt_labels: Tensor) -> Tensor:
    # Look up every anchor's object class, then overwrite background anchors with class 0.
    labels = gt_labels[matched.clamp(min=0)] if gt_labels.numel() else torch.zeros_like(matched)
    return torch.where(matched == BACKGROUND, BACKGROUND_CLASS, labels)


def _check_labels(gt_labels, gt_boxes) -> Tensor:
    gt_labels = torch.as_tensor(gt_labels)
    if gt_labels.numel() == 0:
        gt_labels = gt_labels.reshape(0).long()  # no objects, however it was written
    num_boxes = as_boxes(gt_boxes, "gt_boxes", check_finite=False).shape[0]
    if gt_labels.ndim != 1 or gt_labels.shape[0] != num_boxes:
        raise ValueError(
            f"expected gt_labels of shape ({num_boxes},), one per box, got {tuple(gt_labels.shape)}"
        )
    if gt_labels.is_floating_point() or gt_labels.dtype == torch.bool:
        raise ValueError(f"expected integer class labels, got dtype {gt_labels.dtype}")
    if (gt_labels < 1).any():
        raise ValueError(
            f"expected object classes 1..C (0 is background), got {gt_labels.tolist()}; if your "
            "dataset numbers classes from 0, add 1 to every label"
        )
    return gt_labels.long()


def _check_gt(gt_boxes) -> Tensor:
    """Ground truth: xyxy fractions inside the image, positive area."""
    return check_xyxy(gt_boxes, "gt_boxes", positive_area=True, margin=GROUND_TRUTH_MARGIN)


def _check_inputs(anchors_xyxy, gt_boxes, iou_threshold) -> tuple[Tensor, Tensor]:
    if (
        isinstance(iou_threshold, bool)
        or not isinstance(iou_threshold, (int, float))
        or not 0 < iou_threshold <= 1
    ):
        raise ValueError(f"expected iou_threshold in (0, 1], got {iou_threshold!r}")
    anchors = check_xyxy(anchors_xyxy, "anchors_xyxy", positive_area=True)
    if anchors.shape[0] == 0:
        raise ValueError("expected at least one anchor, got anchors_xyxy of shape (0, 4)")
    gt = _check_gt(gt_boxes)
    return anchors, gt
