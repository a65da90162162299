"""Lesson 04's exercises: Smooth L1 by hand, why negatives are classified, the weight alpha."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssd_lesson.exercises import Check, close, multiple_choice

# Lesson 05 owns the mining exercise; it stays importable from here for older code.


def check_smooth_l1_function(my_smooth_l1) -> Check:
    """``my_smooth_l1(d)`` must give Smooth L1 (beta 1) of every element of a tensor ``d``."""
    d = torch.tensor([-3.0, -1.5, -1.0, -0.999, -0.4, 0.0, 0.25, 0.999, 1.0, 1.001, 2.0, 7.5])
    expected = F.smooth_l1_loss(d, torch.zeros_like(d), reduction="none")
    try:
        got = my_smooth_l1(d.clone())
        if got is None:
            return Check(False, "your Smooth L1", "the function returns None: return a tensor.")
        got = torch.as_tensor(got, dtype=torch.float32)
    except Exception as error:  # noqa: BLE001 -- any error in the learner's code is a hint
        return Check(False, "your Smooth L1", f"calling it raised {type(error).__name__}: {error}")
    if got.shape != d.shape:
        return Check(
            False,
            "your Smooth L1",
            f"return one value per element of d: shape {tuple(d.shape)}, got {tuple(got.shape)}.",
        )
    wrong = ~torch.isclose(got, expected, rtol=1e-4, atol=1e-5)
    if not wrong.any():
        return Check(True, "your Smooth L1 equals PyTorch's smooth_l1_loss at 12 differences", "")
    near = bool(wrong[d.abs() < 1].any())
    far = bool(wrong[d.abs() >= 1].any())
    where = "near zero (|d| < 1)" if near and not far else "far from zero (|d| ≥ 1)"
    if near and far:
        where = "both near and far from zero"
    return Check(
        False,
        "your Smooth L1",
        f"it is wrong {where}; compare each branch with the formula in step 3, "
        "and check that a negative d gives the same value as a positive one.",
    )


WHY_NEGATIVES = {
    "a": "Negative anchors have target offsets of zero, and the network must learn those too.",
    "b": "At test time every anchor gets class scores; a network never shown background would "
    "see objects everywhere.",
    "c": "Negatives make the loss larger, so training takes bigger steps and finishes sooner.",
}


def check_why_negatives(choice) -> Check:
    """Which sentence of ``WHY_NEGATIVES`` says why the classification loss has negatives?"""
    hints = {
        "a": "look at step 3 again: which anchors' target offsets enter the loss at all?",
        "c": "the loss is divided by N either way; think about what the network is asked at test "
        "time for an anchor on plain background.",
    }
    what = "why negatives are in the classification loss"
    return multiple_choice(choice, "b", what, f"answer with one of {sorted(WHY_NEGATIVES)}.", hints)


def check_total_with_alpha(answer, result, alpha: float = 2.0) -> Check:
    """The total loss of ``result`` (an ``ssd_loss`` result) with the box part weighted by alpha."""
    expected = result.classification.item() + alpha * result.localization.item()
    return Check(
        close(answer, expected),
        f"the total loss with alpha = {alpha:g}",
        "both printed parts are already divided by N; alpha multiplies only one of them.",
    )
