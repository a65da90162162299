"""Self-checks accept right answers, reject wrong ones, and never reveal the answer."""

import math

import pytest

from ssd_lesson import exercises as ex
from ssd_lesson.boxes import box_iou


@pytest.mark.parametrize(
    ("check", "right", "wrong"),
    [
        (ex.check_outputs_per_anchor, (25,), (24,)),
        (ex.check_total_outputs, (8732 * 25,), (8732 * 24,)),
        (ex.check_iou, (1 / 7,), (0.25,)),
        (
            ex.check_anchor_size,
            (0.4 * math.sqrt(3), 0.4 / math.sqrt(3)),
            (0.4 / math.sqrt(3), 0.4 * math.sqrt(3)),
        ),
        (ex.check_ssd512_anchor_count, (24564,), (24565,)),
        (ex.check_forced_anchor, (3,), (4,)),
        (ex.check_collision_winner, (1,), (0,)),
        # Lesson 03: offsets written out by hand from the exercise's centres and sizes.
        (
            ex.check_plain_offsets,
            ([0.05 / 0.2, -0.1 / 0.4, math.log(0.1 / 0.2), 0.0],),
            ([0.05 / 0.2, 0.1 / 0.4, math.log(0.1 / 0.2), 0.0],),
        ),
        (ex.check_scaled_width_target, (math.log(2) / 0.2,), (math.log(2),)),
        (ex.check_decoded_box, ([0.5, 0.4, 0.9, 0.6],), ([0.6, 0.4, 1.0, 0.6],)),
        # Lesson 04.
        (ex.check_uniform_cross_entropy, (math.log(21),), (math.log(20),)),
        (ex.check_mined_count, (15, 0), (15, 3)),
        (ex.check_smooth_l1, (0.125, 2.5), (0.25, 2.5)),
        # Lesson 06: 4800 / 64 = 75 batches; per cell 2 + 2 (ratio 2) or 2 + 4 (ratios 2, 3):
        # 64 x 4 + 16 x 6 + 4 x 4 = 368 anchors; -log(0.01 / 4) at the start.
        (ex.check_steps_per_epoch, (75,), (76,)),
        (ex.check_exercise_anchor_count, (368,), (336,)),
        (ex.check_first_class_loss, (math.log(400),), (math.log(100),)),
        # Lesson 07: A removes B (IoU 0.6); B, removed, cannot remove C (IoU 1/3 with A).
        # Ranking TP, FP, TP of 2 objects: 1/2 x 1 + 1/2 x 2/3.
        (ex.check_ranked_ap, (0.5 + 1 / 3,), (0.5 + 0.5 * 0.5,)),
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
    assert ex.check_positives_at(2, 0.5)
    assert ex.check_positives_at(3, 0.1)
    assert not ex.check_positives_at(2, 0.1)


def test_unanswered_placeholder_is_wrong_not_an_error():
    assert not ex.check_iou(None)
    assert not ex.check_anchor_size(None, None)
    assert not ex.check_learned_or_fixed(None)
    assert not ex.check_plain_offsets(None)
    assert not ex.check_plain_offsets([0.25, -0.25])  # too few numbers
    assert not ex.check_decoded_box("0.5 0.4 0.9 0.6")
    assert not ex.check_mined_count(None, None)


def test_learned_or_fixed():
    assert ex.check_learned_or_fixed(dict(ex.LEARNED_OR_FIXED))
    flipped = {
        k: ("fixed" if v == "learned" else "learned") for k, v in ex.LEARNED_OR_FIXED.items()
    }
    assert not ex.check_learned_or_fixed(flipped)


def test_nms_survivors_and_threshold_question():
    assert ex.check_nms_survivors(["A", "C"]) and ex.check_nms_survivors("ca")
    assert not ex.check_nms_survivors(["A"])  # B is removed, so it cannot remove C
    assert not ex.check_nms_survivors(["A", "B", "C"]) and not ex.check_nms_survivors(None)
    assert ex.check_steps_per_epoch(69, batch_size=70)  # 68 full batches and one of 40 images
    assert not ex.check_steps_per_epoch(68, batch_size=70)
    assert ex.check_threshold_raises_map(False)
    assert not ex.check_threshold_raises_map(True) and not ex.check_threshold_raises_map(None)
    iou = box_iou(ex.EXERCISE_NMS_BOXES, ex.EXERCISE_NMS_BOXES)
    assert iou[0, 1] == pytest.approx(0.6) and iou[1, 2] == pytest.approx(0.6)
    assert iou[0, 2] == pytest.approx(1 / 3)
