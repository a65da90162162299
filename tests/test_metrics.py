"""Tests for ssd_lesson.metrics: AP by hand, a plain-Python reference, COCO's thresholds, detect,
VOC2007's 11-point and COCO's 101-point interpolation, and pycocotools itself when installed."""

import contextlib
import io
import math
import re

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from ssd_lesson.anchors import make_anchors
from ssd_lesson.encoding import build_targets
from ssd_lesson.inference import Detections, detect
from ssd_lesson.metrics import (
    COCO_IOU_THRESHOLDS,
    APResult,
    area_under_pr_curve,
    average_precision,
    coco_map,
    match_detections,
    precision_envelope,
    precision_recall,
)

# Objects of the worked example: A and B in image 0, C in image 1, all of class 1.
A = [0.0, 0.0, 0.4, 0.4]
B = [0.5, 0.5, 0.9, 0.9]
C = [0.1, 0.1, 0.5, 0.5]
NEAR_A = [0.02, 0.0, 0.42, 0.4]  # IoU with A: 0.38 * 0.4 / (0.32 - 0.152) = 0.905
EMPTY_CORNER = [0.6, 0.0, 0.9, 0.3]  # overlaps nothing


def dets(boxes, scores, labels):
    return Detections(
        torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels, dtype=torch.int64),
    )


def truth(boxes, labels):
    return (torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels))


# ---------------------------------------------------------------------------------------------
# Hand-computed cases


def worked_example():
    """5 detections of class 1, 3 objects. Best first: TP, FP (duplicate), FP, TP, TP."""
    detections = [
        # Image 0, not in score order on purpose: B found at 0.5, A at 0.9, A again at 0.8.
        dets([B, A, NEAR_A], [0.5, 0.9, 0.8], [1, 1, 1]),
        # Image 1: a box where there is nothing at 0.7, then C at 0.6.
        dets([EMPTY_CORNER, C], [0.7, 0.6], [1, 1]),
    ]
    ground_truths = [truth([A, B], [1, 1]), truth([C], [1])]
    return detections, ground_truths


def test_worked_example_by_hand():
    # Best first:      0.9 TP   0.8 FP   0.7 FP   0.6 TP   0.5 TP
    # precision:       1/1      1/2      1/3      2/4      3/5
    # recall:          1/3      1/3      1/3      2/3      3/3
    # envelope:        1        3/5      3/5      3/5      3/5   (best precision from here on)
    # Recall grows by 1/3 at each TP, so AP = 1/3 * (1 + 3/5 + 3/5) = 11/15 = 0.7333.
    # (Without the envelope it would be 1/3 * (1 + 1/2 + 3/5) = 0.70; with VOC2007's 11-point
    # interpolation (4 * 1 + 7 * 3/5) / 11 = 0.745.)
    result = average_precision(*worked_example(), num_classes=1)
    assert isinstance(result, APResult)
    assert result.per_class == pytest.approx({1: 11 / 15})
    assert result.mean == pytest.approx(11 / 15)
    curve = result.curves[1]
    assert curve.true_positive.tolist() == [True, False, False, True, True]
    assert_close(curve.scores, torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]))
    f64 = torch.float64
    assert_close(curve.precision, torch.tensor([1, 1 / 2, 1 / 3, 2 / 4, 3 / 5], dtype=f64))
    assert_close(curve.recall, torch.tensor([1 / 3, 1 / 3, 1 / 3, 2 / 3, 1], dtype=f64))
    assert_close(curve.envelope, torch.tensor([1, 3 / 5, 3 / 5, 3 / 5, 3 / 5], dtype=f64))
    assert curve.num_ground_truth == 3
    assert result.classes_without_ground_truth == ()
    assert result.iou_threshold == 0.5


def test_perfect_detections_give_ap_one():
    ground_truths = [truth([A, B], [1, 2]), truth([C], [2])]
    detections = [dets([A, B], [0.3, 0.2], [1, 2]), dets([C], [0.9], [2])]
    result = average_precision(detections, ground_truths, num_classes=2)
    assert result.per_class == {1: 1.0, 2: 1.0}
    assert result.mean == 1.0
    assert coco_map(detections, ground_truths, num_classes=2).mean == 1.0


def test_no_detections_give_ap_zero():
    ground_truths = [truth([A, B], [1, 2])]
    result = average_precision([dets([], [], [])], ground_truths, num_classes=2)
    assert result.per_class == {1: 0.0, 2: 0.0}
    assert result.mean == 0.0
    assert result.curves[1].precision.shape == (0,)


def test_duplicates_are_false_positives():
    # Two objects; A found twice, then C. Best first: TP, FP, TP. Precision 1, 1/2, 2/3; recall
    # 1/2, 1/2, 1; AP = 1/2 * 1 + 1/2 * 2/3 = 5/6. (Counting the duplicate as a TP would give
    # recall 3/2, and AP 1.)
    detections = [dets([A, NEAR_A, C], [0.9, 0.8, 0.7], [1, 1, 1])]
    result = average_precision(detections, [truth([A, C], [1, 1])], num_classes=1)
    assert result.curves[1].true_positive.tolist() == [True, False, True]
    assert result.mean == pytest.approx(5 / 6)


def test_wrong_class_is_a_false_positive_and_finds_nothing():
    # The right box with the wrong label: class 1's object is never found, class 2 has no object.
    result = average_precision([dets([A], [0.9], [2])], [truth([A], [1])], num_classes=2)
    assert result.per_class == {1: 0.0}
    assert result.classes_without_ground_truth == (2,)


def test_class_without_ground_truth_is_left_out_of_the_mean():
    # Class 3 has detections but no object anywhere: no recall, no AP; the mean is over 1 and 2.
    ground_truths = [truth([A, B], [1, 2])]
    detections = [dets([A, C, B], [0.9, 0.8, 0.7], [1, 3, 2])]
    result = average_precision(detections, ground_truths, num_classes=3)
    assert result.per_class == {1: 1.0, 2: 1.0}
    assert result.classes_without_ground_truth == (3,)
    assert result.mean == 1.0
    assert 3 not in result.curves
    assert not any(math.isnan(value) for value in result.per_class.values())


def test_detections_in_an_image_without_objects_are_false_positives():
    # Image 1 has no object, yet the best detection (0.95) is there. Best first: FP, TP.
    # Precision 0, 1/2; recall 0, 1; AP = 1 * 1/2 = 0.5.
    detections = [dets([A], [0.9], [1]), dets([A], [0.95], [1])]
    ground_truths = [truth([A], [1]), truth([], [])]
    result = average_precision(detections, ground_truths, num_classes=1)
    assert result.curves[1].true_positive.tolist() == [False, True]
    assert result.mean == pytest.approx(0.5)


def test_iou_exactly_at_threshold_is_a_match():
    # The detection is the left half of the object: IoU 0.25 / 0.5 = 0.5 exactly.
    ground_truths = [truth([[0.0, 0.0, 0.5, 1.0]], [1])]
    detections = [dets([[0.0, 0.0, 0.25, 1.0]], [0.9], [1])]
    assert average_precision(detections, ground_truths, 1, iou_threshold=0.5).mean == 1.0
    assert average_precision(detections, ground_truths, 1, iou_threshold=0.55).mean == 0.0


def test_a_detection_takes_the_free_object_it_overlaps_most():
    # Two objects side by side. Detection 0 overlaps object 0 by 0.6 and object 1 by 0.78: it
    # takes object 1. Detection 1 overlaps object 1 by 0.78 (taken) and object 0 by 1/3 (too
    # little): a false positive. (Taking the first object above 0.5 would make both TPs.)
    gt_boxes = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.15, 0.0, 0.55, 0.4]])
    boxes = torch.tensor([[0.1, 0.0, 0.5, 0.4], [0.2, 0.0, 0.6, 0.4]])
    assert match_detections(boxes, torch.tensor([0.9, 0.8]), gt_boxes).tolist() == [True, False]
    # Given in the other order, the flags follow the input order; the better score goes first.
    flags = match_detections(boxes.flip(0), torch.tensor([0.8, 0.9]), gt_boxes)
    assert flags.tolist() == [False, True]


def test_a_detection_whose_best_object_is_taken_may_match_another_one():
    # The COCO rule, used here: object 0 is taken by detection 0, so detection 1 (IoU 0.82 with
    # object 0, 0.74 with object 1) matches object 1. (The VOC devkit would call it a duplicate.)
    gt_boxes = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4]])
    boxes = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.04, 0.0, 0.44, 0.4]])
    assert match_detections(boxes, torch.tensor([0.9, 0.8]), gt_boxes).tolist() == [True, True]


def test_detections_of_all_images_are_ranked_together():
    # Image 0's only detection is a false positive with the best score: it comes first overall,
    # even though image 1 is evaluated after it. FP, TP, TP: precision 0, 1/2, 2/3, recall 0,
    # 1/2, 1; the envelope is 2/3 everywhere, so AP = 2/3. (Without the envelope, 7/12.)
    detections = [dets([EMPTY_CORNER], [0.99], [1]), dets([A, C], [0.5, 0.6], [1, 1])]
    ground_truths = [truth([], []), truth([A, C], [1, 1])]
    result = average_precision(detections, ground_truths, num_classes=1)
    assert_close(result.curves[1].scores, torch.tensor([0.99, 0.6, 0.5]))
    assert result.mean == pytest.approx(2 / 3)


def test_precision_recall_and_area_by_hand():
    # Sorted: 0.9 TP, 0.7 FP, 0.5 TP, out of 4 objects.
    precision, recall = precision_recall([0.5, 0.9, 0.7], [True, True, False], 4)
    assert_close(precision, torch.tensor([1, 1 / 2, 2 / 3], dtype=torch.float64))
    assert_close(recall, torch.tensor([1 / 4, 1 / 4, 2 / 4], dtype=torch.float64))
    assert_close(precision_envelope(precision), torch.tensor([1, 2 / 3, 2 / 3]).double())
    # Recall 1/4 at precision 1, then 1/4 more at 2/3; the last half is never reached.
    assert area_under_pr_curve(precision, recall) == pytest.approx(1 / 4 + 1 / 4 * 2 / 3)
    assert area_under_pr_curve(torch.zeros(0), torch.zeros(0)) == 0.0
    assert precision_recall([0.3, 0.2], [1, 0], 1)[0].tolist() == [1.0, 0.5]  # 0/1 flags


def test_worked_example_with_11_and_101_recall_levels_by_hand():
    # The envelope is 1 up to recall 1/3 (the first TP) and 3/5 from there to recall 1.
    # VOC2007, recall levels 0, 0.1, ..., 1: the first detection with recall >= 0, 0.1, 0.2, 0.3
    # is the first TP (recall 1/3, envelope 1); for 0.4, ..., 1.0 (7 levels) it is the fourth
    # or fifth detection (envelope 3/5). AP = (4 * 1 + 7 * 3/5) / 11 = 8.2 / 11 = 0.7455.
    detections, ground_truths = worked_example()
    result = average_precision(detections, ground_truths, 1, interpolation="11")
    assert result.mean == pytest.approx(8.2 / 11, abs=1e-12)
    # COCO, levels 0, 0.01, ..., 1: 0.00 ... 0.33 (34 levels) give 1, 0.34 ... 1.00 (67) give 3/5.
    result = average_precision(detections, ground_truths, 1, interpolation="101")
    assert result.mean == pytest.approx((34 + 67 * 3 / 5) / 101, abs=1e-12)
    assert average_precision(detections, ground_truths, 1, interpolation="all").mean == (
        average_precision(detections, ground_truths, 1).mean  # "all" is the default
    )
    assert coco_map(detections, ground_truths, 1, [0.5], interpolation="11").mean == (
        pytest.approx(8.2 / 11, abs=1e-12)
    )


def test_area_under_pr_curve_at_11_and_101_recall_levels_by_hand():
    # 4 objects; best first TP, FP, TP: precision 1, 1/2, 2/3; recall 1/4, 1/4, 1/2; envelope
    # 1, 2/3, 2/3. Recall never passes 1/2: levels above it find no detection and count 0.
    precision = torch.tensor([1, 1 / 2, 2 / 3], dtype=torch.float64)
    recall = torch.tensor([1 / 4, 1 / 4, 1 / 2], dtype=torch.float64)
    # 11 levels: 0, 0.1, 0.2 -> 1; 0.3, 0.4 and 0.5 (reached exactly: >=) -> 2/3; 0.6 ... 1 -> 0.
    assert area_under_pr_curve(precision, recall, "11") == pytest.approx(5 / 11, abs=1e-12)
    # 101 levels: 0.00 ... 0.25 (26 levels, 0.25 reached exactly) -> 1; 0.26 ... 0.50 (25) ->
    # 2/3; 0.51 ... 1.00 -> 0.
    expected = (26 + 25 * 2 / 3) / 101
    assert area_under_pr_curve(precision, recall, "101") == pytest.approx(expected, abs=1e-12)
    assert area_under_pr_curve(precision, recall) == pytest.approx(1 / 4 + 1 / 4 * 2 / 3)
    for interpolation in ("all", "11", "101"):
        assert area_under_pr_curve([], [], interpolation) == 0.0
        assert area_under_pr_curve([1.0], [1.0], interpolation) == pytest.approx(1.0)


def test_recall_levels_are_the_ones_numpy_and_pycocotools_use():
    # pycocotools' levels are np.linspace(0, 1, 101): i * 0.01, so level 0.35 is
    # 0.35000000000000003, just above 35/100. A curve that reaches recall 35/100 exactly (35 of
    # 100 objects, no false positive) and then stops reaches 35 levels (0.00 ... 0.34), not 36.
    assert np.linspace(0, 1, 101)[35] > 35 / 100
    precision = torch.ones(35, dtype=torch.float64)
    recall = torch.arange(1, 36, dtype=torch.float64) / 100
    assert area_under_pr_curve(precision, recall, "101") == pytest.approx(35 / 101, abs=1e-12)
    assert reference_interpolated(precision.tolist(), recall.tolist(), 101) == pytest.approx(
        35 / 101, abs=1e-12
    )
    # VOC2007's levels (py-faster-rcnn: np.arange(0.0, 1.1, 0.1)): 0.3 is 0.30000000000000004.
    assert np.arange(0.0, 1.1, 0.1)[3] > 3 / 10
    recall = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    assert area_under_pr_curve(torch.ones(3), recall, "11") == pytest.approx(3 / 11, abs=1e-12)


def test_coco_map_averages_over_thresholds():
    # The detection overlaps the object by 0.36 / 0.5 = 0.72: a match at 0.50, 0.55, ..., 0.70
    # (5 of the 10 thresholds), a miss from 0.75 on. AP@[.5:.95] = 5/10.
    ground_truths = [truth([[0.0, 0.0, 0.5, 1.0]], [1])]
    detections = [dets([[0.0, 0.0, 0.36, 1.0]], [0.9], [1])]
    result = coco_map(detections, ground_truths, num_classes=1)
    assert list(result.per_threshold) == list(COCO_IOU_THRESHOLDS)
    assert COCO_IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    assert [r.mean for r in result.per_threshold.values()] == [1.0] * 5 + [0.0] * 5
    assert result.mean == pytest.approx(0.5)
    assert result.per_class == pytest.approx({1: 0.5})


def test_dicts_like_torchvision_give_the_same_result():
    detections, ground_truths = worked_example()
    as_dicts = [d._asdict() for d in detections]
    gt_dicts = [{"boxes": boxes, "labels": labels} for boxes, labels in ground_truths]
    assert average_precision(as_dicts, gt_dicts, 1).mean == pytest.approx(11 / 15)


# ---------------------------------------------------------------------------------------------
# Against a plain-Python reference on random cases


def reference_iou(box, other):
    overlap_w = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    overlap_h = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    intersection = overlap_w * overlap_h
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_area = (other[2] - other[0]) * (other[3] - other[1])
    return intersection / (area + other_area - intersection)


def reference_interpolated(precision, recall, levels):
    """VOC2007's rule (VOCevaldet.m; py-faster-rcnn's voc_ap(use_07_metric=True)) on ``levels``
    recall levels: the mean over levels t of the best precision at recall >= t, 0 if none. With
    101 levels it is COCO's rule. Levels i * step, as NumPy makes them (np.arange, np.linspace)."""
    step = 1 / (levels - 1)
    total = 0.0
    for t in [i * step for i in range(levels)]:
        total += max([p for p, r in zip(precision, recall, strict=True) if r >= t], default=0.0)
    return total / levels


def test_reference_interpolation_by_hand():
    # The worked example's curve (see test_worked_example_by_hand), and the small one above.
    precision, recall = [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5], [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1]
    assert reference_interpolated(precision, recall, 11) == pytest.approx(8.2 / 11, abs=1e-12)
    expected = (34 + 67 * 3 / 5) / 101
    assert reference_interpolated(precision, recall, 101) == pytest.approx(expected, abs=1e-12)
    precision, recall = [1, 1 / 2, 2 / 3], [1 / 4, 1 / 4, 1 / 2]
    assert reference_interpolated(precision, recall, 11) == pytest.approx(5 / 11, abs=1e-12)
    expected = (26 + 25 * 2 / 3) / 101
    assert reference_interpolated(precision, recall, 101) == pytest.approx(expected, abs=1e-12)
    assert reference_interpolated([], [], 11) == 0.0


def reference_ap(detections, ground_truths, num_classes, threshold, interpolation="all"):
    """Per-class AP, written as directly as possible: plain lists and loops."""
    aps = {}
    for c in range(1, num_classes + 1):
        objects = [
            [box for box, label in zip(b.tolist(), lab.tolist(), strict=True) if label == c]
            for b, lab in ground_truths
        ]
        num_objects = sum(len(boxes) for boxes in objects)
        if num_objects == 0:
            continue
        found = []  # (score, image, box)
        for image, d in enumerate(detections):
            for box, score, label in zip(*(t.tolist() for t in d), strict=True):
                if label == c:
                    found.append((score, image, box))
        found.sort(key=lambda item: -item[0])
        taken = [[False] * len(boxes) for boxes in objects]
        hits = []
        for _, image, box in found:
            best, best_iou = None, 0.0
            for g, gt_box in enumerate(objects[image]):
                iou = reference_iou(box, gt_box)
                if not taken[image][g] and iou >= threshold and (best is None or iou > best_iou):
                    best, best_iou = g, iou
            if best is not None:
                taken[image][best] = True
            hits.append(best is not None)
        if interpolation != "all":
            true_positives, precision, recall = 0, [], []
            for rank, hit in enumerate(hits, start=1):
                true_positives += hit
                precision.append(true_positives / rank)
                recall.append(true_positives / num_objects)
            aps[c] = reference_interpolated(precision, recall, int(interpolation))
            continue
        # The VOC2010 devkit's loop: sentinels, the envelope from the right, area by steps.
        recall, precision, true_positives = [0.0], [0.0], 0
        for rank, hit in enumerate(hits, start=1):
            true_positives += hit
            recall.append(true_positives / num_objects)
            precision.append(true_positives / rank)
        recall.append(1.0)
        precision.append(0.0)
        for i in range(len(precision) - 2, -1, -1):
            precision[i] = max(precision[i], precision[i + 1])
        aps[c] = sum((recall[i + 1] - recall[i]) * precision[i + 1] for i in range(len(recall) - 1))
    return aps


def random_case(seed, num_images=6, num_classes=3):
    """Objects, and detections that are jittered copies of them (some sloppy, some of the wrong
    class, some duplicates) plus boxes in random places."""
    gen = torch.Generator().manual_seed(seed)
    sloppiness = 0.01 + 0.07 * seed / 10  # how far detections stray from their objects
    detections, ground_truths = [], []
    for _ in range(num_images):
        count = int(torch.randint(0, 5, (1,), generator=gen))
        centres = 0.2 + 0.6 * torch.rand(count, 2, generator=gen, dtype=torch.float64)
        sizes = 0.1 + 0.3 * torch.rand(count, 2, generator=gen, dtype=torch.float64)
        gt_boxes = torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1)
        gt_labels = torch.randint(1, num_classes + 1, (count,), generator=gen)
        ground_truths.append((gt_boxes, gt_labels))
        copies = torch.randint(0, count, (2 * count,), generator=gen) if count else []
        jitter = sloppiness * torch.randn(len(copies), 4, generator=gen, dtype=torch.float64)
        near = gt_boxes[copies] + jitter if count else torch.zeros(0, 4, dtype=torch.float64)
        near_labels = gt_labels[copies] if count else torch.zeros(0, dtype=torch.long)
        wrong = torch.rand(len(near_labels), generator=gen) < 0.2
        near_labels = torch.where(
            wrong, torch.randint_like(near_labels, 1, num_classes + 1), near_labels
        )
        xs = torch.rand(3, 2, generator=gen, dtype=torch.float64).sort(dim=1).values
        ys = torch.rand(3, 2, generator=gen, dtype=torch.float64).sort(dim=1).values
        far = torch.stack((xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]), dim=1)
        boxes = torch.cat((near, far))
        # Jitter may swap two corners: make such a box zero-wide (or zero-high) instead.
        boxes = torch.cat((boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2])), dim=1)
        labels = torch.cat((near_labels, torch.randint(1, num_classes + 1, (3,), generator=gen)))
        # Detections near an object tend to score higher, as with a trained network.
        scores = torch.rand(len(boxes), generator=gen, dtype=torch.float64)
        scores[: len(near)] = 0.4 + 0.6 * scores[: len(near)]
        detections.append(Detections(boxes, scores, labels))
    return detections, ground_truths


@pytest.mark.parametrize("seed", range(10))
def test_average_precision_equals_plain_python_reference(seed):
    detections, ground_truths = random_case(seed)
    for threshold in (0.5, 0.75, 0.3):
        expected = reference_ap(detections, ground_truths, 3, threshold)
        if not expected:
            continue
        result = average_precision(detections, ground_truths, 3, iou_threshold=threshold)
        assert result.per_class == pytest.approx(expected, abs=1e-12)
        assert result.mean == pytest.approx(sum(expected.values()) / len(expected), abs=1e-12)
        assert set(result.classes_without_ground_truth) == {1, 2, 3} - set(expected)


@pytest.mark.parametrize("interpolation", ["11", "101"])
@pytest.mark.parametrize("seed", range(10))
def test_interpolated_average_precision_equals_plain_python_reference(seed, interpolation):
    detections, ground_truths = random_case(seed)
    for threshold in (0.5, 0.75):
        expected = reference_ap(detections, ground_truths, 3, threshold, interpolation)
        if not expected:
            continue
        result = average_precision(detections, ground_truths, 3, threshold, interpolation)
        assert result.per_class == pytest.approx(expected, abs=1e-12)
        assert result.mean == pytest.approx(sum(expected.values()) / len(expected), abs=1e-12)


def test_random_cases_are_not_trivial():
    # The reference comparison means something only if APs spread between 0 and 1.
    values = [ap for seed in range(10) for ap in reference_ap(*random_case(seed), 3, 0.5).values()]
    assert len(values) > 20 and len(set(values)) > 10
    assert min(values) < 0.4 and max(values) > 0.8
    # ... and only if 11 and 101 levels give other numbers than the area does.
    for interpolation in ("11", "101"):
        other = [
            ap
            for seed in range(10)
            for ap in reference_ap(*random_case(seed), 3, 0.5, interpolation).values()
        ]
        assert sum(a != pytest.approx(b, abs=1e-3) for a, b in zip(values, other, strict=True)) > 10


def test_coco_map_equals_mean_of_average_precision_over_thresholds():
    detections, ground_truths = random_case(0)
    result = coco_map(detections, ground_truths, 3)
    singles = [average_precision(detections, ground_truths, 3, t) for t in COCO_IOU_THRESHOLDS]
    assert result.mean == pytest.approx(sum(s.mean for s in singles) / 10)
    for threshold, single in zip(COCO_IOU_THRESHOLDS, singles, strict=True):
        assert result.per_threshold[threshold].per_class == single.per_class
    assert result.per_class == pytest.approx(
        {c: sum(s.per_class[c] for s in singles) / 10 for c in singles[0].per_class}
    )


# ---------------------------------------------------------------------------------------------
# Against pycocotools' COCOeval (skipped when it is not installed)


def pycocotools_precision(detections, ground_truths, num_classes, iou_thresholds):
    """COCOeval's interpolated precision (T, 101, K) for bbox, area "all", one large maxDets."""
    coco, cocoeval = (
        pytest.importorskip("pycocotools.coco"),
        pytest.importorskip("pycocotools.cocoeval"),
    )

    def xywh(box):
        return [box[0], box[1], box[2] - box[0], box[3] - box[1]]

    images, annotations, results = [], [], []
    for image, (found, (gt_boxes, gt_labels)) in enumerate(
        zip(detections, ground_truths, strict=True), start=1
    ):
        images.append({"id": image})
        for box, label in zip(gt_boxes.tolist(), gt_labels.tolist(), strict=True):
            x, y, w, h = xywh(box)
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image, "category_id": label,
                 "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for box, score, label in zip(*(t.tolist() for t in found), strict=True):
            results.append(
                {"image_id": image, "category_id": label, "bbox": xywh(box), "score": score}
            )
    categories = [{"id": c} for c in range(1, num_classes + 1)]
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its progress
        truth = coco.COCO()
        truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
        truth.createIndex()
        evaluation = cocoeval.COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.params.iouThrs = np.array(iou_thresholds)
        evaluation.params.maxDets = [1000]  # per image and class: more than we have
        evaluation.params.areaRng, evaluation.params.areaRngLbl = [[0, 1e10]], ["all"]
        evaluation.evaluate()
        evaluation.accumulate()
    return evaluation.eval["precision"][:, :, :, 0, 0]  # -1 for a class without ground truth


@pytest.mark.parametrize("seed", range(10))
def test_coco_map_with_101_levels_equals_pycocotools(seed):
    # The random cases have no crowd boxes, fewer than 1000 detections per image and class, and
    # no detection with two equal IoUs (where COCO takes the last object, we the first): there,
    # COCO's matching (per image and class, best detection first, the free object of highest
    # IoU >= t) is ours, so the APs must agree.
    detections, ground_truths = random_case(seed)
    precision = pycocotools_precision(detections, ground_truths, 3, COCO_IOU_THRESHOLDS)
    result = coco_map(detections, ground_truths, 3, interpolation="101")
    for t, threshold in enumerate(COCO_IOU_THRESHOLDS):
        single = result.per_threshold[threshold]
        expected = {
            c: precision[t, :, c - 1].mean() for c in (1, 2, 3) if precision[t, 0, c - 1] > -1
        }
        assert single.per_class == pytest.approx(expected, abs=1e-6)
    assert result.mean == pytest.approx(precision[precision > -1].mean(), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# With detect: a network that predicts the ground truth exactly scores AP 1


def test_detect_on_perfect_predictions_gives_ap_one():
    anchors = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])
    ground_truths = [truth([A, B], [1, 3]), truth([C], [2])]
    targets = build_targets(anchors, *zip(*ground_truths, strict=True))
    # Sure of the matched class at each matched anchor, sure of background elsewhere.
    logits = 10.0 * torch.nn.functional.one_hot(targets.labels, 4).float()
    detections = detect(anchors, logits, targets.offsets)
    assert [len(d.scores) for d in detections] == [2, 1]  # NMS merged each object's anchors
    result = average_precision(detections, ground_truths, num_classes=3)
    assert result.per_class == pytest.approx({1: 1.0, 2: 1.0, 3: 1.0})


# ---------------------------------------------------------------------------------------------
# Bad input


def message(text):
    return re.escape(text)


@pytest.mark.parametrize(
    ("detections", "ground_truths", "num_classes", "expected"),
    [
        ([dets([A], [0.9], [1])], [truth([A], [1])], 0, "num_classes"),
        ([dets([A], [0.9], [1])], [truth([A], [1])], True, "(object classes, background not"),
        ([dets([A], [0.9], [1])], [], 1, "one entry of detections per entry of ground_truths"),
        (dets([A], [0.9], [1]), [truth([A], [1])], 1, "expected detections as a list"),
        ([{"boxes": torch.zeros(0, 4)}], [truth([A], [1])], 1, "with boxes, scores, labels"),
        ([dets([A], [0.9], [0])], [truth([A], [1])], 1, "detections[0] labels in 1..1"),
        ([dets([A], [0.9], [1])], [truth([A], [2])], 1, "ground_truths[0] labels in 1..1"),
        ([dets([A], [0.9], [1])], [truth([A], [1.0])], 1, "expected integer ground_truths[0]"),
        ([dets([A], [float("nan")], [1])], [truth([A], [1])], 1, "finite detections[0] scores"),
        ([dets([A], [0.9, 0.8], [1])], [truth([A], [1])], 1, "scores of shape (1,), got (2,)"),
        ([dets([A], [0.9], [1])], [truth([[0.1, 0.1, 0.1, 0.5]], [1])], 1, "positive width"),
        ([dets([A], [0.9], [1])], [truth([], [])], 1, "at least one ground-truth box"),
    ],
)
def test_average_precision_rejects_bad_input(detections, ground_truths, num_classes, expected):
    with pytest.raises(ValueError, match=message(expected)):
        average_precision(detections, ground_truths, num_classes)


def test_thresholds_are_checked():
    detections, ground_truths = worked_example()
    with pytest.raises(ValueError, match=message("iou_threshold as a number in (0, 1]")):
        average_precision(detections, ground_truths, 1, iou_threshold=0)
    with pytest.raises(ValueError, match=message("in (0, 1], got 1.5")):
        coco_map(detections, ground_truths, 1, iou_thresholds=[0.5, 1.5])
    with pytest.raises(ValueError, match=message("expected at least one IoU threshold")):
        coco_map(detections, ground_truths, 1, iou_thresholds=[])
    with pytest.raises(ValueError, match=message("expected distinct IoU thresholds")):
        coco_map(detections, ground_truths, 1, iou_thresholds=[0.5, 0.5])
    with pytest.raises(ValueError, match=message("as a list of numbers, got '0.5'")):
        coco_map(detections, ground_truths, 1, iou_thresholds="0.5")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (([0.9], [True], 0), "num_ground_truth as an integer >= 1"),
        (([0.9, 0.8], [True, True], 1), ">= the 2 true positives"),
        (([0.9], [2], 3), "expected is_true_positive as booleans (or 0 and 1)"),
        (([0.9], [True, False], 3), "expected is_true_positive of shape (1,), got (2,)"),
        (([0.9], [True], 1.0), "expected num_ground_truth as an integer >= 1, got 1.0"),
    ],
)
def test_precision_recall_rejects_bad_input(arguments, expected):
    with pytest.raises(ValueError, match=message(expected)):
        precision_recall(*arguments)


@pytest.mark.parametrize("interpolation", [11, 101.0, "11-point", "ALL", None, "all "])
def test_bad_interpolation_is_rejected(interpolation):
    detections, ground_truths = worked_example()
    expected = message(f"expected interpolation as 'all', '11' or '101', got {interpolation!r}")
    with pytest.raises(ValueError, match=expected):
        area_under_pr_curve([1.0], [0.5], interpolation)
    with pytest.raises(ValueError, match=expected):
        average_precision(detections, ground_truths, 1, interpolation=interpolation)
    with pytest.raises(ValueError, match=expected):
        coco_map(detections, ground_truths, 1, interpolation=interpolation)


def test_area_under_pr_curve_rejects_bad_input():
    with pytest.raises(ValueError, match=message("recall in order of decreasing score")):
        area_under_pr_curve([1.0, 1.0], [0.5, 0.25])
    with pytest.raises(ValueError, match=message("expected precision in [0, 1]")):
        area_under_pr_curve([1.5], [0.5])
    with pytest.raises(ValueError, match=message("recall of shape (1,)")):
        area_under_pr_curve([1.0], [0.5, 1.0])
