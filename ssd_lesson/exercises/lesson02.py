"""Lesson 02's exercises: each check compares an answer with the package's own result and gives
a hint, never the answer. A teacher finds the answers here (or by running the checks' code)."""

from __future__ import annotations

import torch

from ssd_lesson.boxes import box_iou
from ssd_lesson.exercises import Check, close, exact
from ssd_lesson.matching import BACKGROUND, match_anchors

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
# Two objects, A then B, whose best anchor is the same (a0 of TOY_ANCHORS): a collision.
TOY_COLLISION = torch.tensor([[0.05, 0.05, 0.45, 0.5], [0.1, 0.0, 0.5, 0.45]])


def _random_boxes(count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random xyxy boxes (fractions), from small to about half the image."""
    centres = torch.rand(count, 2, generator=generator) * 0.8 + 0.1
    sizes = torch.rand(count, 2, generator=generator) * 0.5 + 0.05
    return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1).clamp(0, 1)


def _match_cases():
    """(anchors, objects, threshold, hint if the learner's answer differs), easiest first."""
    yield (
        TOY_ANCHORS,
        TOY_OBJECTS,
        0.5,
        "on the toy IoU table at threshold 0.5. Do rule 2 first (each anchor's best object, if "
        "their IoU reaches the threshold), then rule 1 (each object's best anchor, whatever "
        "its IoU).",
    )
    yield (
        TOY_ANCHORS,
        TOY_OBJECTS,
        0.1,
        "on the toy IoU table at threshold 0.1. Use the iou_threshold argument, and count an "
        "IoU equal to the threshold as enough (>=).",
    )
    yield (
        TOY_ANCHORS,
        TOY_COLLISION,
        0.5,
        "on a collision (two objects with the same best anchor). The later object must win: "
        "apply rule 1 after rule 2, one object after the other.",
    )
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        anchors = _random_boxes(30, generator)
        objects = _random_boxes(int(torch.randint(1, 6, (1,), generator=generator)), generator)
        yield (
            anchors,
            objects,
            0.5,
            "on random IoU tables. Check that rule 1 overrules rule 2 (it comes last) and that "
            "every anchor holds an object index or BACKGROUND (-1).",
        )


def check_match_function(my_match) -> Check:
    """``my_match(iou, iou_threshold)``: from an IoU table (G, A), each anchor's object index or
    BACKGROUND (-1), as ``match_anchors`` gives it. Tried on the toy table at two thresholds, on
    a collision and on 20 random tables."""
    what = "your matching function"
    if not callable(my_match):
        return Check(False, what, "define my_match(iou, iou_threshold) and pass the function.")
    for anchors, objects, threshold, hint in _match_cases():
        expected = match_anchors(anchors, objects, threshold)  # (A,)
        try:
            answer = torch.as_tensor(my_match(box_iou(objects, anchors), threshold))
        except Exception as error:  # a learner's code may fail in any way
            return Check(False, what, f"it raised {type(error).__name__}: {error}.")
        if answer.shape != expected.shape:
            return Check(
                False,
                what,
                f"it returns shape {tuple(answer.shape)}; return one number per anchor, "
                "shape (A,), where A is the number of columns of the IoU table.",
            )
        if not torch.equal(answer.long(), expected):
            return Check(False, what, "it differs from match_anchors " + hint)
    return Check(True, f"{what} agrees with match_anchors on 23 IoU tables", "")


def check_positives_at(answer, iou_threshold: float) -> Check:
    """How many of TOY_ANCHORS are positives (matched to some object) at ``iou_threshold``?"""
    expected = int((match_anchors(TOY_ANCHORS, TOY_OBJECTS, iou_threshold) != BACKGROUND).sum())
    return Check(
        exact(answer, expected),
        f"number of positive anchors at threshold {iou_threshold}",
        "count anchors whose best IoU reaches the threshold, then add forced anchors not counted.",
    )


# Why not lower the threshold to 0.1, so that every object gets many positives? The options the
# lesson prints, and the right one.
WHY_THRESHOLD_OPTIONS = {
    "a": "Matching would become too slow with so many positives.",
    "b": "An anchor that overlaps an object by 0.1 mostly shows something else; training it to "
    "report that object, and to reach its box, asks for the impossible.",
    "c": "With a low threshold, the gradient would flow through matching.",
}
WHY_THRESHOLD_ANSWER = "b"


def check_why_threshold(answer) -> Check:
    """Which option of WHY_THRESHOLD_OPTIONS says why the threshold is not set very low?"""
    return Check(
        str(answer).strip().lower() == WHY_THRESHOLD_ANSWER,
        "why the threshold is not set very low",
        "matching reads the same IoU table at any threshold, and never the network's outputs; "
        "think about what an anchor with IoU 0.1 sees of its object.",
    )


# The explorer task: a square box centred at (0.5, 0.5), threshold 0.5. From which width (on the
# slider, two decimals) does some anchor pass rule 2? The lesson's follow-up question, answered:
# (0.5, 0.5) is where four cells of the 4 x 4 map and all four cells of the 2 x 2 map meet, so no
# anchor of those maps is centred near it; only the 1 x 1 map's anchors are, and they are large.
# A 0.25 box at (0.375, 0.375), the centre of a 4 x 4 cell, fits that cell's anchors well.
EXPLORER_CENTRE = (0.5, 0.5)
EXPLORER_THRESHOLD = 0.5


def check_explorer_width(answer) -> Check:
    """The smallest width (0.02..1.00, step 0.01) at which a square box centred at
    EXPLORER_CENTRE has an anchor with IoU >= EXPLORER_THRESHOLD among the explorer's anchors."""
    from ssd_lesson.widgets.matching import matching_view  # ipywidgets only when asked

    widths = [round(0.01 * k, 2) for k in range(2, 101)]
    expected = next(
        w
        for w in widths
        if matching_view(*EXPLORER_CENTRE, w, w, EXPLORER_THRESHOLD).num_above_threshold
    )
    return Check(
        close(answer, expected),
        "the smallest centred square with a rule-2 match",
        "keep width = height and grow both in steps of 0.01; the readout's 'IoU ≥ 0.50: n' "
        "turns from 0 to more than 0 at the answer.",
    )
