"""Lesson 04's exercises."""

from __future__ import annotations

import torch

from ssd_lesson.exercises import Check, close, exact
from ssd_lesson.loss import NEG_POS_RATIO, hard_negatives


def check_uniform_cross_entropy(answer, num_classes: int = 20) -> Check:
    """Cross-entropy of one anchor when all C + 1 class scores are equal."""
    logits = torch.zeros(1, num_classes + 1)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([1])).item()
    return Check(
        close(answer, expected),
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
        exact(with_five, expected[0]) and exact(with_zero, expected[1]),
        "the number of mined negatives (both cases)",
        "the quota is the ratio times the positives of that image, capped at its negatives.",
    )


def check_smooth_l1(small, large) -> Check:
    """Smooth L1 of a difference of 0.5 and of 3."""
    values = torch.nn.functional.smooth_l1_loss(
        torch.tensor([0.5, 3.0]), torch.zeros(2), reduction="none"
    ).tolist()
    return Check(
        close(small, values[0]) and close(large, values[1]),
        "Smooth L1 at 0.5 and at 3",
        "below 1 it is 0.5 d squared; from 1 on it is |d| - 0.5.",
    )
