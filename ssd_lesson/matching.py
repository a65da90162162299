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
  it, and the earlier one keeps only its threshold matches, if it has any. ``match_anchors``
  makes this a rule by forcing the objects one after the other. torchvision writes
  ``matches[idx] = arange(G)`` with repeated indices, which PyTorch leaves undefined; on the CPU
  the last write wins, so the two agree there. (Such collisions are rare: SSD's best-anchor rule
  is not the paper authors' one-to-one "bipartite" matching, which would give the earlier
  object its second-best anchor instead.)

Class labels: 0 is background, objects are 1..C. ``match_targets`` turns matches into labels.
The same rules for a whole batch at once, without a Python loop, are in ``ssd_lesson.fast``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou

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


def match_anchors(anchors, gt_boxes, iou_threshold: float = IOU_THRESHOLD) -> Tensor:
    """Match one image's anchors to its ground-truth boxes with the paper's two rules.

    Args:
        anchors (Tensor[A, 4]): xyxy, fractions of the image.
        gt_boxes (Tensor[G, 4]): xyxy, fractions of the image; G may be 0.
        iou_threshold: rule 2's threshold, in (0, 1].

    Returns:
        Tensor[A] (int64): index of the matched ground-truth box per anchor, ``BACKGROUND`` (-1)
        for anchors that matched nothing. With G = 0 every anchor is background.
    """
    anchors, gt_boxes, iou_threshold = checks.match_inputs(anchors, gt_boxes, iou_threshold)
    matched = torch.full((len(anchors),), BACKGROUND, device=anchors.device)  # (A,)
    if len(gt_boxes) == 0:
        return matched  # no objects: every anchor is background
    iou = box_iou(gt_boxes, anchors)  # (G, A)
    # Rule 2, threshold: each anchor takes its best object if their IoU reaches the threshold.
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=0)  # (A,), (A,)
    above = best_iou_for_each_anchor >= iou_threshold
    matched[above] = best_gt_for_each_anchor[above]
    # Rule 1, forced: each object takes its best anchor, however low their IoU, overruling
    # rule 2 there. One object after the other, so the later one wins a shared best anchor.
    best_anchor_for_each_gt = iou.argmax(dim=1)  # (G,)
    for gt_index, anchor_index in enumerate(best_anchor_for_each_gt.tolist()):
        matched[anchor_index] = gt_index
    return matched


def explain_matches(anchors, gt_boxes, iou_threshold: float = IOU_THRESHOLD) -> MatchExplanation:
    """``match_anchors`` plus the reasons: which anchors each rule picked and the best IoUs."""
    matched = match_anchors(anchors, gt_boxes, iou_threshold)
    anchors, gt_boxes = checks.anchors(anchors), checks.ground_truth(gt_boxes)  # as tensors
    iou = box_iou(gt_boxes, anchors)  # (G, A)
    if len(gt_boxes) == 0:  # no objects: no best anchors, and every anchor's best IoU is 0
        iou = torch.zeros(1, len(anchors), dtype=anchors.dtype)
    best_iou_for_each_anchor = iou.max(dim=0).values  # (A,)
    best_iou_for_each_gt, best_anchor_for_each_gt = iou[: len(gt_boxes)].max(dim=1)  # (G,)
    forced = torch.zeros(len(anchors), dtype=torch.bool)
    forced[best_anchor_for_each_gt] = True
    return MatchExplanation(
        matched_gt=matched,
        forced=forced,
        above_threshold=best_iou_for_each_anchor >= iou_threshold,
        best_iou_for_each_anchor=best_iou_for_each_anchor,
        best_anchor_for_each_gt=best_anchor_for_each_gt,
        best_iou_for_each_gt=best_iou_for_each_gt,
    )


def match_targets(
    anchors, gt_boxes, gt_labels, iou_threshold: float = IOU_THRESHOLD
) -> MatchTargets:
    """Per-anchor class labels for one image: 0 for background, the object's class otherwise.

    Args:
        anchors (Tensor[A, 4]): xyxy fractions.
        gt_boxes (Tensor[G, 4]): xyxy fractions.
        gt_labels (Tensor[G], int): object classes, 1..C (0 is reserved for background).

    Returns:
        MatchTargets(labels (A,) int64, matched_gt (A,) int64 with BACKGROUND = -1).
    """
    num_gt = len(checks.ground_truth(gt_boxes))
    gt_labels = checks.integer_labels(gt_labels, "gt_labels", count=num_gt)
    matched = match_anchors(anchors, gt_boxes, iou_threshold)  # (A,)
    # Look up every anchor's object class, then give background anchors class 0.
    labels = gt_labels.to(matched.device)[matched.clamp(min=0)] if len(gt_labels) else matched
    return MatchTargets(torch.where(matched == BACKGROUND, BACKGROUND_CLASS, labels), matched)
