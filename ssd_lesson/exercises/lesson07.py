"""Lesson 07's exercises."""

from __future__ import annotations

import torch

from ssd_lesson.exercises import Check, close

# Three boxes of one class, full height, sliding to the right: IoU(A, B) = IoU(B, C) = 0.6 and
# IoU(A, C) = 1/3.
EXERCISE_NMS_BOXES = torch.tensor(
    [[0.0, 0.0, 0.5, 1.0], [0.125, 0.0, 0.625, 1.0], [0.25, 0.0, 0.75, 1.0]]
)
EXERCISE_NMS_SCORES = torch.tensor([0.9, 0.8, 0.7])


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


# ---------------------------------------------------------------------------------------------
# Exercise 1 of lesson 07: greedy NMS by hand, checked against ssd_lesson.inference.nms.


def _nms_cases():
    """(name, boxes, scores, iou_threshold): the cases a learner's NMS must get right."""
    toy = torch.tensor(
        [[0.10, 0.10, 0.50, 0.50], [0.15, 0.12, 0.55, 0.52], [0.60, 0.55, 0.90, 0.95]]
    )
    cases = [
        ("the lesson's boxes A, B, C", toy, torch.tensor([0.9, 0.8, 0.7]), 0.45),
        ("the same boxes, best score last", toy, torch.tensor([0.7, 0.8, 0.9]), 0.45),
        (
            "three boxes in a row (A-B 0.6, B-C 0.6, A-C 1/3)",
            EXERCISE_NMS_BOXES,
            EXERCISE_NMS_SCORES,
            0.5,
        ),
        ("no boxes at all", torch.zeros(0, 4), torch.zeros(0), 0.45),
    ]
    generator = torch.Generator().manual_seed(0)
    for number, threshold in enumerate((0.45, 0.3, 0.7)):
        corners = torch.rand(40, 2, generator=generator) * 0.7
        sizes = 0.1 + torch.rand(40, 2, generator=generator) * 0.2
        boxes = torch.cat([corners, corners + sizes], dim=1)
        scores = torch.rand(40, generator=generator)
        cases.append(
            (f"40 random boxes (set {number + 1}) at IoU {threshold}", boxes, scores, threshold)
        )
    return cases


def check_my_nms(my_nms) -> Check:
    """``my_nms(boxes (N, 4) xyxy, scores (N,), iou_threshold)`` -> indices of the kept boxes,
    best first; compared with ``ssd_lesson.inference.nms`` on a few fixed cases."""
    from ssd_lesson.inference import nms

    what = "your NMS keeps the same boxes as ssd_lesson.inference.nms, best first"
    for name, boxes, scores, threshold in _nms_cases():
        expected = nms(boxes, scores, threshold).tolist()
        try:
            given = [int(i) for i in my_nms(boxes.clone(), scores.clone(), threshold)]
        except Exception as error:  # the learner's code: any error becomes a hint
            return Check(False, what, f"on {name} it raised {type(error).__name__}: {error}")
        if given == expected:
            continue
        if sorted(given) == sorted(expected):
            hint = "the right boxes, but not best score first"
        else:
            hint = f"it keeps {len(given)} boxes where NMS keeps {len(expected)}"
            if len(given) < len(expected):
                hint += "; a box that was removed removes nothing itself"
        return Check(False, what, f"on {name}: {hint}.")
    return Check(True, what, "")


# Exercise 3 of lesson 07: why does one object get many candidates?
WHY_MANY_CANDIDATES = {
    "a": "The score threshold is a bug: at 0.5 instead of 0.01 each object would get one box.",
    "b": "Training made every anchor with IoU >= 0.5 with an object a positive for it, so "
    "several neighbouring anchors all learned to say 'this object, here'.",
    "c": "Each anchor predicts several boxes for the same object, one per feature map.",
}


def check_why_many_candidates(answer) -> Check:
    """Which of ``WHY_MANY_CANDIDATES`` explains why NMS is needed ("a", "b" or "c")."""
    return Check(
        str(answer).strip().lower() == "b",
        "why one object gets many candidates",
        "think back to lesson 02: how many anchors does one object take as positives?",
    )


# Exercise 4 of lesson 07: the explorer. At score threshold 0.5, per-class NMS, raise the NMS
# IoU slider from 0.45: the first value at which an extra box survives.


def extra_box_iou(anchors, class_logits, box_offsets, score_threshold: float = 0.5):
    """The first NMS IoU on the explorer's slider above 0.45 that keeps more boxes than 0.45, or
    None if none does (every candidate already survives at 0.45)."""
    from ssd_lesson.inference import detect_steps

    def kept(iou):
        steps = detect_steps(anchors, class_logits, box_offsets, score_threshold, iou)
        return len(steps.kept)

    at_paper = kept(0.45)
    for step in range(10, 21):  # 0.50, 0.55, ..., 1.00: the slider's values above 0.45
        if kept(round(step * 0.05, 2)) > at_paper:
            return round(step * 0.05, 2)
    return None


def check_extra_box_iou(answer, anchors, class_logits, box_offsets) -> Check:
    """``answer``: the NMS IoU at which the explorer first keeps an extra box (see above)."""
    expected = extra_box_iou(anchors, class_logits, box_offsets)
    right = answer is None if expected is None else close(answer, expected)
    return Check(
        right,
        "the NMS IoU at which a second box survives",
        "start at 0.45 and move the NMS IoU slider one step at a time; watch the 'kept' count.",
    )
