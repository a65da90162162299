"""Lesson 06's exercises."""

from __future__ import annotations

import math

from ssd_lesson.anchors import make_anchors
from ssd_lesson.exercises import Check, close, exact


def check_steps_per_epoch(answer, num_images: int = 4800, batch_size: int = 64) -> Check:
    """Optimizer steps in one epoch of the lesson's recipe (the last batch may be smaller)."""
    return Check(
        exact(answer, math.ceil(num_images / batch_size)),
        "the steps in one epoch",
        "one step per batch; count the batches, a last smaller one included.",
    )


# Exercise 2 of lesson 06: three maps, their extra aspect ratios.
EXERCISE_MAPS = (8, 4, 2)
EXERCISE_RATIOS = ((2,), (2, 3), (2,))


def check_exercise_anchor_count(answer) -> Check:
    """Anchors of the three-map configuration EXERCISE_MAPS / EXERCISE_RATIOS."""
    scales = [0.2, 0.4, 0.6, 0.8]
    expected = len(make_anchors(EXERCISE_MAPS, scales, EXERCISE_RATIOS))
    return Check(
        exact(answer, expected),
        "the number of anchors",
        "per cell: two squares, plus two boxes (r and 1/r) per extra ratio; then cells x per cell.",
    )


def check_first_class_loss(answer, num_classes: int = 4, background: float = 0.99) -> Check:
    """A positive anchor's classification loss at the start, when P(background) = 0.99."""
    expected = -math.log((1 - background) / num_classes)
    return Check(
        close(answer, expected),
        "a positive anchor's classification loss at the start",
        "the object classes share the rest of the probability equally; take -log of one share.",
    )
