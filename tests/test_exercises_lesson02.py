"""Lesson 02's self-checks accept right answers, reject wrong ones with a hint, and never reveal
the answer; and the lesson's figure of matched anchors coloured by their object."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ssd_lesson.exercises import lesson02 as ex  # noqa: E402
from ssd_lesson.matching import BACKGROUND, explain_matches  # noqa: E402
from ssd_lesson.plotting import (  # noqa: E402
    ANCHOR_COLOR,
    FORCED_COLOR,
    GROUND_TRUTH_COLOR,
    MINED_COLOR,
    PREDICTION_COLOR,
    THRESHOLD_COLOR,
    draw_matches,
    object_colors,
)


def right_match(iou, iou_threshold):
    best_iou, best_gt = iou.max(dim=0)
    matched = torch.where(best_iou >= iou_threshold, best_gt, BACKGROUND)  # rule 2
    for gt, anchor in enumerate(iou.argmax(dim=1).tolist()):  # rule 1, the later object last
        matched[anchor] = gt
    return matched


def rule_2_only(iou, iou_threshold):
    best_iou, best_gt = iou.max(dim=0)
    return torch.where(best_iou >= iou_threshold, best_gt, BACKGROUND)


def threshold_fixed_at_half(iou, iou_threshold):
    return right_match(iou, 0.5)


def first_object_wins(iou, iou_threshold):
    matched = rule_2_only(iou, iou_threshold)
    for gt, anchor in reversed(list(enumerate(iou.argmax(dim=1).tolist()))):
        matched[anchor] = gt
    return matched


def rule_1_before_rule_2(iou, iou_threshold):
    matched = torch.full((iou.shape[1],), BACKGROUND)
    matched[iou.argmax(dim=1)] = torch.arange(len(iou))
    best_iou, best_gt = iou.max(dim=0)
    return torch.where(best_iou >= iou_threshold, best_gt, matched)


def test_match_function_accepts_the_two_rules():
    verdict = ex.check_match_function(right_match)
    assert verdict, repr(verdict)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (rule_2_only, "threshold 0.5"),
        (threshold_fixed_at_half, "threshold 0.1"),
        (first_object_wins, "collision"),
        (rule_1_before_rule_2, "random IoU tables"),
        (lambda iou, t: torch.zeros(3, dtype=torch.long), "shape (A,)"),
        (lambda iou, t: 1 / 0, "ZeroDivisionError"),
        (None, "pass the function"),
    ],
)
def test_match_function_rejects_wrong_ones_with_a_hint(wrong, hint):
    verdict = ex.check_match_function(wrong)
    assert not verdict
    assert repr(verdict).startswith("✗ Not yet") and hint in repr(verdict)
    assert "tensor(" not in repr(verdict)  # the hint shows no matches


def test_positives_at_two_thresholds():
    # By hand from the toy IoU table: at 0.5 a0 (rule 2) and a3 (forced); at 0.1 also a4 (0.13).
    assert ex.check_positives_at(2, 0.5)
    assert ex.check_positives_at(3, 0.1)
    assert not ex.check_positives_at(2, 0.1)
    assert not ex.check_positives_at(None, 0.1)


def test_why_threshold():
    assert ex.check_why_threshold(" B ")
    for wrong in ("a", "c", None):
        verdict = ex.check_why_threshold(wrong)
        assert not verdict and "Hint:" in repr(verdict)


def test_explorer_width():
    # Worked out with matching_view: at width 0.56 the best IoU is 0.493, at 0.57 it is 0.511.
    assert ex.check_explorer_width(0.57)
    for wrong in (0.56, 0.58, None, "0.5"):
        verdict = ex.check_explorer_width(wrong)
        assert not verdict and "0.57" not in repr(verdict)


def test_draw_matches_colours_anchors_by_their_object():
    anchors = ex.TOY_ANCHORS
    explanation = explain_matches(anchors, ex.TOY_OBJECTS)  # a0 -> object 0, a3 -> object 1
    fig, ax = plt.subplots()
    draw_matches(ax, anchors, ex.TOY_OBJECTS, explanation, by_object=True)
    drawn = [  # (colour, number of boxes, line width) of each collection with visible lines
        (matplotlib.colors.to_hex(c.get_edgecolor()[0]), len(c.get_paths()), c.get_linewidth()[0])
        for c in ax.collections
        if c.get_linewidth()[0] > 0
    ]
    colours = [matplotlib.colors.to_hex(c) for c in object_colors(2)]
    assert (colours[0], 1, 3) in drawn and (colours[1], 1, 3) in drawn  # a0, a3: forced
    assert ("#999999", 3, 0.5) in drawn  # a1, a2, a4: background
    assert (matplotlib.colors.to_hex(GROUND_TRUTH_COLOR), 2, 3) in drawn
    tags = {
        t.get_text(): matplotlib.colors.to_hex(t.get_bbox_patch().get_facecolor()) for t in ax.texts
    }
    assert tags == {"object 0": colours[0], "object 1": colours[1]}
    plt.close(fig)


def test_object_colours_are_distinct_and_not_the_ground_truths():
    colours = object_colors(5)
    assert len(set(colours)) == 5 and GROUND_TRUTH_COLOR not in colours
    series = {GROUND_TRUTH_COLOR, ANCHOR_COLOR, FORCED_COLOR, THRESHOLD_COLOR, PREDICTION_COLOR}
    assert not series & set(colours) and MINED_COLOR not in colours  # one meaning per colour
    assert object_colors(7)[5] == colours[0]  # repeats after five
