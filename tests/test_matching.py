"""Tests for ssd_lesson.matching: the paper's two rules, ties, collisions, batching and labels."""

import math

import pytest
import torch
import torchvision
from torch.testing import assert_close
from torchvision.models.detection._utils import SSDMatcher

from ssd_lesson.anchors import make_anchors
from ssd_lesson.boxes import xyxy_to_cxcywh
from ssd_lesson.matching import (
    BACKGROUND,
    BACKGROUND_CLASS,
    IOU_THRESHOLD,
    explain_matches,
    match_anchors,
    match_targets,
)

# One box per cell of a 2 x 2 map: the four quadrants of the image, in reading order.
QUADRANTS = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
)
# Small anchor set with several maps, sizes and shapes, for random cases.
SMALL_ANCHORS = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])


def torchvision_match(anchors, gt, threshold):
    return SSDMatcher(threshold)(torchvision.ops.box_iou(gt, anchors))


def random_gt(num, gen):
    """num random xyxy boxes inside the image, sides 0.015..0.6."""
    centres = 0.05 + 0.9 * torch.rand(num, 2, generator=gen)
    sizes = 0.03 + 0.57 * torch.rand(num, 2, generator=gen)
    return torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1).clamp(0, 1)


def random_case(seed, num_gt, duplicate_gt=False, near_gt=False, duplicate_anchors=False):
    """Anchors and ground truth, optionally with exact ties and likely collisions."""
    gen = torch.Generator().manual_seed(seed)
    anchors = SMALL_ANCHORS.clone()
    if duplicate_anchors:
        # Repeat some anchors, both right after themselves and at the end.
        picks = torch.randint(0, anchors.shape[0], (8,), generator=gen)
        anchors = torch.cat((anchors[:10], anchors[:10], anchors[10:], anchors[picks]))
    gt = random_gt(num_gt, gen)
    if duplicate_gt:
        gt = torch.cat((gt, gt[torch.randint(0, num_gt, (3,), generator=gen)]))
    if near_gt:
        # Slightly shifted copies usually share their best anchor: a collision.
        jitter = 0.004 * (torch.rand(3, 4, generator=gen) - 0.5)
        near = (gt[:3] + jitter).clamp(0, 1)
        gt = torch.cat((gt[:1], near, gt[1:]))
    return anchors, gt


# --- The two rules by hand -----------------------------------------------------------------------


def test_exact_match_by_hand():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    matched = match_anchors(QUADRANTS, gt)
    assert matched.dtype == torch.int64
    assert matched.tolist() == [0, BACKGROUND, BACKGROUND, 1]


def test_threshold_rule_by_hand():
    # IoU with quadrant 0 is 0.25 / 0.375 = 2/3, with quadrant 2 0.125 / 0.5 = 1/4.
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.75]])
    assert match_anchors(QUADRANTS, gt).tolist() == [0, -1, -1, -1]
    assert match_anchors(QUADRANTS, gt, iou_threshold=0.2).tolist() == [0, -1, 0, -1]
    assert match_anchors(QUADRANTS, gt, iou_threshold=0.26).tolist() == [0, -1, -1, -1]


def test_threshold_is_inclusive_and_ties_force_the_first_anchor():
    # The top half has IoU exactly 0.5 with quadrants 0 and 1.
    gt = torch.tensor([[0.0, 0.0, 1.0, 0.5]])
    assert match_anchors(QUADRANTS, gt, iou_threshold=0.5).tolist() == [0, 0, -1, -1]
    # Above 0.5 only rule 1 is left, and the tie goes to the first anchor.
    assert match_anchors(QUADRANTS, gt, iou_threshold=0.6).tolist() == [0, -1, -1, -1]
    explanation = explain_matches(QUADRANTS, gt, iou_threshold=0.5)
    assert explanation.above_threshold.tolist() == [True, True, False, False]
    assert explanation.forced.tolist() == [True, False, False, False]


def test_small_object_still_gets_its_best_anchor():
    # IoU with quadrant 0 is 0.01 / 0.25 = 0.04, far below 0.5: rule 1 still gives it one anchor.
    gt = torch.tensor([[0.1, 0.1, 0.2, 0.2]])
    assert match_anchors(QUADRANTS, gt).tolist() == [0, -1, -1, -1]
    explanation = explain_matches(QUADRANTS, gt)
    assert explanation.forced.tolist() == [True, False, False, False]
    assert explanation.above_threshold.tolist() == [False] * 4
    assert_close(explanation.best_iou_for_each_gt, torch.tensor([0.04]))
    assert explanation.best_anchor_for_each_gt.tolist() == [0]


def test_small_object_among_ssd_anchors_gets_exactly_one_anchor():
    anchors = make_anchors([2], [0.5, 0.7], [[2]])
    gt = torch.tensor([[0.72, 0.72, 0.78, 0.78]])
    best_iou, best_anchor = torchvision.ops.box_iou(gt, anchors)[0].max(dim=0)
    assert best_iou < 0.5
    matched = match_anchors(anchors, gt)
    assert (matched == 0).sum() == 1
    assert matched[best_anchor] == 0
    # The best anchor is one of the bottom-right cell's (cell 3, boxes 12..15).
    assert 12 <= best_anchor < 16


def test_anchor_equally_close_to_two_objects_takes_the_first():
    # The middle anchor has IoU 1/3 with both objects; each object has an exact anchor.
    middle = [0.25, 0.0, 0.75, 0.5]
    anchors = torch.tensor([middle, [0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5]])
    assert match_anchors(anchors, gt, iou_threshold=0.3).tolist() == [0, 0, 1]
    assert match_anchors(anchors, gt.flip(0), iou_threshold=0.3).tolist() == [0, 1, 0]
    assert match_anchors(anchors, gt, iou_threshold=0.5).tolist() == [-1, 0, 1]


def test_duplicate_anchors_force_only_the_first():
    anchors = torch.cat((QUADRANTS[:1], QUADRANTS))  # anchors 0 and 1 are the same box
    gt = torch.tensor([[0.1, 0.1, 0.2, 0.2]])
    assert match_anchors(anchors, gt).tolist() == [0, -1, -1, -1, -1]
    # Above the threshold both copies match.
    assert match_anchors(anchors, torch.tensor([[0.0, 0.0, 0.45, 0.5]])).tolist() == [
        0,
        0,
        -1,
        -1,
        -1,
    ]


def test_duplicate_objects_later_takes_the_forced_anchor():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.4], [0.0, 0.0, 0.5, 0.4]])  # IoU 0.8 with quadrant 0
    assert match_anchors(QUADRANTS, gt).tolist() == [1, -1, -1, -1]
    # Without the forced match the threshold rule would pick the first of the tied objects.
    explanation = explain_matches(QUADRANTS, gt)
    assert explanation.best_anchor_for_each_gt.tolist() == [0, 0]


def collision_fixture():
    """Two objects whose best anchor is anchor 0; object 0 also has anchor 1 above 0.5.

    IoUs (rows: objects, columns: anchors):
        object 0: 0.9, 0.2/0.225 = 0.889, 0
        object 1: 0.9, 0.175/0.25 = 0.7, 0
    """
    anchors = torch.tensor([[0, 0, 5, 5], [0, 0, 4, 5], [5, 5, 10, 10]]) / 10
    gt = torch.tensor([[0, 0, 4.5, 5], [0.5, 0, 5, 5]]) / 10
    return anchors, gt


def test_collision_later_object_wins():
    anchors, gt = collision_fixture()
    iou = torchvision.ops.box_iou(gt, anchors)
    assert_close(iou, torch.tensor([[0.9, 0.2 / 0.225, 0.0], [0.9, 0.7, 0.0]]))
    matched = match_anchors(anchors, gt)
    # Object 1 takes the shared best anchor; object 0 keeps only its threshold match.
    assert matched.tolist() == [1, 0, -1]
    assert matched.tolist() == torchvision_match(anchors, gt, 0.5).tolist()
    # With a threshold above 0.889, object 0 is left with nothing at all.
    assert match_anchors(anchors, gt, iou_threshold=0.95).tolist() == [1, -1, -1]
    explanation = explain_matches(anchors, gt)
    assert explanation.best_anchor_for_each_gt.tolist() == [0, 0]
    assert explanation.forced.tolist() == [True, False, False]
    assert explanation.above_threshold.tolist() == [True, True, False]


def test_no_objects_means_all_background():
    matched = match_anchors(QUADRANTS, torch.zeros(0, 4))
    assert matched.dtype == torch.int64
    assert matched.tolist() == [BACKGROUND] * 4
    explanation = explain_matches(QUADRANTS, torch.zeros(0, 4))
    assert explanation.matched_gt.tolist() == [BACKGROUND] * 4
    assert not explanation.forced.any() and not explanation.above_threshold.any()
    assert torch.isfinite(explanation.best_iou_for_each_anchor).all()
    assert_close(explanation.best_iou_for_each_anchor, torch.zeros(4))
    assert explanation.best_anchor_for_each_gt.shape == (0,)
    assert explanation.best_iou_for_each_gt.shape == (0,)


def test_inputs_may_be_lists():
    matched = match_anchors(QUADRANTS.tolist(), [[0.5, 0.5, 1.0, 1.0]])
    assert matched.tolist() == [-1, -1, -1, 0]


# --- torchvision's SSDMatcher as the oracle ------------------------------------------------------

CASE_KINDS = {
    "plain": {},
    "duplicate_gt": {"duplicate_gt": True},
    "near_gt": {"near_gt": True},
    "duplicate_anchors": {"duplicate_anchors": True},
    "all_ties": {"duplicate_gt": True, "near_gt": True, "duplicate_anchors": True},
}


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("kind", CASE_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_match_anchors_matches_torchvision(seed, kind, threshold):
    for num_gt in (1, 3, 12):
        anchors, gt = random_case(seed * 100 + num_gt, num_gt, **CASE_KINDS[kind])
        expected = torchvision_match(anchors, gt, threshold)
        assert match_anchors(anchors, gt, iou_threshold=threshold).tolist() == expected.tolist()


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_match_anchors_matches_torchvision_on_ssd_anchors(threshold):
    anchors = make_anchors([8, 4, 2, 1], [0.1, 0.3, 0.5, 0.7, 0.9], [[2]] * 4)
    gen = torch.Generator().manual_seed(7)
    for num_gt in (1, 5, 20):
        gt = random_gt(num_gt, gen)
        gt = torch.cat((gt, gt[:1]))  # a duplicate object as well
        expected = torchvision_match(anchors, gt, threshold)
        assert match_anchors(anchors, gt, iou_threshold=threshold).tolist() == expected.tolist()


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_random_collisions_match_torchvision(threshold):
    """Cases that surely contain collisions, checked to contain them."""
    collisions = 0
    for seed in range(12):
        anchors, gt = random_case(seed, 4, duplicate_gt=True, near_gt=True)
        best = torchvision.ops.box_iou(gt, anchors).argmax(dim=1)
        collisions += len(best) - len(set(best.tolist()))
        expected = torchvision_match(anchors, gt, threshold)
        matched = match_anchors(anchors, gt, iou_threshold=threshold)
        assert matched.tolist() == expected.tolist()
        # Each shared best anchor went to the last object that wanted it.
        for anchor in set(best.tolist()):
            assert matched[anchor] == torch.nonzero(best == anchor).max()
    assert collisions >= 12


# --- explain_matches -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(5))
def test_explanation_is_consistent_with_matches(seed, threshold):
    anchors, gt = random_case(seed, 6, duplicate_gt=True, near_gt=True, duplicate_anchors=True)
    explanation = explain_matches(anchors, gt, iou_threshold=threshold)
    matched = explanation.matched_gt
    assert matched.tolist() == match_anchors(anchors, gt, iou_threshold=threshold).tolist()
    iou = torchvision.ops.box_iou(gt, anchors)
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=0)
    assert_close(explanation.best_iou_for_each_anchor, best_iou_for_each_anchor)
    assert_close(explanation.best_iou_for_each_gt, iou.max(dim=1).values)
    assert explanation.best_anchor_for_each_gt.tolist() == iou.argmax(dim=1).tolist()
    # The masks explain every decision.
    forced, above = explanation.forced, explanation.above_threshold
    assert forced.sum() == len(set(explanation.best_anchor_for_each_gt.tolist()))
    assert above.tolist() == (best_iou_for_each_anchor >= threshold).tolist()
    assert (matched[forced] != BACKGROUND).all()
    assert (matched[~forced & ~above] == BACKGROUND).all()
    assert matched[~forced & above].tolist() == best_gt_for_each_anchor[~forced & above].tolist()
    assert ((matched != BACKGROUND) == (forced | above)).all()
    for g, anchor in enumerate(explanation.best_anchor_for_each_gt.tolist()):
        assert matched[anchor] >= g  # g, or a later object that collided with it


def test_explanation_default_threshold_is_the_papers():
    assert IOU_THRESHOLD == 0.5
    anchors, gt = random_case(3, 5)
    above = explain_matches(anchors, gt).above_threshold
    assert (
        above.tolist() == (torchvision.ops.box_iou(gt, anchors).max(dim=0).values >= 0.5).tolist()
    )


# --- Class labels --------------------------------------------------------------------------------


def test_match_targets_by_hand():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    targets = match_targets(QUADRANTS, gt, torch.tensor([3, 7]))
    assert targets.labels.tolist() == [3, BACKGROUND_CLASS, BACKGROUND_CLASS, 7]
    assert targets.matched_gt.tolist() == [0, BACKGROUND, BACKGROUND, 1]
    assert targets.labels.dtype == torch.int64


def test_match_targets_labels_follow_matches():
    anchors, gt = random_case(5, 8, duplicate_gt=True, near_gt=True)
    labels = torch.arange(gt.shape[0]) % 4 + 1  # classes 1..4
    targets = match_targets(anchors, gt, labels)
    matched = match_anchors(anchors, gt)
    assert targets.matched_gt.tolist() == matched.tolist()
    foreground = matched != BACKGROUND
    assert foreground.any() and (~foreground).any()
    assert (targets.labels[~foreground] == BACKGROUND_CLASS).all()
    assert targets.labels[foreground].tolist() == labels[matched[foreground]].tolist()
    assert (targets.labels[foreground] >= 1).all()


def test_match_targets_with_no_objects():
    targets = match_targets(QUADRANTS, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert targets.labels.tolist() == [0, 0, 0, 0]
    assert targets.matched_gt.tolist() == [BACKGROUND] * 4


# --- Bad inputs ----------------------------------------------------------------------------------

GOOD_GT = torch.tensor([[0.1, 0.1, 0.4, 0.4]])


@pytest.mark.parametrize("threshold", [0, 0.0, -0.5, 1.5, math.nan, "0.5", None])
@pytest.mark.parametrize(
    "call",
    [
        lambda t: match_anchors(QUADRANTS, GOOD_GT, iou_threshold=t),
        lambda t: explain_matches(QUADRANTS, GOOD_GT, iou_threshold=t),
        lambda t: match_targets(QUADRANTS, GOOD_GT, [1], iou_threshold=t),
    ],
    ids=["match_anchors", "explain", "targets"],
)
def test_bad_iou_threshold_is_rejected(call, threshold):
    with pytest.raises(ValueError, match="iou_threshold"):
        call(threshold)


def test_threshold_one_is_allowed():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.5, 1.0, 1.0]])
    assert match_anchors(QUADRANTS, gt, iou_threshold=1).tolist() == [0, -1, 1, -1]


BAD_GT = {
    "shape": (torch.zeros(2, 3), r"gt_boxes.*\(2, 3\)"),
    "pairs": (torch.tensor([[0.1, 0.1], [0.4, 0.4]]), r"gt_boxes.*\(2, 2\)"),
    "nan": (torch.tensor([[0.1, 0.1, 0.4, math.nan]]), "gt_boxes.*NaN or inf"),
    "inf": (torch.tensor([[0.1, 0.1, math.inf, 0.4]]), "gt_boxes.*NaN or inf"),
    "x2<x1": (torch.tensor([[0.4, 0.1, 0.1, 0.4]]), "gt_boxes.*x2 >= x1"),
    "y2<y1": (torch.tensor([[0.1, 0.4, 0.4, 0.1]]), "gt_boxes.*x2 >= x1"),
    "zero_area": (torch.tensor([[0.1, 0.1, 0.1, 0.4]]), "gt_boxes.*zero area"),
    "pixels": (torch.tensor([[10.0, 20.0, 150.0, 200.0]]), "gt_boxes.*look like pixels"),
    # Anchors may stick out of the image by up to half their size; ground truth may not.
    "outside": (torch.tensor([[0.5, 0.5, 1.2, 0.9]]), "gt_boxes.*clip them"),
}


def test_ground_truth_may_touch_the_border_but_anchors_may_cross_it():
    rounded = torch.tensor([[0.5, 0.5, 1.005, 1.0]])  # an annotation rounded at the border
    assert match_anchors(QUADRANTS, rounded).tolist() == [-1, -1, -1, 0]
    sticking_out = torch.cat((QUADRANTS, torch.tensor([[0.8, 0.8, 1.2, 1.2]])))
    assert match_anchors(sticking_out, rounded).tolist() == [-1, -1, -1, 0, -1]


@pytest.mark.parametrize("case", BAD_GT, ids=list(BAD_GT))
def test_bad_gt_boxes_are_rejected(case):
    bad, message = BAD_GT[case]
    gt = bad if bad.shape[-1] != 4 else torch.cat((GOOD_GT, bad))
    with pytest.raises(ValueError, match=message):
        match_anchors(QUADRANTS, gt)
    with pytest.raises(ValueError, match=message):
        explain_matches(QUADRANTS, gt)
    with pytest.raises(ValueError, match=message):
        match_targets(QUADRANTS, gt, list(range(1, gt.shape[0] + 1)))


BAD_ANCHORS = {
    "shape": (torch.zeros(4, 5), r"anchors.*\(4, 5\)"),
    "nan": (torch.cat((QUADRANTS, torch.tensor([[math.nan, 0, 1, 1]]))), "anchors.*NaN or inf"),
    "swapped": (QUADRANTS[:, [2, 3, 0, 1]], "anchors.*x2 >= x1"),
    "zero_area": (torch.tensor([[0.0, 0.0, 0.5, 0.0]]), "anchors.*zero area"),
    "pixels": (QUADRANTS * 300, "anchors.*look like pixels"),
    "cxcywh": (xyxy_to_cxcywh(make_anchors([2], [0.3, 0.5], [[2]])), "cxcywh format"),
    "empty": (torch.zeros(0, 4), "at least one anchor"),
}


@pytest.mark.parametrize("case", BAD_ANCHORS, ids=list(BAD_ANCHORS))
def test_bad_anchors_are_rejected(case):
    anchors, message = BAD_ANCHORS[case]
    with pytest.raises(ValueError, match=message):
        match_anchors(anchors, GOOD_GT)
    with pytest.raises(ValueError, match=message):
        explain_matches(anchors, GOOD_GT)
    with pytest.raises(ValueError, match=message):
        match_targets(anchors, GOOD_GT, [1])


@pytest.mark.parametrize("labels", [[0, 1], torch.tensor([2, 0]), [-1, 3]])
def test_labels_must_start_at_one(labels):
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    with pytest.raises(ValueError, match="0 is background"):
        match_targets(QUADRANTS, gt, labels)


@pytest.mark.parametrize("labels", [[1], [1, 2, 3], [[1, 2]], 1])
def test_labels_of_wrong_length_are_rejected(labels):
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"gt_labels of shape \(2,\)"):
        match_targets(QUADRANTS, gt, labels)


@pytest.mark.parametrize("labels", [[1.0, 2.0], torch.tensor([True, True])])
def test_labels_must_be_integers(labels):
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    with pytest.raises(ValueError, match="integer gt_labels"):
        match_targets(QUADRANTS, gt, labels)
