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


def test_learned_or_fixed():
    assert ex.check_learned_or_fixed(dict(ex.LEARNED_OR_FIXED))
    flipped = {
        k: ("fixed" if v == "learned" else "learned") for k, v in ex.LEARNED_OR_FIXED.items()
    }
    assert not ex.check_learned_or_fixed(flipped)
