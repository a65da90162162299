"""Self-checks accept right answers, reject wrong ones, and never reveal the answer."""

import math

import pytest

from ssd_lesson import exercises as ex


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
