"""Tests for ssd_lesson.fast: the batched speed-ups equal the readable core and torchvision."""

import math

import pytest
import torch
import torchvision
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder, SSDMatcher

from ssd_lesson import encoding
from ssd_lesson.anchors import make_anchors, ssd300_anchors
from ssd_lesson.fast import build_targets, match_anchors_batch, match_anchors_padded, pad_boxes
from ssd_lesson.matching import BACKGROUND, match_anchors

# One box per cell of a 2 x 2 map: the four quadrants of the image, in reading order.
QUADRANTS = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
)
SMALL_ANCHORS = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])
SSD300_ANCHORS = ssd300_anchors()
GOOD_GT = torch.tensor([[0.1, 0.1, 0.4, 0.4]])
THRESHOLDS = [0.3, 0.5, 0.7]


def torchvision_match(anchors, gt, threshold=0.5):
    """SSDMatcher on box_iou; no objects: all background, as in torchvision's SSD."""
    if len(gt) == 0:
        return torch.full((len(anchors),), -1)
    return SSDMatcher(threshold)(torchvision.ops.box_iou(gt, anchors))


def torchvision_targets(anchors, gt_list, labels_list, threshold=0.5):
    """Labels, offsets and matches per image with SSDMatcher and BoxCoder(10, 10, 5, 5)."""
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    labels, offsets, matches = [], [], []
    for gt, gt_labels in zip(gt_list, labels_list, strict=True):
        matched = torchvision_match(anchors, gt, threshold)
        positive = matched >= 0
        image_labels = torch.zeros(len(anchors), dtype=torch.long)
        image_labels[positive] = gt_labels[matched[positive]]
        image_offsets = torch.zeros(len(anchors), 4, dtype=anchors.dtype)
        image_offsets[positive] = coder.encode_single(gt[matched[positive]], anchors[positive])
        labels.append(image_labels)
        offsets.append(image_offsets)
        matches.append(matched)
    return torch.stack(labels), torch.stack(offsets), torch.stack(matches)


def random_gt(num, gen, dtype=torch.float32):
    """num random xyxy boxes inside the image, sides 0.03..0.6."""
    centres = 0.05 + 0.9 * torch.rand(num, 2, generator=gen, dtype=torch.float64)
    sizes = 0.03 + 0.57 * torch.rand(num, 2, generator=gen, dtype=torch.float64)
    return torch.cat((centres - sizes / 2, centres + sizes / 2), dim=1).clamp(0, 1).to(dtype)


def batch_of_images(seed, dtype=torch.float32):
    """Images with 0, 1 and many objects, incl. duplicates and near copies (collisions)."""
    gen = torch.Generator().manual_seed(seed)
    many = random_gt(9, gen, dtype)
    many = torch.cat((many, many[:2]))  # duplicate objects: they share their best anchor
    near = random_gt(2, gen, dtype)
    jitter = (0.004 * (torch.rand(2, 4, generator=gen) - 0.5)).to(dtype)
    near = torch.cat((near, (near + jitter).clamp(0, 1)))  # near copies: collisions too
    empty = torch.zeros(0, 4, dtype=dtype)
    return [random_gt(3, gen, dtype), empty, random_gt(1, gen, dtype), many, empty, near]


def labels_for(images, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 21, (len(gt),), generator=gen) for gt in images]


def collision_fixture():
    """Two objects whose best anchor is anchor 0; object 0 also has anchor 1 above 0.5."""
    anchors = torch.tensor([[0, 0, 5, 5], [0, 0, 4, 5], [5, 5, 10, 10]]) / 10
    gt = torch.tensor([[0, 0, 4.5, 5], [0.5, 0, 5, 5]]) / 10
    return anchors, gt


def count_collisions(anchors, images):
    collisions = 0
    for gt in images:
        if len(gt):
            best = torchvision.ops.box_iou(gt, anchors).argmax(dim=1)
            collisions += len(best) - len(set(best.tolist()))
    return collisions


def assert_same_targets(targets, expected):
    labels, offsets, matched = expected
    assert targets.labels.dtype == targets.matched_gt.dtype == torch.int64
    assert torch.equal(targets.matched_gt, matched)
    assert torch.equal(targets.labels, labels)
    assert targets.offsets.dtype == offsets.dtype
    assert_close(targets.offsets, offsets)


# --- pad_boxes -----------------------------------------------------------------------------------


def test_pad_boxes_by_hand():
    padded, mask = pad_boxes(
        [[[0.0, 0.0, 0.5, 0.5]], torch.zeros(0, 4), [[0, 0, 1, 1], [0, 0, 0.5, 1]]]
    )
    expected = torch.tensor(
        [
            [[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]],
            [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
            [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]],
        ]
    )
    assert_close(padded, expected)
    assert mask.tolist() == [[True, False], [False, False], [True, True]]


def test_pad_boxes_of_no_images_and_of_float64():
    padded, mask = pad_boxes([])
    assert padded.shape == (0, 0, 4) and mask.shape == (0, 0) and mask.dtype == torch.bool
    padded, _ = pad_boxes([GOOD_GT.double()])
    assert padded.dtype == torch.float64


# --- match_anchors_padded ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("seed", range(3))
def test_match_anchors_padded_equals_core_and_torchvision(seed, threshold, dtype):
    images = batch_of_images(seed, dtype)
    anchors = SMALL_ANCHORS.to(dtype)
    assert count_collisions(anchors, images) > 0
    padded, mask = pad_boxes(images)
    assert padded.shape == (6, 11, 4)
    assert mask.sum(dim=1).tolist() == [3, 0, 1, 11, 0, 4]
    batched = match_anchors_padded(anchors, padded, mask, iou_threshold=threshold)
    assert batched.shape == (6, len(anchors)) and batched.dtype == torch.int64
    for i, gt in enumerate(images):
        expected = match_anchors(anchors, gt, iou_threshold=threshold)
        assert batched[i].tolist() == expected.tolist()
        assert batched[i].tolist() == torchvision_match(anchors, gt, threshold).tolist()
    assert (batched[1] == BACKGROUND).all() and (batched[4] == BACKGROUND).all()


def test_match_anchors_padded_threshold_is_inclusive_and_ties_force_the_first_anchor():
    top_half = torch.tensor([[0.0, 0.0, 1.0, 0.5]])  # IoU exactly 0.5 with quadrants 0 and 1
    left_half = torch.tensor([[0.0, 0.0, 0.5, 1.0]])
    padded, mask = pad_boxes([top_half, left_half])
    matched = match_anchors_padded(QUADRANTS, padded, mask, iou_threshold=0.5)
    assert matched.tolist() == [[0, 0, -1, -1], [0, -1, 0, -1]]
    matched = match_anchors_padded(QUADRANTS, padded, mask, iou_threshold=0.6)
    assert matched.tolist() == [[0, -1, -1, -1], [0, -1, -1, -1]]


def test_match_anchors_padded_ignores_what_padding_holds():
    images = batch_of_images(0)
    padded, mask = pad_boxes(images)
    expected = match_anchors_padded(SMALL_ANCHORS, padded, mask)
    junk = padded.clone()
    # Padded rows may hold anything finite: a box that would win every anchor, inverted
    # boxes, pixels.
    junk[~mask] = torch.tensor([0.0, 0.0, 1.0, 1.0])
    junk[1, 0] = torch.tensor([5.0, 5.0, -3.0, 700.0])
    junk[4] = SMALL_ANCHORS[: junk.shape[1]]
    assert match_anchors_padded(SMALL_ANCHORS, junk, mask).tolist() == expected.tolist()


def test_match_anchors_padded_with_no_objects_anywhere():
    padded, mask = pad_boxes([torch.zeros(0, 4), torch.zeros(0, 4)])
    assert padded.shape == (2, 0, 4)
    matched = match_anchors_padded(QUADRANTS, padded, mask)
    assert matched.dtype == torch.int64
    assert matched.tolist() == [[BACKGROUND] * 4] * 2


def test_match_anchors_padded_of_an_empty_batch():
    matched = match_anchors_padded(QUADRANTS, torch.zeros(0, 0, 4), torch.zeros(0, 0, dtype=bool))
    assert matched.shape == (0, 4) and matched.dtype == torch.int64


def test_match_anchors_padded_collision_by_hand():
    anchors, gt = collision_fixture()
    padded, mask = pad_boxes([gt, gt[:1], gt.flip(0)])
    matched = match_anchors_padded(anchors, padded, mask)
    assert matched.tolist() == [[1, 0, -1], [0, 0, -1], [1, 1, -1]]
    assert matched[0].tolist() == torchvision_match(anchors, gt).tolist()


# --- match_anchors_batch -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("seed", range(3))
def test_match_anchors_batch_equals_core_and_torchvision(seed, threshold, dtype):
    images = batch_of_images(seed + 10, dtype)
    anchors = SMALL_ANCHORS.to(dtype)
    matched = match_anchors_batch(anchors, images, iou_threshold=threshold)
    assert matched.shape == (len(images), len(anchors)) and matched.dtype == torch.int64
    for i, gt in enumerate(images):
        assert matched[i].tolist() == match_anchors(anchors, gt, threshold).tolist()
        assert matched[i].tolist() == torchvision_match(anchors, gt, threshold).tolist()


def test_match_anchors_batch_on_ssd300_anchors_equals_torchvision():
    gen = torch.Generator().manual_seed(4)
    images = [random_gt(n, gen) for n in (10, 0, 1, 30)]
    images[3] = torch.cat((images[3], images[3][:3]))  # duplicates: collisions
    matched = match_anchors_batch(SSD300_ANCHORS, images)
    for i, gt in enumerate(images):
        assert matched[i].tolist() == torchvision_match(SSD300_ANCHORS, gt).tolist()


def test_match_anchors_batch_of_no_images():
    matched = match_anchors_batch(QUADRANTS, [])
    assert matched.shape == (0, 4) and matched.dtype == torch.int64


def test_match_anchors_batch_collision_by_hand():
    anchors, gt = collision_fixture()
    matched = match_anchors_batch(anchors, [gt, torch.zeros(0, 4), gt.flip(0)])
    assert matched.tolist() == [[1, 0, -1], [-1, -1, -1], [1, 1, -1]]


def test_match_anchors_batch_accepts_lists():
    matched = match_anchors_batch(QUADRANTS.tolist(), [[[0.5, 0.5, 1.0, 1.0]], []])
    assert matched.tolist() == [[-1, -1, -1, 0], [-1, -1, -1, -1]]


# --- build_targets -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("seed", range(3))
def test_build_targets_equals_readable_and_torchvision(seed, threshold, dtype):
    images = batch_of_images(seed + 20, dtype)
    labels = labels_for(images, seed)
    anchors = SMALL_ANCHORS.to(dtype)
    targets = build_targets(anchors, images, labels, iou_threshold=threshold)
    readable = encoding.build_targets(anchors, images, labels, iou_threshold=threshold)
    assert_same_targets(targets, readable)
    assert torch.equal(targets.offsets, readable.offsets)
    assert_same_targets(targets, torchvision_targets(anchors, images, labels, threshold))
    assert (targets.labels[1] == 0).all() and (targets.labels[4] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_build_targets_on_ssd300_anchors_equals_readable_and_torchvision(dtype):
    gen = torch.Generator().manual_seed(5)
    images = [random_gt(n, gen, dtype) for n in (10, 1, 0, 4, 25)]
    images[4] = torch.cat((images[4], images[4][:2]))
    labels = labels_for(images, 5)
    anchors = SSD300_ANCHORS.to(dtype)
    targets = build_targets(anchors, images, labels)
    assert targets.offsets.shape == (5, 8732, 4)
    assert_same_targets(targets, encoding.build_targets(anchors, images, labels))
    assert_same_targets(targets, torchvision_targets(anchors, images, labels))


def test_build_targets_by_hand():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.4], [0.6, 0.5, 1.0, 1.0]])  # IoU 0.8 with quadrants 0, 3
    targets = build_targets(
        QUADRANTS,
        [gt, torch.zeros(0, 4), gt[1:]],
        [torch.tensor([3, 7]), torch.zeros(0, dtype=torch.long), torch.tensor([2])],
    )
    assert targets.labels.tolist() == [[3, 0, 0, 7], [0, 0, 0, 0], [0, 0, 0, 2]]
    assert targets.matched_gt.tolist() == [[0, -1, -1, 1], [-1, -1, -1, -1], [-1, -1, -1, 0]]
    t = math.log(0.8) / 0.2
    expected = torch.zeros(3, 4, 4)
    expected[0, 0] = torch.tensor([0.0, -1.0, 0.0, t])
    expected[0, 3] = expected[2, 3] = torch.tensor([1.0, 0.0, t, 0.0])
    assert_close(targets.offsets, expected)


def test_build_targets_collision_by_hand():
    anchors, gt = collision_fixture()
    targets = build_targets(anchors, [gt], [torch.tensor([4, 9])])
    assert targets.matched_gt.tolist() == [[1, 0, -1]]
    assert targets.labels.tolist() == [[9, 4, 0]]


def test_build_targets_with_only_empty_images_and_of_no_images():
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    targets = build_targets(QUADRANTS, empty, [torch.zeros(0, dtype=torch.long)] * 2)
    assert targets.labels.tolist() == [[0, 0, 0, 0]] * 2
    assert targets.matched_gt.tolist() == [[BACKGROUND] * 4] * 2
    assert torch.equal(targets.offsets, torch.zeros(2, 4, 4))
    no_images = build_targets(QUADRANTS, [], [])
    readable = encoding.build_targets(QUADRANTS, [], [])
    assert no_images.labels.shape == no_images.matched_gt.shape == (0, 4)
    assert no_images.offsets.shape == (0, 4, 4)
    assert no_images.labels.dtype == readable.labels.dtype == torch.int64
    assert no_images.offsets.dtype == readable.offsets.dtype == torch.float32


def test_build_targets_accepts_lists_and_carries_no_gradient():
    targets = build_targets(QUADRANTS.tolist(), [[[0.0, 0.0, 0.5, 0.4]], []], [[3], []])
    assert targets.labels.tolist() == [[3, 0, 0, 0], [0, 0, 0, 0]]
    assert targets.offsets.dtype == torch.float32
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.4]], requires_grad=True)
    targets = build_targets(QUADRANTS.clone().requires_grad_(), [gt], [[3]])
    assert not targets.offsets.requires_grad


# --- Bad inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0, -0.5, 1.5, math.nan, "0.5", None, True])
@pytest.mark.parametrize(
    "call",
    [
        lambda t: match_anchors_padded(QUADRANTS, GOOD_GT[None], torch.ones(1, 1, dtype=bool), t),
        lambda t: match_anchors_batch(QUADRANTS, [GOOD_GT], iou_threshold=t),
        lambda t: build_targets(QUADRANTS, [GOOD_GT], [[1]], iou_threshold=t),
    ],
    ids=["padded", "batch", "targets"],
)
def test_bad_iou_threshold_is_rejected(call, threshold):
    with pytest.raises(ValueError, match="iou_threshold"):
        call(threshold)


BAD_GT = {
    "shape": (torch.zeros(2, 3), r"gt_boxes.*\(2, 3\)"),
    "nan": (torch.tensor([[0.1, 0.1, 0.4, math.nan]]), "gt_boxes.*NaN or inf"),
    "swapped": (torch.tensor([[0.4, 0.1, 0.1, 0.4]]), "gt_boxes.*x2 >= x1"),
    "zero_area": (torch.tensor([[0.1, 0.1, 0.1, 0.4]]), "gt_boxes.*zero area"),
    "pixels": (torch.tensor([[10.0, 20.0, 150.0, 200.0]]), "gt_boxes.*look like pixels"),
    "outside": (torch.tensor([[0.5, 0.5, 1.2, 0.9]]), "gt_boxes.*clip them"),
}


@pytest.mark.parametrize("case", BAD_GT, ids=list(BAD_GT))
def test_bad_gt_boxes_are_rejected(case):
    bad, message = BAD_GT[case]
    gt = bad if bad.shape[-1] != 4 else torch.cat((GOOD_GT, bad))
    labels = list(range(1, len(gt) + 1))
    with pytest.raises(ValueError, match=message):
        match_anchors_batch(QUADRANTS, [GOOD_GT, gt])
    with pytest.raises(ValueError, match=message):
        build_targets(QUADRANTS, [GOOD_GT, gt], [[1], labels])
    if case in ("shape", "nan", "swapped"):  # not boxes in any unit: pad_boxes refuses them
        with pytest.raises(ValueError, match=message):
            pad_boxes([GOOD_GT, gt])
    else:
        padded, mask = pad_boxes([GOOD_GT, gt])
        with pytest.raises(ValueError, match=message):
            match_anchors_padded(QUADRANTS, padded, mask)


BAD_ANCHORS = {
    "shape": (torch.zeros(4, 5), r"anchors.*\(4, 5\)"),
    "swapped": (QUADRANTS[:, [2, 3, 0, 1]], "anchors.*x2 >= x1"),
    "pixels": (QUADRANTS * 300, "anchors.*look like pixels"),
    "empty": (torch.zeros(0, 4), "at least one anchor"),
}


@pytest.mark.parametrize("case", BAD_ANCHORS, ids=list(BAD_ANCHORS))
def test_bad_anchors_are_rejected(case):
    anchors, message = BAD_ANCHORS[case]
    padded, mask = pad_boxes([GOOD_GT])
    with pytest.raises(ValueError, match=message):
        match_anchors_padded(anchors, padded, mask)
    with pytest.raises(ValueError, match=message):
        match_anchors_batch(anchors, [GOOD_GT])
    with pytest.raises(ValueError, match=message):
        build_targets(anchors, [GOOD_GT], [[1]])


@pytest.mark.parametrize(
    "mask",
    [
        torch.ones(2, 1),
        torch.ones(2, 1, dtype=torch.long),
        torch.ones(2, dtype=torch.bool),
        torch.ones(1, 1, dtype=torch.bool),
        torch.ones(2, 1, 1, dtype=torch.bool),
    ],
    ids=["float", "long", "1d", "wrong_batch", "3d"],
)
def test_bad_gt_mask_is_rejected(mask):
    gt = torch.stack((GOOD_GT, GOOD_GT))  # (2, 1, 4)
    with pytest.raises(ValueError, match=r"gt_mask as a bool tensor of shape \(2, 1\)"):
        match_anchors_padded(QUADRANTS, gt, mask)


@pytest.mark.parametrize(
    "gt", [GOOD_GT, torch.zeros(2, 3, 5), torch.zeros(4)], ids=["2d", "last5", "1d"]
)
def test_padded_gt_boxes_must_be_3d(gt):
    with pytest.raises(ValueError, match="gt_boxes"):
        match_anchors_padded(QUADRANTS, gt, torch.ones(1, 1, dtype=torch.bool))


def test_labels_are_checked():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    with pytest.raises(ValueError, match="one labels tensor per image"):
        build_targets(QUADRANTS, [GOOD_GT, GOOD_GT], [[1]])
    with pytest.raises(ValueError, match="0 is background"):
        build_targets(QUADRANTS, [gt[:1], gt], [[1], [0, 1]])
    with pytest.raises(ValueError, match=r"gt_labels of shape \(2,\)"):
        build_targets(QUADRANTS, [gt], [[1]])
    with pytest.raises(ValueError, match="integer gt_labels"):
        build_targets(QUADRANTS, [gt], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="gt_boxes_list"):
        build_targets(QUADRANTS, GOOD_GT[0, 0], [[1]])
