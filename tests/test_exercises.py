"""The exercises' shared pieces: a Check accepts right answers, rejects wrong ones with a hint,
and never reveals the answer. Each lesson's own checks are tested in test_exercises_lessonNN.py."""

import math

import pytest
import torch

from ssd_lesson.boxes import box_iou
from ssd_lesson.exercises import Check, close, exact, lesson01, lesson02, lesson06, lesson07


@pytest.mark.parametrize(
    ("check", "right", "wrong"),
    [
        # Lesson 01: SSD512's seven maps, 4 or 6 anchors a cell.
        (lesson01.check_ssd512_anchor_count, (24564,), (24565,)),
        # Lesson 06: -log(0.01 / 4) at the start, for 4 classes and P(background) = 0.99.
        (lesson06.check_first_class_loss, (math.log(400),), (math.log(100),)),
        # Lesson 07: ranking TP, FP, TP of 2 objects: 1/2 x 1 + 1/2 x 2/3.
        (lesson07.check_ranked_ap, (0.5 + 1 / 3,), (0.5 + 0.5 * 0.5,)),
    ],
)
def test_right_and_wrong_answers(check, right, wrong):
    assert check(*right)
    verdict = check(*wrong)
    assert not verdict
    assert repr(verdict).startswith("✗ Not yet") and "Hint:" in repr(verdict)
    for value in right:
        assert f"{value}" not in repr(verdict)


def test_positives_at_two_thresholds():
    # Hand count from the toy IoU table: at 0.5 anchors a0 (rule 2) and a3 (forced);
    # at 0.1 also a4 (IoU 0.13 with object 0).
    assert lesson02.check_positives_at(2, 0.5)
    assert lesson02.check_positives_at(3, 0.1)
    assert not lesson02.check_positives_at(2, 0.1)


def test_unanswered_placeholder_is_wrong_not_an_error():
    assert not lesson01.check_ssd512_anchor_count(None)
    assert not lesson02.check_positives_at(None, 0.5)
    assert not lesson06.check_first_class_loss("six")
    assert not lesson07.check_ranked_ap(None)


def test_check_helpers():
    assert exact(3, 3) and exact(3.0, 3) and not exact("x", 3) and not exact(None, 3)
    assert close(0.3333, 1 / 3) and not close(0.34, 1 / 3) and not close(None, 1.0)
    assert Check(True, "x", "a hint") and not Check(False, "x", "a hint")
    assert "a hint" in repr(Check(False, "x", "a hint"))
    assert "a hint" not in repr(Check(True, "x", "a hint"))


def test_nms_exercise_boxes_are_as_described():
    iou = box_iou(lesson07.EXERCISE_NMS_BOXES, lesson07.EXERCISE_NMS_BOXES)
    assert iou[0, 1] == pytest.approx(0.6) and iou[1, 2] == pytest.approx(0.6)
    assert iou[0, 2] == pytest.approx(1 / 3)
    assert torch.equal(lesson07.EXERCISE_NMS_SCORES, torch.tensor([0.9, 0.8, 0.7]))
