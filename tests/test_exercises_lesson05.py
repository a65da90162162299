"""Lesson 05's self-checks accept right answers, reject wrong ones, and never show the answer."""

import torch

from ssd_lesson.exercises import lesson05


def right_mining(anchor_loss, positives):
    keep = torch.zeros_like(positives)
    for b in range(len(positives)):
        quota = min(3 * int(positives[b].sum()), int((~positives[b]).sum()))
        order = anchor_loss[b].masked_fill(positives[b], float("-inf")).argsort(descending=True)
        keep[b, order[:quota]] = True
    return keep


def test_mining_function_right():
    assert lesson05.check_mining_function(right_mining)


def test_mining_function_wrong_ones_get_hints():
    def unmasked(anchor_loss, positives):  # bug 1: positives sorted with the negatives
        keep = torch.zeros_like(positives)
        for b in range(len(positives)):
            quota = 3 * int(positives[b].sum())
            keep[b, anchor_loss[b].argsort(descending=True)[:quota]] = True
        return keep

    def lowest(anchor_loss, positives):  # sorted the wrong way
        return right_mining(-anchor_loss, positives)

    def pooled(anchor_loss, positives):  # one quota for the whole batch
        keep = torch.zeros_like(positives).flatten()
        order = anchor_loss.masked_fill(positives, float("-inf")).flatten().argsort(descending=True)
        keep[order[: 3 * int(positives.sum())]] = True
        return keep.view_as(positives)

    for function in [unmasked, lowest, pooled, lambda loss, pos: None, lambda loss, pos: pos[0]]:
        verdict = lesson05.check_mining_function(function)
        assert not verdict and "Hint:" in repr(verdict)


def test_why_no_gradient():
    assert lesson05.check_why_no_gradient("b")
    for choice in ["a", "c", None, 3]:
        assert not lesson05.check_why_no_gradient(choice)


def test_ratio_for_classification():
    # The explorer's classification part: 18.56 at ratio 5.5, 20.05 at 6 (printed by mining_view).
    assert lesson05.check_ratio_for_classification(6.0)
    verdict = lesson05.check_ratio_for_classification(5.5)
    assert not verdict and "6" not in repr(verdict)
    assert not lesson05.check_ratio_for_classification(None)
