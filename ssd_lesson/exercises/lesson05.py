"""Lesson 05's exercises: the mining step by hand, why matching needs no gradient, the explorer."""

from __future__ import annotations

import torch

from ssd_lesson.exercises import Check, close, multiple_choice
from ssd_lesson.loss import NEG_POS_RATIO, hard_negatives


def _mining_cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(anchor_loss, positives) batches: ordinary images, one without objects, one so full of
    positives that it has fewer negatives than its quota. Losses are distinct: no ties."""
    generator = torch.Generator().manual_seed(5)
    cases = []
    for positives_per_image in [(2, 5, 0), (1, 9)]:
        num_anchors = 24
        loss = torch.rand(len(positives_per_image), num_anchors, generator=generator)
        positives = torch.zeros(len(positives_per_image), num_anchors, dtype=torch.bool)
        for b, count in enumerate(positives_per_image):
            chosen = torch.randperm(num_anchors, generator=generator)[:count]
            positives[b, chosen] = True
        cases.append((loss, positives))
    return cases


def check_mining_function(my_hard_negatives) -> Check:
    """``my_hard_negatives(anchor_loss, positives)`` must equal ``hard_negatives`` at 3:1."""
    what = "your mining step"
    for loss, positives in _mining_cases():
        try:
            got = my_hard_negatives(loss.clone(), positives.clone())
            if got is None:
                return Check(False, what, "the function returns None: return a (B, A) mask.")
            got = torch.as_tensor(got)
        except Exception as error:  # noqa: BLE001 -- any error in the learner's code is a hint
            return Check(False, what, f"calling it raised {type(error).__name__}: {error}")
        if got.shape != positives.shape:
            return Check(
                False,
                what,
                f"return a (B, A) mask like positives: {tuple(positives.shape)}, got "
                f"{tuple(got.shape)}.",
            )
        got = got.bool()
        expected = hard_negatives(loss, positives, NEG_POS_RATIO)
        if (got & positives).any():
            return Check(False, what, "a positive anchor was chosen; only negatives may be.")
        if not torch.equal(got.sum(dim=1), expected.sum(dim=1)):
            return Check(
                False,
                what,
                "wrong number per image: each image keeps 3 per positive of its own, "
                "but never more than the negatives it has.",
            )
        if not torch.equal(got, expected):
            return Check(False, what, "right counts, wrong anchors: keep the highest losses.")
    return Check(True, "your mining step equals hard_negatives on every test batch", "")


WHY_NO_GRADIENT = {
    "a": "Matching is too slow to run inside the loss.",
    "b": "Matching reads only the anchors and the ground truth, never the network's outputs, so "
    "nothing in it depends on the weights.",
    "c": "PyTorch cannot compute the gradient of an IoU.",
}


def check_why_no_gradient(choice) -> Check:
    """Which sentence of ``WHY_NO_GRADIENT`` says why matching needs no gradient?"""
    hints = {
        "a": "speed is not the reason; ask what matching reads as its inputs.",
        "c": "IoU is made of min, max, products and a division, all of which PyTorch can "
        "differentiate; ask instead whether any input of matching comes from the network.",
    }
    what = "why matching needs no gradient"
    return multiple_choice(
        choice, "b", what, f"answer with one of {sorted(WHY_NO_GRADIENT)}.", hints
    )


def check_ratio_for_classification(answer, above: float = 20.0) -> Check:
    """The smallest ratio on the mining explorer's slider whose classification part is above
    ``above``."""
    from ssd_lesson.widgets.loss import mining_view

    ratios = [step / 2 for step in range(0, 21)]  # the slider: 0 to 10 in steps of 0.5
    expected = next(r for r in ratios if mining_view(r).classification > above)
    return Check(
        close(answer, expected),
        f"the smallest ratio with a classification part above {above:g}",
        "move the slider one step at a time and read the classification number under the "
        "picture; give the first ratio that passes.",
    )
