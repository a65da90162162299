"""Tests for ssd_lesson.loss: values by hand, torchvision's SSD.compute_loss, mining, gradients."""

import math
import re
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder, SSDMatcher
from torchvision.models.detection.ssd import SSD

from ssd_lesson.anchors import ssd300_anchors
from ssd_lesson.encoding import build_targets
from ssd_lesson.loss import NEG_POS_RATIO, LossResult, hard_negatives, ssd_loss

LOG2, LOG3 = math.log(2.0), math.log(3.0)
# One box per cell of a 2 x 2 map: the four quadrants of the image, in reading order.
QUADRANTS = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
)
SSD300_ANCHORS = ssd300_anchors()  # (8732, 4)
NUM_CLASSES = 21  # C + 1: background and the 20 PASCAL VOC classes


def random_gt(count, gen):
    """count random xyxy boxes inside the image, sides 0.02..0.7."""
    centres = 0.05 + 0.9 * torch.rand(count, 2, generator=gen)
    sizes = 0.02 + 0.68 * torch.rand(count, 2, generator=gen)
    return torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1).clamp(0, 1)


def random_batch(seed, counts, anchors=SSD300_ANCHORS, num_classes=NUM_CLASSES, scale=1.0):
    """Ground truth (one image per count), predictions (with gradients) and our targets."""
    gen = torch.Generator().manual_seed(seed)
    gt_list = [random_gt(count, gen) for count in counts]
    labels_list = [torch.randint(1, num_classes, (count,), generator=gen) for count in counts]
    shape = (len(counts), anchors.shape[0])
    logits = (scale * torch.randn(*shape, num_classes, generator=gen)).requires_grad_()
    offsets = (scale * torch.randn(*shape, 4, generator=gen)).requires_grad_()
    targets = build_targets(anchors, gt_list, labels_list)
    return gt_list, labels_list, logits, offsets, targets


def torchvision_loss(anchors, gt_list, labels_list, logits, offsets, neg_to_pos_ratio=3):
    """torchvision's SSD.compute_loss, called without building a whole SSD model."""
    matched_idxs = []
    for gt in gt_list:
        if gt.shape[0] == 0:  # what SSD.forward does for an image without objects
            matched_idxs.append(torch.full((anchors.shape[0],), -1, dtype=torch.int64))
        else:
            matched_idxs.append(SSDMatcher(0.5)(torchvision.ops.box_iou(gt, anchors)))
    fake_self = types.SimpleNamespace(
        box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0)), neg_to_pos_ratio=neg_to_pos_ratio
    )
    targets = [{"boxes": gt, "labels": lab} for gt, lab in zip(gt_list, labels_list, strict=True)]
    head_outputs = {"bbox_regression": offsets, "cls_logits": logits}
    anchors_list = [anchors] * len(gt_list)
    return SSD.compute_loss(fake_self, targets, head_outputs, anchors_list, matched_idxs)


def loss_of(logits, offsets, targets, **kwargs):
    return ssd_loss(logits, offsets, targets.labels, targets.offsets, **kwargs)


# --- A tiny case by hand -------------------------------------------------------------------------


def tiny_case():
    """B = 1, A = 4, two classes (background, object); anchor 0 is the only positive.

    Cross-entropies: softmax of (0, log 3) is (1/4, 3/4), of (0, 0) is (1/2, 1/2).
        anchor 0, object,     logits (0, log 3): -log(3/4) = log(4/3)
        anchor 1, background, logits (0, 0):     -log(1/2) = log 2
        anchor 2, background, logits (0, log 3): -log(1/4) = log 4   (the hardest negative)
        anchor 3, background, logits (log 3, 0): -log(3/4) = log(4/3) (the easiest)
    """
    logits = torch.tensor([[[0.0, LOG3], [0.0, 0.0], [0.0, LOG3], [LOG3, 0.0]]])
    labels = torch.tensor([[1, 0, 0, 0]])
    # Anchor 0's offsets are off by 0.5, -0.2 (|d| < 1: 0.5 d^2) and 3, -2 (|d| >= 1: |d| - 0.5):
    # Smooth L1 = 0.125 + 0.02 + 2.5 + 1.5 = 4.145. Background offsets are wild and must not count.
    offsets = torch.tensor([[[1.5, -0.2, 3.0, -1.0], [100.0] * 4, [-50.0] * 4, [7.0] * 4]])
    target_offsets = torch.tensor([[[1.0, 0.0, 0.0, 1.0], [0.0] * 4, [0.0] * 4, [0.0] * 4]])
    return logits, offsets, labels, target_offsets


@pytest.mark.parametrize(
    "ratio, mined, cross_entropy",
    [
        (1, [False, False, True, False], math.log(4 / 3) + math.log(4)),
        (2, [False, True, True, False], math.log(4 / 3) + LOG2 + math.log(4)),
        (3, [False, True, True, True], 2 * math.log(4 / 3) + LOG2 + math.log(4)),
        (10, [False, True, True, True], 2 * math.log(4 / 3) + LOG2 + math.log(4)),
        (0, [False, False, False, False], math.log(4 / 3)),
        (2.5, [False, True, True, False], math.log(4 / 3) + LOG2 + math.log(4)),
    ],
)
def test_tiny_case_by_hand(ratio, mined, cross_entropy):
    logits, offsets, labels, target_offsets = tiny_case()
    logits.requires_grad_()
    result = ssd_loss(logits, offsets, labels, target_offsets, neg_pos_ratio=ratio)
    assert result.num_positives == 1
    assert result.positives.tolist() == [[True, False, False, False]]
    assert result.mined_negatives.tolist() == [mined]
    expected_ce = [math.log(4 / 3), LOG2, math.log(4), math.log(4 / 3)]
    assert_close(result.anchor_class_loss, torch.tensor([expected_ce]))
    assert result.anchor_class_loss.grad_fn is None  # for pictures, detached
    assert_close(result.localization, torch.tensor(4.145))
    assert_close(result.classification, torch.tensor(cross_entropy))
    assert_close(result.total, torch.tensor(4.145 + cross_entropy))


def test_tiny_case_default_ratio_is_the_papers():
    assert NEG_POS_RATIO == 3
    logits, offsets, labels, target_offsets = tiny_case()
    result = ssd_loss(logits, offsets, labels, target_offsets)
    assert result.mined_negatives.sum() == 3


def test_two_images_divide_by_all_positives_of_the_batch():
    """Image 0: the tiny case (1 positive); image 1: 3 positives, logits (0, 0) everywhere."""
    logits, offsets, labels, target_offsets = tiny_case()
    logits = torch.cat((logits, torch.zeros(1, 4, 2)))
    offsets = torch.cat((offsets, torch.full((1, 4, 4), 0.5)))  # 4 x 0.125 per positive
    labels = torch.cat((labels, torch.tensor([[1, 1, 0, 1]])))
    target_offsets = torch.cat((target_offsets, torch.zeros(1, 4, 4)))
    result = ssd_loss(logits, offsets, labels, target_offsets)
    # Image 0 mines its 3 negatives; image 1 wants 9 but has only 1.
    assert result.mined_negatives.tolist() == [
        [False, True, True, True],
        [False, False, True, False],
    ]
    assert result.num_positives == 4
    image_0 = 2 * math.log(4 / 3) + LOG2 + math.log(4)
    image_1 = 4 * LOG2
    assert_close(result.classification, torch.tensor((image_0 + image_1) / 4))
    assert_close(result.localization, torch.tensor((4.145 + 3 * 0.5) / 4))


def test_huge_logits_by_hand():
    # Background +1e4, object -1e4: a background anchor costs 0, an object anchor 2e4.
    logits = torch.tensor([[[1e4, -1e4], [1e4, -1e4], [-1e4, 1e4]]])
    labels = torch.tensor([[1, 0, 0]])
    offsets = torch.zeros(1, 3, 4)
    result = ssd_loss(logits, offsets, labels, offsets, neg_pos_ratio=1)
    assert result.mined_negatives.tolist() == [[False, False, True]]
    assert_close(result.classification, torch.tensor(4e4))


# --- torchvision's SSD.compute_loss as the oracle ------------------------------------------------


def assert_same_as_torchvision(result, expected):
    assert_close(result.localization, expected["bbox_regression"])
    assert_close(result.classification, expected["classification"])
    assert_close(result.total, expected["bbox_regression"] + expected["classification"])


def assert_enough_negatives(targets, ratio):
    """torchvision and we agree only when no image runs out of negatives (see below)."""
    positives = (targets.labels > 0).sum(dim=1)
    assert (targets.labels.shape[1] - positives >= ratio * positives).all()


@pytest.mark.parametrize("seed", range(4))
def test_matches_torchvision_on_ssd300(seed):
    counts = [10, 1, 0, 3, 2, 25][seed:] + [10, 1, 0, 3, 2, 25][:seed]
    gt_list, labels_list, logits, offsets, targets = random_batch(seed, counts)
    assert_enough_negatives(targets, 3)
    result = loss_of(logits, offsets, targets)
    expected = torchvision_loss(SSD300_ANCHORS, gt_list, labels_list, logits, offsets)
    assert_same_as_torchvision(result, expected)
    assert result.num_positives == int((targets.labels > 0).sum()) > len(counts)
    # The gradients agree too.
    ours = torch.autograd.grad(result.total, (logits, offsets))
    theirs = torch.autograd.grad(sum(expected.values()), (logits, offsets))
    assert_close(ours[0], theirs[0])
    assert_close(ours[1], theirs[1])


@pytest.mark.parametrize("ratio", [1, 2, 5])
@pytest.mark.parametrize("seed", range(2))
def test_matches_torchvision_with_other_ratios(seed, ratio):
    small = SSD300_ANCHORS[-150:]  # the three coarsest maps: 150 large anchors
    gt_list, labels_list, logits, offsets, targets = random_batch(seed, [3, 0, 1, 6], small)
    assert_enough_negatives(targets, ratio)
    result = loss_of(logits, offsets, targets, neg_pos_ratio=ratio)
    expected = torchvision_loss(small, gt_list, labels_list, logits, offsets, ratio)
    assert_same_as_torchvision(result, expected)


@pytest.mark.parametrize("scale", [1e-3, 10.0, 1e3])
def test_matches_torchvision_for_confident_and_unsure_logits(scale):
    gt_list, labels_list, logits, offsets, targets = random_batch(9, [4, 7], scale=scale)
    result = loss_of(logits, offsets, targets)
    expected = torchvision_loss(SSD300_ANCHORS, gt_list, labels_list, logits, offsets)
    assert_same_as_torchvision(result, expected)


def test_with_no_objects_anywhere_torchvision_and_we_give_zero():
    gt_list, labels_list, logits, offsets, targets = random_batch(3, [0, 0])
    expected = torchvision_loss(SSD300_ANCHORS, gt_list, labels_list, logits, offsets)
    assert_same_as_torchvision(loss_of(logits, offsets, targets), expected)
    assert expected["classification"] == 0


def test_torchvision_counts_positives_twice_when_negatives_run_out():
    """A known torchvision edge case, documented rather than hidden.

    Two objects fill two of the four quadrants: 2 positives, 2 negatives. The 3:1 rule asks for 6
    negatives. We take the 2 there are. torchvision ranks every anchor and keeps ranks < 6, so
    the positives (ranked last, with loss -inf) are kept as "negatives" as well and their
    cross-entropy is counted twice. With logits (0, 0) every anchor's cross-entropy is log 2.
    """
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    labels = torch.tensor([1, 1])
    targets = build_targets(QUADRANTS, [gt], [labels])
    assert targets.labels.tolist() == [[1, 0, 0, 1]]
    logits, offsets = torch.zeros(1, 4, 2), torch.zeros(1, 4, 4)
    result = loss_of(logits, offsets, targets)
    # Ours: (2 positives + 2 negatives) x log 2 / N = 4 log 2 / 2.
    assert result.mined_negatives.tolist() == [[False, True, True, False]]
    assert_close(result.classification, torch.tensor(2 * LOG2))
    # torchvision: (2 positives + 2 negatives + the 2 positives again) x log 2 / 2.
    expected = torchvision_loss(QUADRANTS, [gt], [labels], logits, offsets)
    assert_close(expected["classification"], torch.tensor(3 * LOG2))
    assert_close(result.localization, expected["bbox_regression"])


# --- Hard negative mining ------------------------------------------------------------------------


def random_mining_case(seed, batch=4, anchors=60, ties=False):
    """Per-anchor losses (distinct, or from only three values) and positives, incl. none."""
    gen = torch.Generator().manual_seed(seed)
    if ties:
        loss = torch.randint(0, 3, (batch, anchors), generator=gen).float()
    else:
        loss = torch.rand(batch, anchors, generator=gen)
    num_pos = [0, 1, 5, anchors // 3][:batch]
    positives = torch.zeros(batch, anchors, dtype=torch.bool)
    for image, count in enumerate(num_pos):
        positives[image, torch.randperm(anchors, generator=gen)[:count]] = True
    # Give positives the highest losses of all: mining must still skip them.
    loss = torch.where(positives, loss + 10, loss)
    return loss, positives


def expected_quota(positives, ratio, min_negatives=0):
    num_pos = positives.sum(dim=1).tolist()
    num_neg = [positives.shape[1] - p for p in num_pos]
    return [
        min(max(math.floor(p * ratio), min_negatives), n)
        for p, n in zip(num_pos, num_neg, strict=True)
    ]


def test_quota_is_floored_in_double_precision():
    # 100 positives x 0.29 is 28.999999999999996 in float64 (and in Python), 29.0 in float32.
    positives = torch.zeros(1, 1000, dtype=torch.bool)
    positives[0, :100] = True
    loss = torch.rand(1, 1000, generator=torch.Generator().manual_seed(0))
    mined = hard_negatives(loss, positives, 0.29)
    assert int(mined.sum()) == math.floor(100 * 0.29) == 28


@pytest.mark.parametrize("ratio", [0, 0.5, 1, 2.5, 3, 7])
@pytest.mark.parametrize("seed", range(3))
def test_mined_negatives_are_exactly_the_hardest(seed, ratio):
    loss, positives = random_mining_case(seed)
    mined = hard_negatives(loss, positives, ratio)
    assert mined.dtype == torch.bool and mined.shape == loss.shape
    assert not (mined & positives).any()
    quota = expected_quota(positives, ratio)
    assert mined.sum(dim=1).tolist() == quota
    for image in range(loss.shape[0]):
        negatives = torch.nonzero(~positives[image])[:, 0].tolist()
        hardest = sorted(negatives, key=lambda a: -loss[image, a].item())[: quota[image]]
        assert set(torch.nonzero(mined[image])[:, 0].tolist()) == set(hardest)


@pytest.mark.parametrize("ratio", [1, 3, 7])
@pytest.mark.parametrize("seed", range(3))
def test_mining_with_ties_keeps_the_hardest(seed, ratio):
    loss, positives = random_mining_case(seed, ties=True)
    mined = hard_negatives(loss, positives, ratio)
    assert not (mined & positives).any()
    assert mined.sum(dim=1).tolist() == expected_quota(positives, ratio)
    for image in range(loss.shape[0]):
        unmined = ~positives[image] & ~mined[image]
        if mined[image].any() and unmined.any():
            assert loss[image, mined[image]].min() >= loss[image, unmined].max()


def test_mining_caps_the_quota_at_the_negatives():
    positives = torch.tensor([[True, True, False, False, False], [True] * 4 + [False]])
    loss = torch.tensor([[5.0, 4.0, 1.0, 3.0, 2.0], [9.0, 9.0, 9.0, 9.0, 0.5]])
    mined = hard_negatives(loss, positives, 3)
    assert mined.tolist() == [[False, False, True, True, True], [False] * 4 + [True]]
    # Every anchor positive: nothing to mine.
    assert not hard_negatives(loss, torch.ones(2, 5, dtype=torch.bool), 3).any()


def test_non_integer_ratios_round_down():
    positives = torch.zeros(3, 40, dtype=torch.bool)
    positives[0, :1], positives[1, :3], positives[2, :5] = True, True, True
    loss = torch.rand(3, 40, generator=torch.Generator().manual_seed(0))
    for ratio, counts in ((0.5, [0, 1, 2]), (1.5, [1, 4, 7]), (2.9, [2, 8, 14])):
        assert hard_negatives(loss, positives, ratio).sum(dim=1).tolist() == counts


def test_huge_ratios_mean_every_negative():
    positives = torch.tensor([[True] + [False] * 9])
    loss = torch.rand(1, 10, generator=torch.Generator().manual_seed(0))
    for ratio in (100, 1e9, 1e20, 1e300):
        assert hard_negatives(loss, positives, ratio).sum() == 9


@pytest.mark.parametrize("seed", range(3))
def test_min_negatives(seed):
    loss, positives = random_mining_case(seed)  # positives per image: 0, 1, 5, 20 of 60
    assert positives.sum(dim=1).tolist() == [0, 1, 5, 20]
    for min_negatives in (0, 2, 4, 10, 100):
        mined = hard_negatives(loss, positives, 3, min_negatives)
        counts = mined.sum(dim=1).tolist()
        assert counts == expected_quota(positives, 3, min_negatives)
        assert counts[0] == min(min_negatives, 60)  # no positives: min_negatives alone
        assert counts[3] == 40  # wants 60, capped at the 40 negatives
        hardest = loss[0].topk(counts[0]).indices  # image 0 has no positives to skip
        assert set(torch.nonzero(mined[0])[:, 0].tolist()) == set(hardest.tolist())
        assert not (mined & positives).any()


def test_min_negatives_in_the_loss():
    """With no objects, min_negatives = 2 adds the 2 hardest negatives of each image; N = 1."""
    logits = torch.tensor(
        [[[0.0, 0.0], [0.0, LOG3], [LOG3, 0.0]], [[0.0, LOG3], [0.0, 0.0], [0] * 2]]
    )
    labels = torch.zeros(2, 3, dtype=torch.long)
    offsets = torch.zeros(2, 3, 4)
    result = ssd_loss(logits, offsets, labels, offsets, min_negatives=2)
    # Image 0: log 2, log 4, log(4/3): anchors 0 and 1. Image 1: log 4, log 2, log 2: anchor 0
    # and either of the tied anchors 1 and 2.
    assert result.mined_negatives[0].tolist() == [True, True, False]
    assert result.mined_negatives[1, 0] and result.mined_negatives[1].sum() == 2
    # Image 0: log 4 + log 2; image 1: log 4 + log 2 (its two (0, 0) anchors tie).
    assert_close(result.total, torch.tensor(2 * (math.log(4) + LOG2)))
    assert result.num_positives == 0


def test_loss_mines_with_hard_negatives():
    _, _, logits, offsets, targets = random_batch(1, [5, 0, 2, 9], SSD300_ANCHORS[-600:])
    for ratio, min_negatives in ((3, 0), (1.5, 0), (3, 7), (0, 0)):
        result = loss_of(logits, offsets, targets, neg_pos_ratio=ratio, min_negatives=min_negatives)
        expected = hard_negatives(result.anchor_class_loss, result.positives, ratio, min_negatives)
        assert torch.equal(result.mined_negatives, expected)
        assert torch.equal(result.positives, targets.labels > 0)
        kept = result.positives | result.mined_negatives
        n = max(1, result.num_positives)
        assert_close(result.classification, result.anchor_class_loss[kept].sum() / n)


# --- No positives, gradients ---------------------------------------------------------------------


def test_batch_without_objects_gives_exactly_zero():
    _, _, logits, offsets, targets = random_batch(2, [0, 0, 0])
    result = loss_of(logits, offsets, targets)
    assert result.num_positives == 0 and not result.mined_negatives.any()
    assert result.total.item() == 0.0
    assert result.localization.item() == 0.0 and result.classification.item() == 0.0
    result.total.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))
    assert torch.equal(offsets.grad, torch.zeros_like(offsets))


def test_batch_without_objects_with_min_negatives_still_learns():
    _, _, logits, offsets, targets = random_batch(2, [0, 0, 0])
    result = loss_of(logits, offsets, targets, min_negatives=5)
    assert result.mined_negatives.sum(dim=1).tolist() == [5, 5, 5]
    top5 = result.anchor_class_loss.topk(5, dim=1).values.sum()
    assert_close(result.total, top5)  # N = max(1, 0) = 1
    assert result.total > 0 and torch.isfinite(result.total)
    result.total.backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad.abs().sum(dim=2) > 0).sum() == 15
    assert torch.equal(offsets.grad, torch.zeros_like(offsets))


@pytest.mark.parametrize("ratio", [3, 0])
def test_gradient_reaches_only_the_anchors_that_count(ratio):
    _, _, logits, offsets, targets = random_batch(4, [6, 0, 2], SSD300_ANCHORS[-600:])
    result = loss_of(logits, offsets, targets, neg_pos_ratio=ratio)
    result.total.backward()
    assert logits.grad is not None and offsets.grad is not None
    assert torch.isfinite(logits.grad).all() and torch.isfinite(offsets.grad).all()
    positives, mined = result.positives, result.mined_negatives
    assert positives.any() and (mined.any() if ratio else not mined.any())
    # Box offsets: only positives; class scores: positives and mined negatives.
    assert torch.equal(offsets.grad.abs().sum(dim=2) > 0, positives)
    assert torch.equal(logits.grad.abs().sum(dim=2) > 0, positives | mined)


def test_targets_from_build_targets_carry_no_gradient():
    anchors = SSD300_ANCHORS[-600:].clone().requires_grad_()
    gt = random_gt(4, torch.Generator().manual_seed(0)).requires_grad_()
    targets = build_targets(anchors, [gt], [torch.tensor([1, 2, 3, 4])])
    assert targets.offsets.grad_fn is None and not targets.offsets.requires_grad
    logits = torch.randn(1, 600, 5, requires_grad=True)
    offsets = torch.randn(1, 600, 4, requires_grad=True)
    loss_of(logits, offsets, targets).total.backward()
    assert anchors.grad is None and gt.grad is None


def test_target_offsets_with_a_gradient_are_rejected():
    logits, offsets, labels, target_offsets = tiny_case()
    with pytest.raises(ValueError, match="target_offsets without gradient"):
        ssd_loss(logits, offsets, labels, target_offsets.requires_grad_())


# --- Bad-but-legal inputs give finite losses ------------------------------------------------------


def finite_loss_and_gradients(logits, offsets, labels, target_offsets, **kwargs):
    logits = logits.clone().requires_grad_()
    offsets = offsets.clone().requires_grad_()
    result = ssd_loss(logits, offsets, labels, target_offsets, **kwargs)
    assert torch.isfinite(result.total)
    result.total.backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(offsets.grad).all()
    return result


@pytest.mark.parametrize("value", [1e4, 1e30])
def test_huge_logits_and_offsets_give_finite_losses(value):
    gen = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, (2, 50, 21), generator=gen) * 2 - 1
    logits = value * signs.float()
    labels = torch.randint(0, 21, (2, 50), generator=gen)
    labels[:, 25:] = 0
    offsets = value * torch.randn(2, 50, 4, generator=gen)
    result = finite_loss_and_gradients(logits, offsets, labels, torch.zeros(2, 50, 4))
    assert result.total > value  # the losses are huge, but numbers


@pytest.mark.parametrize(
    "batch, anchors, num_classes, dtype",
    [(1, 1, 2, torch.float32), (1, 5, 2, torch.float32), (3, 7, 4, torch.float64)],
)
def test_small_shapes_and_float64(batch, anchors, num_classes, dtype):
    gen = torch.Generator().manual_seed(batch + anchors)
    logits = torch.randn(batch, anchors, num_classes, generator=gen, dtype=dtype)
    offsets = torch.randn(batch, anchors, 4, generator=gen, dtype=dtype)
    labels = torch.randint(0, num_classes, (batch, anchors), generator=gen)
    labels[0, 0] = 1
    result = finite_loss_and_gradients(logits, offsets, labels, torch.zeros_like(offsets))
    assert result.total.dtype == dtype
    # The same value as a by-hand sum over the anchors that count.
    kept = result.positives | result.mined_negatives
    ce = F.cross_entropy(logits.reshape(-1, num_classes), labels.reshape(-1), reduction="none")
    smooth_l1 = F.smooth_l1_loss(offsets, torch.zeros_like(offsets), reduction="none").sum(2)
    n = result.num_positives
    expected = (ce.view_as(labels)[kept].sum() + smooth_l1[result.positives].sum()) / n
    assert_close(result.total, expected)


def test_all_anchors_positive():
    logits = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([[1, 2, 1, 2, 1, 2], [2] * 6])
    result = finite_loss_and_gradients(logits, torch.zeros(2, 6, 4), labels, torch.zeros(2, 6, 4))
    assert result.num_positives == 12 and not result.mined_negatives.any()


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.int64], ids=str)
def test_any_integer_label_dtype(dtype):
    logits, offsets, labels, target_offsets = tiny_case()
    result = ssd_loss(logits, offsets, labels.to(dtype), target_offsets)
    assert_close(result.total, ssd_loss(logits, offsets, labels, target_offsets).total)


# --- Bad inputs ----------------------------------------------------------------------------------


def tiny_case_with(**changes):
    """The tiny case with some arguments replaced."""
    logits, offsets, labels, target_offsets = tiny_case()
    args = {
        "class_logits": logits,
        "box_offsets": offsets,
        "target_labels": labels,
        "target_offsets": target_offsets,
    }
    args.update(changes)
    return args


def with_value(tensor, index, value):
    tensor = tensor.clone()
    tensor[index] = value
    return tensor


LOGITS, OFFSETS, LABELS, TARGET_OFFSETS = tiny_case()
BAD_INPUTS = {
    "logits_2d": ({"class_logits": LOGITS[0]}, r"class_logits of shape \(B, A, C\+1\)"),
    "one_class": ({"class_logits": LOGITS[..., :1]}, r"class_logits.*\(1, 4, 1\)"),
    "int_logits": ({"class_logits": LOGITS.long()}, "floating-point class_logits"),
    "offsets_5": ({"box_offsets": torch.zeros(1, 4, 5)}, r"box_offsets of shape \(1, 4, 4\)"),
    "offsets_batch": ({"box_offsets": torch.zeros(2, 4, 4)}, r"box_offsets of shape \(1, 4, 4\)"),
    "labels_shape": ({"target_labels": LABELS[0]}, r"target_labels of shape \(1, 4\)"),
    "labels_anchors": (
        {"target_labels": torch.zeros(1, 5, dtype=torch.long)},
        r"target_labels of shape \(1, 4\)",
    ),
    "target_offsets": ({"target_offsets": torch.zeros(1, 4)}, r"target_offsets of shape \(1, 4, 4"),
    "float_labels": ({"target_labels": LABELS.float()}, "integer target_labels"),
    "bool_labels": ({"target_labels": LABELS.bool()}, "integer target_labels"),
    "label_-1": ({"target_labels": with_value(LABELS, (0, 1), -1)}, r"target_labels in 0\.\.1"),
    "label_C+1": ({"target_labels": with_value(LABELS, (0, 1), 2)}, r"target_labels in 0\.\.1"),
    "nan_logits": ({"class_logits": with_value(LOGITS, (0, 2, 1), math.nan)}, "class_logits"),
    "inf_logits": ({"class_logits": with_value(LOGITS, (0, 0, 0), math.inf)}, "class_logits"),
    "nan_offsets": ({"box_offsets": with_value(OFFSETS, (0, 3, 0), math.nan)}, "box_offsets"),
    "inf_offsets": ({"box_offsets": with_value(OFFSETS, (0, 0, 0), -math.inf)}, "box_offsets"),
    "nan_targets": (
        {"target_offsets": with_value(TARGET_OFFSETS, (0, 0, 2), math.nan)},
        "target_offsets.*degenerate",
    ),
    "list_logits": ({"class_logits": LOGITS.tolist()}, "class_logits as a tensor"),
    "list_labels": ({"target_labels": [[1, 0, 0, 0]]}, "target_labels as a tensor"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_inputs_are_rejected(case):
    changes, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        ssd_loss(**tiny_case_with(**changes))


@pytest.mark.parametrize("ratio", [-1, -0.5, True, False, math.nan, math.inf, "3", None])
def test_bad_neg_pos_ratio_is_rejected(ratio):
    with pytest.raises(ValueError, match="neg_pos_ratio"):
        ssd_loss(*tiny_case(), neg_pos_ratio=ratio)


@pytest.mark.parametrize("min_negatives", [-1, 1.5, 2.0, True, "2", None])
def test_bad_min_negatives_is_rejected(min_negatives):
    with pytest.raises(ValueError, match="min_negatives"):
        ssd_loss(*tiny_case(), min_negatives=min_negatives)


@pytest.mark.parametrize("ratio", [-1, math.nan, math.inf, None])
def test_hard_negatives_rejects_a_bad_ratio(ratio):
    with pytest.raises(ValueError, match="neg_pos_ratio"):
        hard_negatives(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool), ratio)


BAD_MINING = {
    "loss_1d": (torch.rand(5), torch.zeros(5, dtype=torch.bool), "anchor_loss"),
    "loss_list": ([[0.1, 0.2]], torch.zeros(1, 2, dtype=torch.bool), "anchor_loss"),
    "positives_shape": (torch.rand(2, 5), torch.zeros(2, 4, dtype=torch.bool), "positives"),
    "positives_int": (torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.long), "positives"),
    "positives_1d": (torch.rand(2, 5), torch.zeros(5, dtype=torch.bool), "positives"),
    "nan_loss": (
        torch.tensor([[0.1, math.nan]]),
        torch.zeros(1, 2, dtype=torch.bool),
        "anchor_loss",
    ),
    "int_loss": (
        torch.ones(1, 2, dtype=torch.long),
        torch.zeros(1, 2, dtype=torch.bool),
        "anchor_loss",
    ),
}


@pytest.mark.parametrize("case", BAD_MINING, ids=list(BAD_MINING))
def test_hard_negatives_rejects_bad_tensors(case):
    anchor_loss, positives, message = BAD_MINING[case]
    with pytest.raises(ValueError, match=message):
        hard_negatives(anchor_loss, positives)


def test_hard_negatives_accepts_numpy_ratio():
    loss = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.7]])
    positives = torch.tensor([[True, False, False, False, False]])
    mined = hard_negatives(loss, positives, np.float32(2.0))
    assert mined.tolist() == [[False, True, False, False, True]]


# --- LossResult ----------------------------------------------------------------------------------


def test_loss_result_repr_is_one_line_with_four_decimals():
    result = ssd_loss(*tiny_case())
    assert isinstance(result, LossResult)
    text = repr(result)
    assert "\n" not in text
    number = r"\d+\.\d{4}"
    pattern = (
        rf"LossResult\(total={number}, localization={number}, classification={number}, "
        r"num_positives=1, num_mined_negatives=3\)"
    )
    assert re.fullmatch(pattern, text), text
    assert f"localization={4.145:.4f}" in text
