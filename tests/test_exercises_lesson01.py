"""Lesson 01's self-checks accept right answers, reject wrong ones, never reveal the answer."""

import pytest

from ssd_lesson.exercises import lesson01 as ex


def iou(box1, box2):
    """A learner's right answer."""
    x1, y1, x2, y2 = box1
    other_x1, other_y1, other_x2, other_y2 = box2
    overlap_w = max(0.0, min(x2, other_x2) - max(x1, other_x1))
    overlap_h = max(0.0, min(y2, other_y2) - max(y1, other_y1))
    overlap = overlap_w * overlap_h
    union = (x2 - x1) * (y2 - y1) + (other_x2 - other_x1) * (other_y2 - other_y1) - overlap
    return overlap / union


def iou_without_clamp(box1, box2):
    """The classic bug: two crossed edges make a 'negative overlap' whose product is positive."""
    x1, y1, x2, y2 = box1
    other_x1, other_y1, other_x2, other_y2 = box2
    overlap = (min(x2, other_x2) - max(x1, other_x1)) * (min(y2, other_y2) - max(y1, other_y1))
    union = (x2 - x1) * (y2 - y1) + (other_x2 - other_x1) * (other_y2 - other_y1) - overlap
    return overlap / union


def overlap_over_first_area(box1, box2):
    x1, y1, x2, y2 = box1
    other_x1, other_y1, other_x2, other_y2 = box2
    overlap_w = max(0.0, min(x2, other_x2) - max(x1, other_x1))
    overlap_h = max(0.0, min(y2, other_y2) - max(y1, other_y1))
    return overlap_w * overlap_h / ((x2 - x1) * (y2 - y1))


def test_iou_function_right_and_wrong():
    assert ex.check_iou_function(iou)
    for wrong in (iou_without_clamp, overlap_over_first_area, lambda a, b: 0.5):
        verdict = ex.check_iou_function(wrong)
        assert not verdict and "Hint:" in repr(verdict)


def test_iou_function_cases_are_the_documented_values():
    # 1/3 (half overlap), 0 (apart), 0 (shared edge), 0.09 / 0.36 (inside), 1 (same box).
    expected = [1 / 3, 0.0, 0.0, 0.25, 1.0]
    for (box1, box2, _), value in zip(ex.IOU_FUNCTION_CASES, expected, strict=True):
        assert iou(box1, box2) == pytest.approx(value)


def test_iou_function_without_clamp_gets_the_no_overlap_hint():
    assert "no overlap" in repr(ex.check_iou_function(iou_without_clamp))


def test_iou_function_that_is_missing_or_raises_gets_a_hint_not_an_error():
    for wrong in (None, 0.5, lambda box: box, lambda a, b: a[4]):
        verdict = ex.check_iou_function(wrong)
        assert not verdict and "Hint:" in repr(verdict)


@pytest.mark.parametrize(
    ("check", "right", "wrong"),
    [
        (ex.check_why_union, "b", "a"),
        (ex.check_why_union, " B ", "c"),
        (ex.check_tiling_map_size, 5, 4),
        (ex.check_ssd512_anchor_count, 24564, 24565),
    ],
)
def test_right_and_wrong_answers(check, right, wrong):
    assert check(right)
    verdict = check(wrong)
    assert not verdict and repr(verdict).startswith("✗ Not yet") and "Hint:" in repr(verdict)
    assert f" {str(right).strip()} " not in repr(verdict)


def test_placeholders_are_wrong_not_errors():
    for check in (ex.check_why_union, ex.check_tiling_map_size, ex.check_ssd512_anchor_count):
        assert not check(None)


def test_why_union_answer_is_one_of_the_options():
    assert ex.WHY_UNION_ANSWER in ex.WHY_UNION_OPTIONS
