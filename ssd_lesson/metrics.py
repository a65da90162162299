"""Metrics: how good are the detections? Average precision (AP), VOC style and COCO style.

A detection is a *true positive* when it finds an object that no better detection found
already: same class, IoU >= ``iou_threshold`` (0.5 for PASCAL VOC). Every other detection is a
*false positive*: a wrong place, a wrong class, or a *duplicate* of an object already found.

Walk down the detections of one class, over the whole data set, best score first. After each:

* **precision** = true positives so far / detections so far: how many of the boxes shown are right;
* **recall** = true positives so far / objects of that class: how many objects were found.

This traces the precision-recall (PR) curve. Its *envelope* replaces each precision by the best
precision at that recall or any higher one, removing the zigzag. **Average precision** reads the
envelope in one of three ways, the ``interpolation``:

* ``"all"`` (the default): the area under it, as PASCAL VOC from 2010 on;
* ``"11"``: its mean at recall 0, 0.1, ..., 1, as VOC2007 (0 beyond the last recall reached);
* ``"101"``: its mean at recall 0, 0.01, ..., 1, as COCO (likewise).

AP is 1 when every object is found before any false positive, and 0 when nothing is found.
**mAP** is the mean AP over classes. ``average_precision`` gives AP per class and mAP at one IoU
threshold (VOC: 0.5); ``coco_map`` the mean of mAP at the IoU thresholds 0.50, 0.55, ..., 0.95,
so that sloppy boxes score lower. With ``"101"`` it equals pycocotools' AP (bbox, area "all")
if no box is a crowd and no image has over 100 detections of one class (COCO's maxDets=100).

Matching rule, per image and class, best detection first (COCO's): a detection matches the
unmatched ground truth of its class with the highest IoU, if that IoU is >= ``iou_threshold``.
The VOC devkit (VOCevaldet.m) also asks for IoU >= 0.5 (py-faster-rcnn's port: > 0.5) but takes
the best ground truth among all, matched or not: a duplicate where we may find a second object
of one class crowding the first. VOC's "difficult" flags are unused: our data has none.

A class with no ground truth anywhere has no AP: it is left out of the mean and listed in
``classes_without_ground_truth``. Equal scores rank in image order, then in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou

# PASCAL VOC: a detection is correct if it overlaps the object by IoU >= 0.5.
VOC_IOU_THRESHOLD = 0.5
# COCO's "AP@[.5:.95]": ten thresholds from 0.50 to 0.95 in steps of 0.05.
COCO_IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


class PRCurve(NamedTuple):
    """One class's detections over the whole data set, best first, and its PR curve."""

    scores: Tensor  # (D,) decreasing
    true_positive: Tensor  # (D,) bool
    precision: Tensor  # (D,) float64: precision after each detection
    recall: Tensor  # (D,) float64: recall after each detection
    envelope: Tensor  # (D,) float64: best precision at this recall or a higher one
    num_ground_truth: int  # objects of this class in the data set


class APResult(NamedTuple):
    """Average precision at one IoU threshold."""

    mean: float  # mAP: the mean of per_class
    per_class: dict[int, float]  # class -> AP, for every class with ground truth
    curves: dict[int, PRCurve]  # class -> its PR curve, same classes as per_class
    classes_without_ground_truth: tuple[int, ...]  # no AP: left out of the mean
    iou_threshold: float


class COCOResult(NamedTuple):
    """AP averaged over IoU thresholds (COCO's AP@[.5:.95])."""

    mean: float  # the mean over thresholds of each threshold's mAP
    per_class: dict[int, float]  # class -> its AP averaged over the thresholds
    per_threshold: dict[float, APResult]  # e.g. per_threshold[0.5].mean is VOC's mAP
    classes_without_ground_truth: tuple[int, ...]


# ---------------------------------------------------------------------------------------------
# The PR curve and its area


def precision_recall(scores, is_true_positive, num_ground_truth: int) -> tuple[Tensor, Tensor]:
    """Precision and recall after each detection, best score first.

    Args:
        scores (Tensor[D]): the detections' scores (any order).
        is_true_positive (Tensor[D], bool): whether each detection found a new object.
        num_ground_truth: how many objects there are to find (>= 1).

    Returns:
        (precision, recall), each Tensor[D] (float64), in order of decreasing score.
    """
    scores, flags = checks.pr_inputs(scores, is_true_positive, num_ground_truth)
    flags = flags[torch.sort(scores, descending=True, stable=True).indices]  # best score first
    true_positives = torch.cumsum(flags.to(torch.float64), dim=0)  # found so far
    detections = torch.arange(1, len(flags) + 1, dtype=torch.float64)  # shown so far
    return true_positives / detections, true_positives / num_ground_truth


def precision_envelope(precision) -> Tensor:
    """Each precision replaced by the best precision at the same or a later position (D,)."""
    precision = checks.curve(precision, "precision")
    return torch.flip(torch.cummax(torch.flip(precision, (0,)), dim=0).values, (0,))


def area_under_pr_curve(precision, recall, interpolation: str = "all") -> float:
    """AP from a PR curve: the area under its envelope, or the envelope's mean at 11 or 101 recalls.

    Args:
        precision (Tensor[D]): precision after each detection, best score first.
        recall (Tensor[D]): recall after each detection, non-decreasing, in [0, 1].
        interpolation: "all" (VOC from 2010), "11" (VOC2007) or "101" (COCO).

    Returns:
        "all": the sum over detections of (recall gained by it) x (envelope at it). "11", "101":
        the mean over levels r of the envelope at the first detection with recall >= r, or 0.
    """
    precision, recall, interpolation = checks.pr_curve(precision, recall, interpolation)
    envelope = precision_envelope(precision)
    if interpolation == "all":  # recall grows only at true positives: only their envelope counts
        return float((torch.diff(recall, prepend=recall.new_zeros(1)) * envelope).sum())
    step = 0.1 if interpolation == "11" else 0.01  # levels i * step, as NumPy and COCO make them
    levels = torch.arange(int(interpolation), dtype=torch.float64) * step  # 0, step, ..., 1
    first = torch.searchsorted(recall, levels)  # first detection with recall >= level, or D
    return float(torch.cat((envelope, envelope.new_zeros(1)))[first].mean())  # D: none, so 0


def match_detections(boxes, scores, gt_boxes, iou_threshold: float = VOC_IOU_THRESHOLD) -> Tensor:
    """Which detections of ONE class in ONE image are true positives.

    Args:
        boxes (Tensor[D, 4]): detected boxes, xyxy.
        scores (Tensor[D]): their scores.
        gt_boxes (Tensor[G, 4]): the ground-truth boxes of the same class, xyxy.
        iou_threshold: in (0, 1].

    Returns:
        Tensor[D] (bool), in the order given: True for a detection that matched an object.
    """
    boxes, scores, gt_boxes, iou_threshold = checks.match_detections_inputs(
        boxes, scores, gt_boxes, iou_threshold
    )
    order = torch.sort(scores, descending=True, stable=True).indices
    flags = torch.zeros(len(scores), dtype=torch.bool)
    matches = _greedy_match(box_iou(boxes[order], gt_boxes).tolist(), iou_threshold)
    flags[order] = torch.tensor(matches, dtype=torch.bool)
    return flags


def _greedy_match(iou: list[list[float]], iou_threshold: float) -> list[bool]:
    """iou[d][g] for detections d in score order -> is each detection a true positive."""
    matched, flags = set(), []
    for row in iou:  # best detection first
        free = [g for g, value in enumerate(row) if g not in matched and value >= iou_threshold]
        if free:
            matched.add(max(free, key=row.__getitem__))  # the first of equal IoUs (COCO: the last)
        flags.append(bool(free))  # no free object close enough: a false positive
    return flags


# ---------------------------------------------------------------------------------------------
# AP over a data set


def average_precision(
    detections,
    ground_truths,
    num_classes: int,
    iou_threshold=VOC_IOU_THRESHOLD,
    interpolation="all",
) -> APResult:
    """Average precision per class, and its mean (mAP), at one IoU threshold.

    Args:
        detections: one entry per image, each with ``boxes`` (K, 4) xyxy, ``scores`` (K,) and
            ``labels`` (K,) in 1..C: ``Detections`` from ``ssd_lesson.inference.detect``, or a
            dict with those keys (torchvision's format).
        ground_truths: one entry per image: a pair (boxes (G, 4) xyxy, labels (G,) in 1..C), or
            a dict with keys "boxes" and "labels". G may be 0.
        num_classes: C, the number of object classes, background not counted.
        iou_threshold: IoU needed for a match, in (0, 1]; VOC uses 0.5.
        interpolation: "all" (VOC from 2010), "11" (VOC2007) or "101" (COCO): see the module.

    Returns:
        APResult with ``mean``, ``per_class``, the PR ``curves`` and the classes left out.
    """
    iou_threshold, interpolation = checks.ap_settings(iou_threshold, interpolation)
    return _evaluate(detections, ground_truths, num_classes, (iou_threshold,), interpolation)[0]


def coco_map(
    detections,
    ground_truths,
    num_classes: int,
    iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
    interpolation: str = "all",
) -> COCOResult:
    """COCO-style AP@[.5:.95]: ``average_precision`` averaged over IoU thresholds 0.50:0.95.

    Arguments as for ``average_precision``; ``interpolation="101"`` is COCO's own.
    """
    iou_thresholds, interpolation = checks.coco_settings(iou_thresholds, interpolation)
    results = _evaluate(detections, ground_truths, num_classes, iou_thresholds, interpolation)
    classes = results[0].per_class.keys()
    return COCOResult(
        mean=sum(result.mean for result in results) / len(results),
        per_class={c: sum(r.per_class[c] for r in results) / len(results) for c in classes},
        per_threshold={float(t): r for t, r in zip(iou_thresholds, results, strict=True)},
        classes_without_ground_truth=results[0].classes_without_ground_truth,
    )


def _evaluate(detections, ground_truths, num_classes, thresholds, interpolation) -> list[APResult]:
    images = checks.detection_data(detections, ground_truths, num_classes)
    classes = range(1, num_classes + 1)
    # 1) Per image and class: the detections best first, and whether each is a true positive
    #    at each threshold. The IoU table is computed once for all thresholds.
    scores = {c: [] for c in classes}
    flags = {(t, c): [] for t in thresholds for c in classes}  # thresholds are distinct
    num_ground_truth = dict.fromkeys(classes, 0)
    for boxes, image_scores, labels, gt_boxes, gt_labels in images:
        for c in torch.unique(torch.cat((labels, gt_labels))).tolist():
            mine, gt_mine = labels == c, gt_labels == c
            order = torch.sort(image_scores[mine], descending=True, stable=True).indices
            scores[c].append(image_scores[mine][order])
            num_ground_truth[c] += int(gt_mine.sum())
            iou = box_iou(boxes[mine][order], gt_boxes[gt_mine]).tolist()  # (D_c, G_c)
            for t in thresholds:
                flags[t, c].extend(_greedy_match(iou, t))
    # 2) Per class, all images together, best score first: the PR curve and its area.
    missing = tuple(c for c in classes if num_ground_truth[c] == 0)
    results = []
    for t in thresholds:
        curves, per_class = {}, {}
        for c in (c for c in classes if c not in missing):
            class_scores, order = torch.sort(torch.cat(scores[c]), descending=True, stable=True)
            true_positive = torch.tensor(flags[t, c], dtype=torch.bool)[order]
            count = num_ground_truth[c]
            precision, recall = precision_recall(class_scores, true_positive, count)
            envelope = precision_envelope(precision)
            curves[c] = PRCurve(class_scores, true_positive, precision, recall, envelope, count)
            per_class[c] = area_under_pr_curve(precision, recall, interpolation)
        mean = sum(per_class.values()) / len(per_class)
        results.append(APResult(mean, per_class, curves, missing, float(t)))
    return results
