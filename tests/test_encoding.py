"""Tests for ssd_lesson.encoding: offsets by hand, torchvision's BoxCoder, round trips, targets."""

import math
import re

import pytest
import torch
import torchvision
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder, SSDMatcher

from ssd_lesson.anchors import make_anchors, ssd300_anchors
from ssd_lesson.encoding import SIZE_CLAMP, VARIANCES, build_targets, decode, encode
from ssd_lesson.matching import BACKGROUND

LOG2 = math.log(2.0)
PAPER_UNITS = (1.0, 1.0)  # no variances: the paper's plain equations

# One square anchor: centre (0.3, 0.3), width and height 0.2.
ANCHOR = torch.tensor([[0.2, 0.2, 0.4, 0.4]])
# One box per cell of a 2 x 2 map: the four quadrants of the image, in reading order.
QUADRANTS = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
)
SSD300_ANCHORS = ssd300_anchors()  # (8732, 4)
# A few maps, sizes and shapes: small enough for many random cases.
SMALL_ANCHORS = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])


def box_coder(variances=VARIANCES):
    """torchvision's BoxCoder for our (centre, size) variances: weights are their inverses."""
    centre, size = variances
    return BoxCoder(weights=(1 / centre, 1 / centre, 1 / size, 1 / size))


def random_boxes(n, gen, dtype=torch.float32, margin=0.0, min_side=0.01, max_side=0.9):
    """n random xyxy boxes; centres may lie up to ``margin`` outside the image."""
    centres = -margin + (1 + 2 * margin) * torch.rand(n, 2, generator=gen, dtype=torch.float64)
    sides = min_side + (max_side - min_side) * torch.rand(n, 2, generator=gen, dtype=torch.float64)
    boxes = torch.cat((centres - sides / 2, centres + sides / 2), dim=1)
    if margin == 0:  # ground truth: inside the image
        boxes = boxes.clamp(0, 1)
    return boxes.to(dtype)


def random_anchors_and_gt(seed, n=200, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    anchors = random_boxes(n, gen, dtype, margin=0.2, min_side=0.02, max_side=0.6)
    return anchors, random_boxes(n, gen, dtype)


# --- encode and decode by hand -------------------------------------------------------------------


def test_encode_by_hand_in_paper_units():
    gt = torch.tensor(
        [
            [0.2, 0.2, 0.4, 0.4],  # the anchor itself: nothing to move
            [0.2, 0.2, 0.6, 0.4],  # centre right by half a width (0.1 / 0.2), twice as wide
            [0.2, 0.2, 0.4, 0.3],  # centre up by a quarter height (-0.05 / 0.2), half as tall
            [0.1, 0.3, 0.3, 0.5],  # one half-width left, one half-height down
        ]
    )
    expected = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.5, 0.0, LOG2, 0.0],
            [0.0, -0.25, 0.0, -LOG2],
            [-0.5, 0.5, 0.0, 0.0],
        ]
    )
    assert_close(encode(ANCHOR.expand(4, 4), gt, variances=PAPER_UNITS), expected)


def test_encode_by_hand_with_the_variances():
    gt = torch.tensor([[0.2, 0.2, 0.6, 0.4]])  # t = (0.5, 0, log 2, 0) in paper units
    assert VARIANCES == (0.1, 0.2)
    # Divided by the variances: t_x = 0.5 / 0.1 = 5, t_w = log(2) / 0.2 = 3.466.
    assert_close(encode(ANCHOR, gt), torch.tensor([[5.0, 0.0, LOG2 / 0.2, 0.0]]))
    assert_close(encode(ANCHOR, gt, variances=(0.5, 0.25)), torch.tensor([[1.0, 0, 4 * LOG2, 0]]))


def test_encode_by_hand_on_a_wide_anchor():
    # Width 0.4 and height 0.2: x is measured in anchor widths, y in anchor heights.
    anchor = torch.tensor([[0.0, 0.0, 0.4, 0.2]])  # centre (0.2, 0.1)
    gt = torch.tensor([[0.1, 0.0, 0.5, 0.4]])  # centre (0.3, 0.2), size 0.4 x 0.4
    # t_x = 0.1 / 0.4, t_y = 0.1 / 0.2, t_w = log(0.4 / 0.4), t_h = log(0.4 / 0.2)
    assert_close(encode(anchor, gt, PAPER_UNITS), torch.tensor([[0.25, 0.5, 0.0, LOG2]]))
    assert_close(decode(anchor, torch.tensor([[0.25, 0.5, 0.0, LOG2]]), PAPER_UNITS), gt)
    # And the other way round: a tall anchor.
    tall = torch.tensor([[0.0, 0.0, 0.2, 0.4]])  # centre (0.1, 0.2)
    gt = torch.tensor([[0.1, 0.0, 0.3, 0.8]])  # centre (0.2, 0.4), size 0.2 x 0.8
    assert_close(encode(tall, gt, PAPER_UNITS), torch.tensor([[0.5, 0.5, 0.0, LOG2]]))


def test_decode_by_hand():
    offsets = torch.tensor([[0.5, 0.0, LOG2, 0.0], [0.0, -0.25, 0.0, -LOG2], [0.0, 0.0, 0.0, 0.0]])
    expected = torch.tensor([[0.2, 0.2, 0.6, 0.4], [0.2, 0.2, 0.4, 0.3], [0.2, 0.2, 0.4, 0.4]])
    assert_close(decode(ANCHOR.expand(3, 4), offsets, variances=PAPER_UNITS), expected)
    # With the variances the same boxes need offsets 10 and 5 times larger.
    scaled = offsets * torch.tensor([10.0, 10.0, 5.0, 5.0])
    assert_close(decode(ANCHOR.expand(3, 4), scaled), expected)


def test_size_clamp_by_hand():
    assert SIZE_CLAMP == math.log(1000.0 / 16)
    assert_close(math.exp(SIZE_CLAMP), 62.5)
    # t_w = 10 asks for e^10 ~ 22026 anchor widths; the clamp allows 62.5: 0.2 * 62.5 = 12.5.
    # t_h = -10 is not clamped: the height shrinks to 0.2 * e^-10.
    box = decode(ANCHOR, torch.tensor([[0.0, 0.0, 10.0, -10.0]]), variances=PAPER_UNITS)
    h = 0.2 * math.exp(-10)
    assert_close(box, torch.tensor([[0.3 - 6.25, 0.3 - h / 2, 0.3 + 6.25, 0.3 + h / 2]]))
    # The clamp applies after undoing the variance: t_w = 20 is 20 * 0.2 = 4 < 4.135, not clamped;
    # t_w = 21 is 4.2, clamped.
    box = decode(ANCHOR, torch.tensor([[0.0, 0.0, 20.0, 21.0]]))
    expected = torch.tensor([[0.3 - 0.1 * math.exp(4), 0.3 - 6.25, 0.3 + 0.1 * math.exp(4), 6.55]])
    assert_close(box, expected)


def test_encode_and_decode_accept_lists():
    offsets = encode([[0.2, 0.2, 0.4, 0.4]], [[0.2, 0.2, 0.6, 0.4]])
    assert_close(offsets, torch.tensor([[5.0, 0.0, LOG2 / 0.2, 0.0]]))
    assert_close(decode(ANCHOR, [[5, 0, 0, 0]]), torch.tensor([[0.3, 0.2, 0.5, 0.4]]))


def test_empty_inputs_keep_their_shape():
    assert encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert decode(torch.zeros(0, 4), torch.zeros(3, 0, 4)).shape == (3, 0, 4)


# --- torchvision's BoxCoder as the oracle --------------------------------------------------------

DTYPES = [torch.float32, torch.float64]
VARIANCE_CHOICES = [VARIANCES, PAPER_UNITS, (0.1, 0.1), (0.5, 0.25)]


@pytest.mark.parametrize("variances", VARIANCE_CHOICES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_encode_matches_torchvision(seed, dtype, variances):
    anchors, gt = random_anchors_and_gt(seed, dtype=dtype)
    offsets = encode(anchors, gt, variances)
    assert offsets.dtype == dtype
    assert_close(offsets, box_coder(variances).encode_single(gt, anchors))


@pytest.mark.parametrize("variances", VARIANCE_CHOICES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_decode_matches_torchvision(seed, dtype, variances):
    anchors, _ = random_anchors_and_gt(seed, dtype=dtype)
    gen = torch.Generator().manual_seed(100 + seed)
    # From small offsets to ones far beyond the size clamp (1e30 is still finite in float32).
    for scale in (0.1, 1.0, 10.0, 100.0, 1e4, 1e30):
        offsets = (scale * torch.randn(anchors.shape[0], 4, generator=gen)).to(dtype)
        boxes = decode(anchors, offsets, variances)
        assert boxes.dtype == dtype and boxes.shape == offsets.shape
        assert torch.isfinite(boxes).all()
        assert_close(boxes, box_coder(variances).decode_single(offsets, anchors))


@pytest.mark.parametrize("variances", VARIANCE_CHOICES, ids=str)
def test_decode_clamps_sizes_exactly_like_torchvision(variances):
    """Half the size offsets are far beyond the clamp, some just either side of it."""
    anchors, _ = random_anchors_and_gt(7)
    gen = torch.Generator().manual_seed(7)
    size_var = variances[1]
    near = SIZE_CLAMP / size_var * (1 + 0.1 * torch.randn(anchors.shape[0], 2, generator=gen))
    far = torch.tensor([1e3, 1e6, 1e30, -1e3, -1e6, -1e30])[torch.arange(anchors.shape[0]) % 6]
    size_offsets = torch.where(torch.arange(anchors.shape[0])[:, None] % 2 == 0, near, far[:, None])
    offsets = torch.cat((torch.randn(anchors.shape[0], 2, generator=gen), size_offsets), dim=1)
    clamped = offsets[:, 2:] * size_var > SIZE_CLAMP
    assert 0.3 < clamped.float().mean() < 0.7  # both sides of the clamp are tested
    boxes = decode(anchors, offsets, variances)
    assert torch.isfinite(boxes).all()
    assert_close(boxes, box_coder(variances).decode_single(offsets, anchors))
    # Where the clamp bit, the box is exactly 62.5 anchors wide (high), centred where asked.
    sizes = boxes[:, 2:] - boxes[:, :2]
    anchor_sizes = anchors[:, 2:] - anchors[:, :2]
    assert_close(sizes[clamped], 62.5 * anchor_sizes[clamped])
    # Huge negative size offsets are not clamped: the box shrinks to a point, still finite.
    tiny = offsets[:, 2:] <= -1e3
    assert tiny.any() and (sizes[tiny] == 0).all()


def test_decode_works_in_the_dtype_of_the_offsets():
    """As torchvision's decode_single: the anchors are converted to the offsets' dtype."""
    offsets = torch.tensor([[1.0, -2.0, 0.5, 0.25]], dtype=torch.float64)
    anchor = ANCHOR.to(torch.float64)
    assert decode(ANCHOR, offsets).dtype == torch.float64
    assert_close(decode(ANCHOR, offsets), box_coder().decode_single(offsets, ANCHOR))
    assert_close(decode(anchor, offsets), decode(ANCHOR, offsets), atol=0, rtol=1e-7)
    assert decode(anchor, offsets.float()).dtype == torch.float32


def test_decode_batch_equals_per_image():
    anchors, _ = random_anchors_and_gt(3, n=50)
    gen = torch.Generator().manual_seed(3)
    offsets = 3 * torch.randn(5, 50, 4, generator=gen)  # (B, A, 4)
    offsets[2, :5, 2:] = 1e4  # some clamped sizes as well
    boxes = decode(anchors, offsets)
    assert boxes.shape == (5, 50, 4)
    for image in range(5):
        assert_close(boxes[image], decode(anchors, offsets[image]))
        assert_close(boxes[image], box_coder().decode_single(offsets[image], anchors))


@pytest.mark.parametrize("variances", VARIANCE_CHOICES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_round_trip_decode_encode(seed, dtype, variances):
    anchors, gt = random_anchors_and_gt(seed, dtype=dtype)
    assert_close(decode(anchors, encode(anchors, gt, variances), variances), gt)


def test_round_trip_on_ssd300_anchors():
    gen = torch.Generator().manual_seed(0)
    gt = random_boxes(SSD300_ANCHORS.shape[0], gen, min_side=0.05)
    assert_close(decode(SSD300_ANCHORS, encode(SSD300_ANCHORS, gt)), gt, atol=1e-6, rtol=1e-5)


def test_decode_keeps_the_gradient_of_the_offsets():
    offsets = torch.tensor([[0.5, 0.0, 1.0, 0.0]], requires_grad=True)
    decode(ANCHOR, offsets, PAPER_UNITS).sum().backward()
    # d(x1 + x2)/d t_x = 2 * anchor width; d(x1 + x2)/d t_w = 0 (the width grows both ways).
    assert_close(offsets.grad, torch.tensor([[0.4, 0.4, 0.0, 0.0]]))


# --- Bad inputs ----------------------------------------------------------------------------------

BAD_BOXES = {
    "swapped_x": ([[0.4, 0.2, 0.2, 0.4]], "x2 >= x1"),
    "swapped_y": ([[0.2, 0.4, 0.4, 0.2]], "x2 >= x1"),
    "zero_width": ([[0.2, 0.2, 0.2, 0.4]], "zero area"),
    "zero_height": ([[0.2, 0.3, 0.4, 0.3]], "zero area"),
    "point": ([[0.2, 0.2, 0.2, 0.2]], "positive width and height"),
    "nan": ([[0.2, 0.2, math.nan, 0.4]], "NaN or inf"),
    "inf": ([[0.2, -math.inf, 0.4, 0.4]], "NaN or inf"),
    "pixels": ([[20.0, 20.0, 140.0, 140.0]], "look like pixels"),
    "shape": ([[0.2, 0.2, 0.4]], r"\(1, 3\)"),
}


@pytest.mark.parametrize("case", BAD_BOXES, ids=list(BAD_BOXES))
def test_bad_boxes_are_rejected(case):
    bad, message = BAD_BOXES[case]
    bad = torch.tensor(bad)
    with pytest.raises(ValueError, match=f"gt_boxes.*{message}|{message}.*gt_boxes"):
        encode(ANCHOR, bad)
    with pytest.raises(ValueError, match=f"anchors.*{message}|{message}.*anchors"):
        encode(bad, ANCHOR)
    with pytest.raises(ValueError, match=f"anchors.*{message}|{message}.*anchors"):
        decode(bad, torch.zeros(1, 4))
    with pytest.raises(ValueError, match=f"anchors.*{message}|{message}.*anchors"):
        build_targets(bad, [ANCHOR], [[1]])
    with pytest.raises(ValueError, match=f"gt_boxes.*{message}|{message}.*gt_boxes"):
        build_targets(QUADRANTS, [ANCHOR, bad], [[1], [1]])


@pytest.mark.parametrize("num_gt", [0, 2, 5])
def test_encode_needs_one_gt_box_per_anchor(num_gt):
    with pytest.raises(ValueError, match=rf"one ground-truth box per anchor.*\({num_gt}, 4\)"):
        encode(QUADRANTS, ANCHOR.expand(num_gt, 4))


BAD_VARIANCES = [
    (0.0, 0.2),
    (0.1, 0.0),
    (-0.1, 0.2),
    (math.nan, 0.2),
    (0.1, math.inf),
    (10.0, 5.0),  # torchvision's weights, not their inverses
    (10.0, 10.0, 5.0, 5.0),
    (0.1,),
    (0.1, 0.2, 0.3),
    0.1,
    None,
    "12",  # would read as (1.0, 2.0)
    ("0.1", "0.2"),
    (True, True),
]


@pytest.mark.parametrize("variances", BAD_VARIANCES, ids=repr)
def test_bad_variances_are_rejected(variances):
    message = "variances"
    with pytest.raises(ValueError, match=message):
        encode(ANCHOR, ANCHOR, variances)
    with pytest.raises(ValueError, match=message):
        decode(ANCHOR, torch.zeros(1, 4), variances)
    with pytest.raises(ValueError, match=message):
        build_targets(QUADRANTS, [ANCHOR], [[1]], variances=variances)


def test_variances_name_torchvision_weights():
    with pytest.raises(ValueError, match=r"BoxCoder weights \(10, 10, 5, 5\)"):
        decode(ANCHOR, torch.zeros(1, 4), (10, 5))


@pytest.mark.parametrize(
    "offsets",
    [
        torch.zeros(4, 5),
        torch.zeros(3, 4),
        torch.zeros(5, 4),
        torch.zeros(4),
        torch.zeros(1, 1, 4, 4),
    ],
    ids=["4x5", "too_few", "too_many", "1d", "4d"],
)
def test_offsets_of_wrong_shape_are_rejected(offsets):
    with pytest.raises(
        ValueError, match="offsets of shape.*" + re.escape(str(tuple(offsets.shape)))
    ):
        decode(QUADRANTS, offsets)


def test_non_numeric_offsets_are_rejected():
    with pytest.raises(ValueError, match="offsets"):
        decode(QUADRANTS, "abc")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_offsets_are_rejected(value):
    offsets = torch.zeros(2, 4, 4)
    offsets[1, 3, 2] = value
    with pytest.raises(ValueError, match="diverged"):
        decode(QUADRANTS, offsets)


# --- build_targets -------------------------------------------------------------------------------


def torchvision_targets(anchors, gt_list, labels_list, threshold=0.5, variances=VARIANCES):
    """Labels, offsets and matches per image with SSDMatcher, box_iou and BoxCoder.encode_single."""
    labels, offsets, matches = [], [], []
    for gt, gt_labels in zip(gt_list, labels_list, strict=True):
        if gt.shape[0] == 0:  # SSDMatcher refuses images without objects; torchvision's SSD
            matched = torch.full((anchors.shape[0],), -1)  # makes them all background
        else:
            matched = SSDMatcher(threshold)(torchvision.ops.box_iou(gt, anchors))
        positive = matched >= 0
        image_labels = torch.zeros(anchors.shape[0], dtype=torch.long)
        image_labels[positive] = gt_labels[matched[positive]]
        image_offsets = torch.zeros(anchors.shape[0], 4, dtype=anchors.dtype)
        image_offsets[positive] = box_coder(variances).encode_single(
            gt[matched[positive]], anchors[positive]
        )
        labels.append(image_labels)
        offsets.append(image_offsets)
        matches.append(matched)
    return torch.stack(labels), torch.stack(offsets), torch.stack(matches)


def random_images(seed, counts, dtype=torch.float32):
    """One image per count: that many boxes inside the image, classes 1..20, a duplicate or two."""
    gen = torch.Generator().manual_seed(seed)
    gt_list, labels_list = [], []
    for count in counts:
        gt = random_boxes(count, gen, dtype, min_side=0.02, max_side=0.7)
        if count > 3:
            gt = torch.cat((gt, gt[:2]))  # duplicate objects, with other labels
        gt_list.append(gt)
        labels_list.append(torch.randint(1, 21, (gt.shape[0],), generator=gen))
    return gt_list, labels_list


def assert_same_targets(targets, expected):
    labels, offsets, matched = expected
    assert targets.labels.dtype == targets.matched_gt.dtype == torch.int64
    assert torch.equal(targets.matched_gt, matched)
    assert torch.equal(targets.labels, labels)
    assert targets.offsets.dtype == offsets.dtype
    assert_close(targets.offsets, offsets)
    background = matched == BACKGROUND
    assert torch.equal(targets.offsets[background], torch.zeros_like(offsets[background]))
    assert (targets.labels[background] == 0).all() and (targets.labels[~background] > 0).all()


def test_build_targets_by_hand():
    gt_first = torch.tensor([[0.0, 0.0, 0.5, 0.4]])  # IoU 0.8 with quadrant 0
    gt_second = torch.tensor([[0.6, 0.5, 1.0, 1.0]])  # IoU 0.8 with quadrant 3
    targets = build_targets(
        QUADRANTS,
        [gt_first, torch.zeros(0, 4), gt_second],
        [torch.tensor([3]), torch.zeros(0, dtype=torch.long), torch.tensor([7])],
    )
    assert targets.labels.tolist() == [[3, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 7]]
    assert targets.matched_gt.tolist() == [[0, -1, -1, -1], [-1] * 4, [-1, -1, -1, 0]]
    # Quadrant 0: centre (0.25, 0.25), side 0.5; gt centre (0.25, 0.2), size 0.5 x 0.4:
    # t_y = -0.05 / 0.5 / 0.1 = -1, t_h = log(0.8) / 0.2. Quadrant 3: centre (0.75, 0.75);
    # gt centre (0.8, 0.75), size 0.4 x 0.5: t_x = 0.05 / 0.5 / 0.1 = 1, t_w = log(0.8) / 0.2.
    t = math.log(0.8) / 0.2
    expected = torch.zeros(3, 4, 4)
    expected[0, 0] = torch.tensor([0.0, -1.0, 0.0, t])
    expected[2, 3] = torch.tensor([1.0, 0.0, t, 0.0])
    assert_close(targets.offsets, expected)
    # In paper units the same offsets are 10 and 5 times smaller.
    paper = build_targets(QUADRANTS, [gt_first], [[3]], variances=PAPER_UNITS)
    assert_close(paper.offsets[0, 0], torch.tensor([0.0, -0.1, 0.0, math.log(0.8)]))


def test_build_targets_passes_the_iou_threshold_on():
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.75]])  # IoU 2/3 with quadrant 0, 1/4 with quadrant 2
    assert build_targets(QUADRANTS, [gt], [[5]]).labels.tolist() == [[5, 0, 0, 0]]
    assert build_targets(QUADRANTS, [gt], [[5]], iou_threshold=0.2).labels.tolist() == [
        [5, 0, 5, 0]
    ]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("seed", range(3))
def test_build_targets_matches_torchvision_on_small_anchors(seed, threshold):
    gt_list, labels_list = random_images(seed, [3, 0, 1, 8, 12, 0])
    targets = build_targets(SMALL_ANCHORS, gt_list, labels_list, iou_threshold=threshold)
    expected = torchvision_targets(SMALL_ANCHORS, gt_list, labels_list, threshold)
    assert_same_targets(targets, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("seed", range(3))
def test_build_targets_matches_torchvision_on_ssd300_anchors(seed, dtype):
    anchors = SSD300_ANCHORS.to(dtype)
    gt_list, labels_list = random_images(seed, [10, 1, 0, 4, 25], dtype)
    targets = build_targets(anchors, gt_list, labels_list)
    assert targets.offsets.shape == (5, 8732, 4)
    assert_same_targets(targets, torchvision_targets(anchors, gt_list, labels_list))
    assert (targets.labels[2] == 0).all()
    assert (targets.labels[4] > 0).sum() > (targets.labels[1] > 0).sum() > 0


@pytest.mark.parametrize("variances", [PAPER_UNITS, (0.5, 0.25)], ids=str)
def test_build_targets_uses_the_variances(variances):
    gt_list, labels_list = random_images(4, [5, 2])
    targets = build_targets(SMALL_ANCHORS, gt_list, labels_list, variances=variances)
    expected = torchvision_targets(SMALL_ANCHORS, gt_list, labels_list, variances=variances)
    assert_same_targets(targets, expected)


def test_build_targets_offsets_equal_encode_of_the_matched_boxes():
    gt_list, labels_list = random_images(5, [6, 3])
    targets = build_targets(SMALL_ANCHORS, gt_list, labels_list)
    for image, gt in enumerate(gt_list):
        positive = targets.matched_gt[image] != BACKGROUND
        matched_boxes = gt[targets.matched_gt[image, positive]]
        assert_close(
            targets.offsets[image, positive], encode(SMALL_ANCHORS[positive], matched_boxes)
        )


def test_build_targets_with_only_empty_images():
    empty = [torch.zeros(0, 4), torch.zeros(0, 4)]
    targets = build_targets(QUADRANTS, empty, [torch.zeros(0, dtype=torch.long)] * 2)
    assert targets.labels.tolist() == [[0, 0, 0, 0]] * 2
    assert targets.matched_gt.tolist() == [[BACKGROUND] * 4] * 2
    assert torch.equal(targets.offsets, torch.zeros(2, 4, 4))
    no_images = build_targets(QUADRANTS, [], [])
    assert no_images.labels.shape == no_images.matched_gt.shape == (0, 4)
    assert no_images.offsets.shape == (0, 4, 4)


def test_build_targets_accepts_lists():
    targets = build_targets(QUADRANTS.tolist(), [[[0.0, 0.0, 0.5, 0.4]], []], [[3], []])
    assert targets.labels.tolist() == [[3, 0, 0, 0], [0, 0, 0, 0]]
    assert targets.offsets.dtype == torch.float32


def test_build_targets_carry_no_gradient():
    """Targets are fixed answers, even when the boxes they come from require a gradient."""
    anchors = SMALL_ANCHORS.clone().requires_grad_()
    gt_list, labels_list = random_images(6, [4, 2])
    gt_list = [gt.clone().requires_grad_() for gt in gt_list]
    targets = build_targets(anchors, gt_list, labels_list)
    assert targets.offsets.grad_fn is None and not targets.offsets.requires_grad
    assert (targets.offsets != 0).any()


def test_build_targets_rejects_bad_labels():
    with pytest.raises(ValueError, match="one labels tensor per image"):
        build_targets(QUADRANTS, [ANCHOR, ANCHOR], [[1]])
    with pytest.raises(ValueError, match="0 is background"):
        build_targets(QUADRANTS, [ANCHOR], [[0]])
    with pytest.raises(ValueError, match="integer gt_labels"):
        build_targets(QUADRANTS, [ANCHOR], [[1.0]])
    with pytest.raises(ValueError, match="iou_threshold"):
        build_targets(QUADRANTS, [ANCHOR], [[1]], iou_threshold=0)
