"""Self-checks for the lessons' exercises.

Each ``check_...`` function takes your answer and returns a ``Check``: it shows whether the
answer is right and, if not, a hint. It never shows the answer. A ``Check`` is truthy when the
answer is right, so tests and notebooks can ``assert`` on it.
The toy problems the exercises refer to live here too, so that the check and the lesson use
the same numbers.
"""

from __future__ import annotations

import math

import torch

from ssd_lesson.anchors import make_anchors
from ssd_lesson.boxes import box_iou, cxcywh_to_xyxy
from ssd_lesson.encoding import decode, encode
from ssd_lesson.loss import NEG_POS_RATIO, hard_negatives
from ssd_lesson.matching import BACKGROUND, match_anchors

# How close a numeric answer must be to count as right.
TOLERANCE = 1e-3


class Check:
    """The verdict on one answer: truthy if right; shows a hint if not."""

    def __init__(self, right: bool, what: str, hint: str):
        self.right = bool(right)
        self.message = f"✓ Right: {what}." if right else f"✗ Not yet: {what}. Hint: {hint}"

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return self.message


def _exact(answer, expected: int) -> bool:
    try:
        return float(answer) == expected
    except (TypeError, ValueError):
        return False


def _close(answer, expected: float) -> bool:
    try:
        return math.isclose(float(answer), expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------ lesson 00


def check_outputs_per_anchor(answer, num_classes: int = 20) -> Check:
    """How many numbers does SSD output for one anchor when there are ``num_classes`` classes?"""
    return Check(
        _exact(answer, 4 + num_classes + 1),
        f"numbers per anchor with {num_classes} object classes",
        "count the box numbers and the class scores; do not forget the background class.",
    )


def check_total_outputs(answer, num_anchors: int = 8732, num_classes: int = 20) -> Check:
    """How many numbers does SSD output for a whole image?"""
    return Check(
        _exact(answer, num_anchors * (4 + num_classes + 1)),
        f"numbers for {num_anchors} anchors and {num_classes} classes",
        "multiply the anchor count by the numbers per anchor.",
    )


LEARNED_OR_FIXED = {
    "anchor positions": "fixed",
    "anchor sizes": "fixed",
    "offsets": "learned",
    "class scores": "learned",
    "which anchor matches which object": "fixed",
}


def check_learned_or_fixed(answer: dict) -> Check:
    """Label each item of ``LEARNED_OR_FIXED`` as "learned" (predicted) or "fixed" (given)."""
    if not isinstance(answer, dict) or set(answer) != set(LEARNED_OR_FIXED):
        return Check(
            False, "learned or fixed", f"answer with a dict keyed by {list(LEARNED_OR_FIXED)}."
        )
    wrong = [k for k, v in answer.items() if str(v).lower() != LEARNED_OR_FIXED[k]]
    return Check(
        not wrong,
        "which parts are learned and which are fixed",
        f"look again at {wrong}: does the network's output change it, or is it decided before?",
    )


# ------------------------------------------------------------------ lesson 01

IOU_EXERCISE_BOXES = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]])


def check_iou(answer) -> Check:
    """The IoU of the two boxes in ``IOU_EXERCISE_BOXES``, worked out by hand."""
    expected = float(box_iou(IOU_EXERCISE_BOXES[:1], IOU_EXERCISE_BOXES[1:]))
    return Check(
        _close(answer, expected),
        "IoU of the two exercise boxes",
        "the overlap is a square; the union is both areas minus the overlap (counted twice).",
    )


def check_anchor_size(width, height, scale: float = 0.4, ratio: float = 3.0) -> Check:
    """Width and height of the anchor with scale ``scale`` and aspect ratio ``ratio`` (w / h)."""
    right = _close(width, scale * math.sqrt(ratio)) and _close(height, scale / math.sqrt(ratio))
    return Check(
        right,
        f"size of the anchor with scale {scale} and ratio {ratio}",
        "width / height must equal the ratio and width * height must equal scale squared.",
    )


SSD512_FEATURE_MAP_SIZES = (64, 32, 16, 8, 4, 2, 1)
SSD512_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2, 3), (2,), (2,))


def check_ssd512_anchor_count(answer) -> Check:
    """How many anchors does SSD512 have (maps and ratios in SSD512_FEATURE_MAP_SIZES / _RATIOS)?"""
    scales = [0.1 + 0.1 * k for k in range(len(SSD512_FEATURE_MAP_SIZES) + 1)]
    expected = len(make_anchors(SSD512_FEATURE_MAP_SIZES, scales, SSD512_ASPECT_RATIOS))
    return Check(
        _exact(answer, expected),
        "SSD512's anchor count",
        "cells per map times boxes per cell (2 + 2 per extra ratio), summed over the maps.",
    )


# ------------------------------------------------------------------ lesson 02

# A toy matching problem: five anchors and two objects, numbers you can check by eye.
TOY_ANCHORS = torch.tensor(
    [
        [0.0, 0.0, 0.5, 0.5],
        [0.5, 0.0, 1.0, 0.5],
        [0.0, 0.5, 0.5, 1.0],
        [0.5, 0.5, 1.0, 1.0],
        [0.25, 0.25, 0.75, 0.75],
    ]
)
TOY_OBJECTS = torch.tensor([[0.05, 0.05, 0.45, 0.5], [0.55, 0.6, 0.7, 0.8]])


def check_forced_anchor(answer) -> Check:
    """Which anchor of TOY_ANCHORS is object 1 of TOY_OBJECTS forced onto (rule 1)?"""
    expected = int(box_iou(TOY_OBJECTS, TOY_ANCHORS)[1].argmax())
    return Check(
        answer == expected,
        "object 1's forced anchor",
        "look at row 1 of the IoU table and find its largest entry.",
    )


def check_positives_at(answer, iou_threshold: float) -> Check:
    """How many of TOY_ANCHORS are positives (matched to some object) at ``iou_threshold``?"""
    expected = int((match_anchors(TOY_ANCHORS, TOY_OBJECTS, iou_threshold) != BACKGROUND).sum())
    return Check(
        answer == expected,
        f"number of positive anchors at threshold {iou_threshold}",
        "count anchors whose best IoU reaches the threshold, then add forced anchors not counted.",
    )


def check_collision_winner(answer) -> Check:
    """Two identical objects want the same anchor. Which one (0 or 1) gets it in ssd-lesson?"""
    twins = torch.cat([TOY_OBJECTS[:1], TOY_OBJECTS[:1]])
    contested_anchor = int(box_iou(twins[:1], TOY_ANCHORS).argmax())
    expected = int(match_anchors(TOY_ANCHORS, twins)[contested_anchor])
    return Check(
        answer == expected,
        "the winner of a collision",
        "read the 'collisions' convention in the docstring of ssd_lesson.matching.",
    )


# ------------------------------------------------------------------ lesson 03


def _close_all(answer, expected: list[float]) -> bool:
    try:
        values = [float(v) for v in torch.as_tensor(answer, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        return False
    return len(values) == len(expected) and all(
        _close(v, e) for v, e in zip(values, expected, strict=True)
    )


def check_plain_offsets(answer) -> Check:
    """Offsets (t_x, t_y, t_w, t_h), no variances: anchor centre (0.5, 0.5), size 0.2 x 0.4;
    object centre (0.55, 0.4), size 0.1 x 0.4."""
    anchor = cxcywh_to_xyxy(torch.tensor([[0.5, 0.5, 0.2, 0.4]]))
    obj = cxcywh_to_xyxy(torch.tensor([[0.55, 0.4, 0.1, 0.4]]))
    expected = encode(anchor, obj, variances=(1, 1))[0].tolist()
    return Check(
        _close_all(answer, expected),
        "the four plain offsets",
        "t_x is the centre's move divided by the anchor's width; t_w = log(object w / anchor w). "
        "Give four numbers in the order t_x, t_y, t_w, t_h.",
    )


def check_scaled_width_target(answer) -> Check:
    """t_w with the default variances for an object twice as wide as its anchor."""
    anchor = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    twice_as_wide = torch.tensor([[0.3, 0.4, 0.7, 0.6]])
    expected = encode(anchor, twice_as_wide)[0, 2].item()
    return Check(
        _close(answer, expected),
        "t_w with the variances",
        "start from log(2), then divide by the size variance.",
    )


def check_decoded_box(answer) -> Check:
    """Decode offsets (1, 0, log 2, 0), no variances, on the anchor [0.4, 0.4, 0.6, 0.6]."""
    anchor = torch.tensor([[0.4, 0.4, 0.6, 0.6]])
    offsets = torch.tensor([[1.0, 0.0, math.log(2.0), 0.0]])
    expected = decode(anchor, offsets, variances=(1, 1))[0].tolist()
    return Check(
        _close_all(answer, expected),
        "the decoded box",
        "move the centre by t_x anchor widths, multiply the width by e^t_w, then write x1, y1, "
        "x2, y2.",
    )


# ------------------------------------------------------------------ lesson 04


def check_uniform_cross_entropy(answer, num_classes: int = 20) -> Check:
    """Cross-entropy of one anchor when all C + 1 class scores are equal."""
    logits = torch.zeros(1, num_classes + 1)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1])).item()
    return Check(
        _close(answer, expected),
        "the cross-entropy of a uniform guess",
        "equal scores give every class the same probability; cross-entropy is -log of it.",
    )


def check_mined_count(with_five, with_zero) -> Check:
    """Mined negatives for 5 positives / 8727 negatives, and for 0 positives, at 3:1."""
    expected = []
    for num_positives in (5, 0):
        positives = torch.zeros(1, 8732 - 5 + num_positives, dtype=torch.bool)
        positives[0, :num_positives] = True
        loss = torch.linspace(0, 1, positives.shape[1])[None]
        expected.append(int(hard_negatives(loss, positives, NEG_POS_RATIO).sum()))
    return Check(
        _exact(with_five, expected[0]) and _exact(with_zero, expected[1]),
        "the number of mined negatives (both cases)",
        "the quota is the ratio times the positives of that image, capped at its negatives.",
    )


def check_smooth_l1(small, large) -> Check:
    """Smooth L1 of a difference of 0.5 and of 3."""
    values = torch.nn.functional.smooth_l1_loss(
        torch.tensor([0.5, 3.0]), torch.zeros(2), reduction="none"
    ).tolist()
    return Check(
        _close(small, values[0]) and _close(large, values[1]),
        "Smooth L1 at 0.5 and at 3",
        "below 1 it is 0.5 d squared; from 1 on it is |d| - 0.5.",
    )


# ------------------------------------------------------------------ lesson 05


def check_steps_per_epoch(answer, num_images: int = 4800, batch_size: int = 64) -> Check:
    """Optimizer steps in one epoch of the lesson's recipe (the last batch may be smaller)."""
    return Check(
        _exact(answer, math.ceil(num_images / batch_size)),
        "the steps in one epoch",
        "one step per batch; count the batches, a last smaller one included.",
    )


# Exercise 2 of lesson 05: three maps, their extra aspect ratios.
EXERCISE_MAPS = (8, 4, 2)
EXERCISE_RATIOS = ((2,), (2, 3), (2,))


def check_exercise_anchor_count(answer) -> Check:
    """Anchors of the three-map configuration EXERCISE_MAPS / EXERCISE_RATIOS."""
    scales = [0.2, 0.4, 0.6, 0.8]
    expected = len(make_anchors(EXERCISE_MAPS, scales, EXERCISE_RATIOS))
    return Check(
        _exact(answer, expected),
        "the number of anchors",
        "per cell: two squares, plus two boxes (r and 1/r) per extra ratio; then cells x per cell.",
    )


def check_first_class_loss(answer, num_classes: int = 4, background: float = 0.99) -> Check:
    """A positive anchor's classification loss at the start, when P(background) = 0.99."""
    expected = -math.log((1 - background) / num_classes)
    return Check(
        _close(answer, expected),
        "a positive anchor's classification loss at the start",
        "the object classes share the rest of the probability equally; take -log of one share.",
    )


# ------------------------------------------------------------------ lesson 06

# Exercise 1 of lesson 06: three boxes of one class, full height, sliding to the right.
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
        _close(answer, area_under_pr_curve(precision, recall)),
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
