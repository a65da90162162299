"""Lesson 06's exercises."""

from __future__ import annotations

import math

from ssd_lesson.exercises import Check, close


def check_first_class_loss(answer, num_classes: int = 4, background: float = 0.99) -> Check:
    """A positive anchor's classification loss at the start, when P(background) = 0.99."""
    expected = -math.log((1 - background) / num_classes)
    return Check(
        close(answer, expected),
        "a positive anchor's classification loss at the start",
        "the object classes share the rest of the probability equally; take -log of one share.",
    )


def _step_fixture():
    """A seeded small model, an SGD optimizer, four images and their targets (cheap: ~0.1 s)."""
    import torch

    from ssd_lesson.data.shapes import ShapesDataset
    from ssd_lesson.encoding import build_targets
    from ssd_lesson.model import SSD, small_config

    with torch.random.fork_rng():  # seeded here, the caller's random numbers left as they were
        torch.manual_seed(0)
        model = SSD(small_config()).train()
    data = ShapesDataset(4, seed=0)
    images = torch.stack([image for image, _ in data])
    size = model.config.image_size
    targets = build_targets(
        model.config.anchors(),
        [target["boxes"] / size for _, target in data],
        [target["labels"] for _, target in data],
    )
    for weights in model.parameters():  # a gradient left over from an earlier step
        weights.grad = torch.ones_like(weights)
    return model, torch.optim.SGD(model.parameters(), lr=0.1), images, targets


def _reference_step(model, optimizer, images, targets) -> float:
    """The package's training step: forward, loss, zero the old gradients, backward, step."""
    from ssd_lesson.loss import ssd_loss

    class_logits, box_offsets = model(images)
    loss = ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()
    return loss.total.item()


def check_training_step(step) -> Check:
    """``step(model, optimizer, images, targets)`` takes one training step, returns the loss.

    Runs ``step`` and the package's own step on two identical seeded models whose weights still
    hold a gradient from an earlier step, then compares the returned loss and the new weights.
    """
    import torch

    what = "one training step"
    if not callable(step):
        return Check(False, what, "pass your function itself: check_training_step(training_step).")
    model, optimizer, images, targets = _step_fixture()
    expected_loss = _reference_step(model, optimizer, images, targets)
    yours, your_optimizer, images, targets = _step_fixture()
    start = [w.detach().clone() for w in yours.parameters()]
    answer = step(yours, your_optimizer, images, targets)
    if isinstance(answer, torch.Tensor):
        answer = answer.detach().item() if answer.numel() == 1 else None
    if not close(answer, expected_loss):
        return Check(False, what, "return the loss's total (loss.total), computed before the step.")
    moved = any(not torch.equal(a, w) for a, w in zip(start, yours.parameters(), strict=True))
    if not moved:
        return Check(False, what, "the weights did not change: the optimizer must take its step.")
    same = all(
        torch.allclose(a, b, atol=1e-6)
        for a, b in zip(model.parameters(), yours.parameters(), strict=True)
    )
    return Check(
        same,
        what,
        "the weights moved, but not as the package's step moves them. The model's weights "
        "already held gradients from an earlier step: what must happen to them before backward()?",
    )


def check_validation_below_training(answer) -> Check:
    """Exercise 2 of lesson 06: why epoch 1's validation loss is below its training loss."""
    right = isinstance(answer, str) and answer.strip().lower() == "b"
    return Check(
        right,
        "why the first validation loss is the lower one",
        "when, during epoch 1, was each of the two numbers measured? Answer with one letter.",
    )
