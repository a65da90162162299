"""Lesson 06's new checks: right answers pass, typical mistakes get their hint, never the answer."""

import torch

from ssd_lesson.exercises.lesson06 import check_training_step, check_validation_below_training
from ssd_lesson.loss import ssd_loss


def _forward_loss(model, images, targets):
    class_logits, box_offsets = model(images)
    return ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets)


def right_step(model, optimizer, images, targets):
    loss = _forward_loss(model, images, targets)
    optimizer.zero_grad()
    loss.total.backward()
    optimizer.step()
    return loss.total


def step_without_zero_grad(model, optimizer, images, targets):
    loss = _forward_loss(model, images, targets)
    loss.total.backward()
    optimizer.step()
    return loss.total.item()


def step_without_step(model, optimizer, images, targets):
    loss = _forward_loss(model, images, targets)
    optimizer.zero_grad()
    loss.total.backward()
    return loss.total.item()


def test_training_step_right_answer_passes():
    assert check_training_step(right_step)


def test_training_step_mistakes_get_their_hint():
    forgot_zero = check_training_step(step_without_zero_grad)
    assert not forgot_zero and "before backward()" in repr(forgot_zero)
    forgot_step = check_training_step(step_without_step)
    assert not forgot_step and "take its step" in repr(forgot_step)
    empty = check_training_step(lambda model, optimizer, images, targets: None)
    assert not empty and "loss.total" in repr(empty)
    assert not check_training_step(None)


def test_training_step_hint_does_not_give_the_code():
    hint = repr(check_training_step(step_without_zero_grad))
    assert "zero_grad" not in hint


def test_training_step_check_leaves_the_callers_random_numbers_alone():
    before = torch.random.get_rng_state()
    check_training_step(right_step)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_validation_question():
    assert check_validation_below_training("b")
    assert check_validation_below_training(" B ")
    for wrong in ("a", "c", "d", None, 2):
        check = check_validation_below_training(wrong)
        assert not check and "one letter" in repr(check)
