"""Lesson 07's exercises."""

from __future__ import annotations

import torch

from ssd_lesson.exercises import Check, close

# Exercise 1 of lesson 07: three boxes of one class, full height, sliding to the right.
# IoU(A, B) = IoU(B, C) = 0.6 and IoU(A, C) = 1/3.
EXERCISE_NMS_BOXES = torch.tensor(
    [[0.0, 0.0, 0.5, 1.0], [0.125, 0.0, 0.625, 1.0], [0.25, 0.0, 0.75, 1.0]]
)
EXERCISE_NMS_SCORES = torch.tensor([0.9, 0.8, 0.7])


def check_nms_survivors(answer) -> Check:
    """Which of "A", "B", "C" NMS keeps at IoU threshold 0.5."""
    from ssd_lesson.inference import nms  # local import: inference imports nothing from here

    kept = nms(EXERCISE_NMS_BOXES, EXERCISE_NMS_SCORES, 0.5).tolist()
    expected = sorted("ABC"[i] for i in kept)
    try:
        given = sorted(str(letter).upper() for letter in answer)
    except TypeError:
        given = None
    return Check(
        given == expected,
        "the boxes NMS keeps",
        "go best first; a box that was removed removes nothing itself.",
    )


def check_ranked_ap(answer) -> Check:
    """AP of a ranking true, false, true positive, with 2 objects of the class."""
    from ssd_lesson.metrics import area_under_pr_curve, precision_recall

    flags = torch.tensor([True, False, True])
    precision, recall = precision_recall(torch.tensor([0.9, 0.8, 0.7]), flags, 2)
    return Check(
        close(answer, area_under_pr_curve(precision, recall)),
        "the average precision",
        "recall grows by 1/2 at each true positive; multiply by the envelope's precision there.",
    )


def check_threshold_raises_map(answer) -> Check:
    """Can evaluating at score threshold 0.5 instead of 0.01 give a HIGHER mAP? (True/False)"""
    return Check(
        answer is False,
        "whether a higher score threshold can raise mAP",
        "the detections above 0.5 are the top of the list at 0.01: what happens to the area?",
    )
