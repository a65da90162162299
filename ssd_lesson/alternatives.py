"""The roads SSD did not take: other matching rules and losses, and recall split by object size.

Lesson 08 trains the package's SSD again with one piece swapped at a time
(``ssd_lesson.ablations``). The pieces it swaps in live here, each short enough to read:

* ``match_anchors_greedy``: the SSD authors' own rule 1 (Caffe's ``MatchBBox``): take the best
  remaining (object, anchor) pair, remove both, repeat, so no object loses its forced anchor.
  ``ssd_lesson.matching.match_anchors`` is torchvision's simpler "each object takes its best
  anchor" rule, where the later of two objects wins a shared best anchor.
* ``match_anchors_threshold_only``: rule 2 alone, no forced match: an object whose best IoU is
  below the threshold gets no anchor at all.
* ``targets_with``: training targets built with any of these rules, for ``fit(targets_fn=...)``.
* ``all_negatives_loss``: the SSD loss with every background anchor counted, no mining.
* ``softmax_focal_loss``: RetinaNet's answer to the same imbalance (Lin et al., 2017): every
  anchor counts, but each anchor's cross-entropy is multiplied by ``(1 - p)**gamma``, so the
  anchors the network already gets right (p near 1) add almost nothing.
* ``recall_by_size``: of the small, medium and large objects, the fraction found.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou
from ssd_lesson.encoding import TrainingTargets, encode
from ssd_lesson.loss import LossResult, ssd_loss
from ssd_lesson.matching import BACKGROUND, BACKGROUND_CLASS, IOU_THRESHOLD, match_anchors

# RetinaNet's best setting (its Table 1): gamma = 2, and positives weighted by alpha = 0.25.
FOCAL_GAMMA = 2.0
FOCAL_ALPHA = 0.25
# An object is "found" when a detection of its class with at least this score overlaps it by
# IoU >= 0.5: lesson 07's display threshold, what a user of the detector would see.
FOUND_SCORE = 0.5
# Size buckets by the longer side of the box, in pixels of the lesson's 64-pixel images (COCO
# uses areas of 32² and 96² pixels on photographs ten times larger).
SIZE_BUCKETS = {"small": (0.0, 16.0), "medium": (16.0, 32.0), "large": (32.0, float("inf"))}


def match_anchors_greedy(anchors, gt_boxes, iou_threshold: float = IOU_THRESHOLD) -> Tensor:
    """``match_anchors`` with the authors' greedy one-to-one rule 1. Returns (A,) int64."""
    anchors, gt_boxes, iou_threshold = checks.match_inputs(anchors, gt_boxes, iou_threshold)
    matched = torch.full((len(anchors),), BACKGROUND, device=anchors.device)  # (A,)
    if len(gt_boxes) == 0:
        return matched
    iou = box_iou(gt_boxes, anchors)  # (G, A)
    # Rule 2, threshold: as in match_anchors.
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=0)  # (A,), (A,)
    above = best_iou_for_each_anchor >= iou_threshold
    matched[above] = best_gt_for_each_anchor[above]
    # Rule 1, greedy one-to-one: the best remaining pair, then cross out its row and column.
    table = iou.clone()
    for _ in range(len(gt_boxes)):
        gt_index, anchor_index = divmod(int(table.argmax()), len(anchors))
        matched[anchor_index] = gt_index
        table[gt_index, :] = -1.0  # this object has its anchor
        table[:, anchor_index] = -1.0  # and no other object may take it
    return matched


def match_anchors_threshold_only(anchors, gt_boxes, iou_threshold: float = IOU_THRESHOLD):
    """Rule 2 alone: each anchor takes its best object if their IoU reaches the threshold."""
    anchors, gt_boxes, iou_threshold = checks.match_inputs(anchors, gt_boxes, iou_threshold)
    matched = torch.full((len(anchors),), BACKGROUND, device=anchors.device)  # (A,)
    if len(gt_boxes) == 0:
        return matched
    best_iou_for_each_anchor, best_gt_for_each_anchor = box_iou(gt_boxes, anchors).max(dim=0)
    above = best_iou_for_each_anchor >= iou_threshold
    matched[above] = best_gt_for_each_anchor[above]
    return matched


# The three rules lesson 08 compares, by name.
MATCHERS = {
    "forced best": match_anchors,
    "greedy one-to-one": match_anchors_greedy,
    "threshold only": match_anchors_threshold_only,
}


def targets_with(matcher, iou_threshold: float = IOU_THRESHOLD):
    """A ``targets_fn`` for ``fit``: ``build_targets`` with ``matcher`` and ``iou_threshold``.

    ``matcher(anchors, gt_boxes, iou_threshold) -> (A,)`` is one of ``MATCHERS``' rules or your
    own. The returned function takes (anchors, boxes_list, labels_list), like ``build_targets``.
    """
    checks.matcher(matcher)
    iou_threshold = checks.fraction(iou_threshold, "iou_threshold")

    @torch.no_grad()
    def build(anchors, gt_boxes_list, gt_labels_list) -> TrainingTargets:
        anchors, boxes, labels = checks.batch_targets_inputs(anchors, gt_boxes_list, gt_labels_list)
        all_labels, all_offsets, all_matched = [], [], []
        for gt_boxes, gt_labels in zip(boxes, labels, strict=True):
            matched = matcher(anchors, gt_boxes, iou_threshold)  # (A,)
            positive = matched != BACKGROUND
            offsets = torch.zeros_like(anchors)  # (A, 4)
            offsets[positive] = encode(anchors[positive], gt_boxes[matched[positive]])
            image_labels = torch.full_like(matched, BACKGROUND_CLASS)
            image_labels[positive] = gt_labels.to(matched.device)[matched[positive]]
            all_labels.append(image_labels)
            all_offsets.append(offsets)
            all_matched.append(matched)
        stack = torch.stack
        return TrainingTargets(stack(all_labels), stack(all_offsets), stack(all_matched))

    return build


def objects_without_anchor(matcher, anchors, gt_boxes_list, iou_threshold=IOU_THRESHOLD):
    """How many objects ``matcher`` leaves with no anchor at all -> (left out, objects)."""
    checks.matcher(matcher)
    anchors = checks.anchors(anchors)
    gt_boxes_list = checks.per_image(gt_boxes_list, "gt_boxes_list")
    left_out = total = 0
    for gt_boxes in gt_boxes_list:
        matched = matcher(anchors, gt_boxes, iou_threshold)  # (A,)
        objects_with_an_anchor = len(torch.unique(matched[matched != BACKGROUND]))
        left_out += len(gt_boxes) - objects_with_an_anchor
        total += len(gt_boxes)
    return left_out, total


def all_negatives_loss(class_logits, box_offsets, target_labels, target_offsets) -> LossResult:
    """The SSD loss with no mining: every background anchor's cross-entropy counts."""
    checks.loss_inputs(class_logits, box_offsets, target_labels, target_offsets)
    every = target_labels.shape[1]  # a quota of A negatives per image: all of them
    return ssd_loss(class_logits, box_offsets, target_labels, target_offsets, every, every)


def softmax_focal_loss(
    class_logits,
    box_offsets,
    target_labels,
    target_offsets,
    gamma: float = FOCAL_GAMMA,
    alpha: float | None = FOCAL_ALPHA,
) -> LossResult:
    """Smooth L1 on the positives plus the focal loss of every anchor, both divided by N.

    An anchor's focal loss is ``-w (1 - p)**gamma log p``, p its softmax probability of its
    target class, w = ``alpha`` for positives and ``1 - alpha`` for background (1 if alpha is
    None). gamma = 0 and alpha = None give plain cross-entropy on every anchor. With two
    columns (background, object) it equals ``torchvision.ops.sigmoid_focal_loss``.
    """
    gamma, alpha = checks.focal_inputs(
        class_logits, box_offsets, target_labels, target_offsets, gamma, alpha
    )
    positives = target_labels > BACKGROUND_CLASS  # (B, A)
    num_positives = int(positives.sum())
    n = max(1, num_positives)
    localization = F.smooth_l1_loss(
        box_offsets[positives], target_offsets[positives], reduction="sum"
    )
    log_p = class_logits.log_softmax(dim=-1).gather(-1, target_labels.long()[..., None])[..., 0]
    weight = torch.ones_like(log_p) if alpha is None else torch.where(positives, alpha, 1 - alpha)
    anchor_loss = -weight * (1 - log_p.exp()) ** gamma * log_p  # (B, A)
    return LossResult(
        total=(localization + anchor_loss.sum()) / n,
        localization=localization / n,
        classification=anchor_loss.sum() / n,
        num_positives=num_positives,
        positives=positives,
        mined_negatives=~positives,  # no mining: every negative counts, down-weighted
        anchor_class_loss=anchor_loss.detach(),
    )


def loss_split(result: LossResult) -> dict[str, float]:
    """Where a loss comes from: localization, positives' and negatives' classification (/ N)."""
    checks.loss_result(result)
    n = max(1, result.num_positives)
    class_loss = result.anchor_class_loss
    return {
        "localization": float(result.localization),
        "positives": float(class_loss[result.positives].sum()) / n,
        "negatives": float(class_loss[result.mined_negatives].sum()) / n,
    }


class SizeRecall(NamedTuple):
    """Of one size bucket's objects: how many were found, of how many, and the fraction."""

    found: int
    total: int
    recall: float  # found / total; NaN when the bucket has no objects


def recall_by_size(
    detections, ground_truths, num_classes: int, image_size: int, score=FOUND_SCORE, buckets=None
) -> dict[str, SizeRecall]:
    """Recall per size bucket: the share of objects with a detection of their class, score >=
    ``score`` and IoU >= 0.5. Boxes are xyxy fractions; sizes are longer sides in pixels.

    Args:
        detections: per image, ``boxes``, ``scores``, ``labels`` (``detect``'s output or dicts).
        ground_truths: per image, a dict with ``boxes`` (G, 4) and ``labels`` (G,).
        num_classes: C, object classes without background.
        image_size: the images' side in pixels, to turn fractions into pixels.
        buckets: name -> (from, below) in pixels; default ``SIZE_BUCKETS``.

    Returns:
        dict name -> SizeRecall, in the order of ``buckets``.
    """
    images, image_size, score, buckets = checks.recall_by_size_inputs(
        detections, ground_truths, num_classes, image_size, score, buckets or SIZE_BUCKETS
    )
    found = dict.fromkeys(buckets, 0)
    total = dict.fromkeys(buckets, 0)
    for boxes, scores, labels, gt_boxes, gt_labels in images:
        shown = scores >= score
        iou = box_iou(gt_boxes, boxes[shown])  # (G, D)
        same_class = gt_labels[:, None] == labels[shown][None, :]  # (G, D)
        hit = ((iou >= 0.5) & same_class).any(dim=1)  # (G,)
        sides = (gt_boxes[:, 2:] - gt_boxes[:, :2]).amax(dim=1) * image_size  # (G,) pixels
        for name, (low, high) in buckets.items():
            inside = (sides >= low) & (sides < high)
            found[name] += int((hit & inside).sum())
            total[name] += int(inside.sum())
    recall = {name: found[name] / total[name] if total[name] else float("nan") for name in found}
    return {name: SizeRecall(found[name], total[name], recall[name]) for name in buckets}
