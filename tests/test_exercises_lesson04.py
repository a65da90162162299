"""Lesson 04's self-checks accept right answers, reject wrong ones, and never show the answer."""

import torch

from ssd_lesson.exercises import lesson04
from ssd_lesson.loss import LossResult


def right_smooth_l1(d):
    return torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5)


def test_smooth_l1_function_right():
    assert lesson04.check_smooth_l1_function(right_smooth_l1)


def test_smooth_l1_function_wrong_ones_get_hints():
    wrong = {
        "plain L1": lambda d: d.abs(),
        "no minus one half": lambda d: torch.where(d.abs() < 1, 0.5 * d**2, d.abs()),
        "sign lost": lambda d: torch.where(d.abs() < 1, 0.5 * d**2, d - 0.5),
        "unanswered": lambda d: None,
        "one number": lambda d: right_smooth_l1(d).sum(),
        "raises": lambda d: 1 / 0,
    }
    for name, function in wrong.items():
        verdict = lesson04.check_smooth_l1_function(function)
        assert not verdict, name
        assert "Hint:" in repr(verdict), name
        assert "where(" not in repr(verdict)  # no code of the answer


def test_why_negatives():
    assert lesson04.check_why_negatives("b")
    assert lesson04.check_why_negatives(" B ")
    for choice in ["a", "c", None, "d"]:
        verdict = lesson04.check_why_negatives(choice)
        assert not verdict and "Hint:" in repr(verdict)


def test_total_with_alpha():
    result = LossResult(
        total=torch.tensor(5.0),
        localization=torch.tensor(1.5),
        classification=torch.tensor(3.5),
        num_positives=2,
        positives=torch.zeros(1, 4, dtype=torch.bool),
        mined_negatives=torch.zeros(1, 4, dtype=torch.bool),
        anchor_class_loss=torch.zeros(1, 4),
    )
    assert lesson04.check_total_with_alpha(6.5, result)
    wrong = lesson04.check_total_with_alpha(5.0, result)
    assert not wrong and "6.5" not in repr(wrong)
    assert not lesson04.check_total_with_alpha(None, result)
