"""Tests for ssd_lesson.boxes: formats, area, IoU and the input checks."""

import math
import re

import pytest
import torch
import torchvision
from torch.testing import assert_close

from ssd_lesson import checks
from ssd_lesson.boxes import box_area, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh
from ssd_lesson.checks import FRACTION_MARGIN


def check_xyxy(boxes, name="boxes", fractions=True):
    """The fraction check box_area uses (the old boxes.check_xyxy, now in checks)."""
    return checks.boxes(boxes, name, fractions=fractions)


def random_xyxy(n, seed, low=0.0, high=1.0, min_side=0.01):
    """n random xyxy boxes inside [low, high] with both sides >= min_side."""
    gen = torch.Generator().manual_seed(seed)
    x1y1 = low + (high - low - min_side) * torch.rand(n, 2, generator=gen)
    wh = min_side + (high - x1y1 - min_side) * torch.rand(n, 2, generator=gen)
    return torch.cat((x1y1, x1y1 + wh), dim=1)


# --- Conversions ---------------------------------------------------------------------------------


def test_xyxy_to_cxcywh_by_hand():
    boxes = torch.tensor([[0.1, 0.2, 0.5, 0.8], [0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.25, 0.75]])
    expected = torch.tensor([[0.3, 0.5, 0.4, 0.6], [0.5, 0.5, 1.0, 1.0], [0.25, 0.625, 0.0, 0.25]])
    assert_close(xyxy_to_cxcywh(boxes), expected)


def test_cxcywh_to_xyxy_by_hand():
    boxes = torch.tensor([[0.3, 0.5, 0.4, 0.6], [0.5, 0.5, 1.0, 1.0], [0.0, 1.0, 0.5, 0.25]])
    expected = torch.tensor(
        [[0.1, 0.2, 0.5, 0.8], [0.0, 0.0, 1.0, 1.0], [-0.25, 0.875, 0.25, 1.125]]
    )
    assert_close(cxcywh_to_xyxy(boxes), expected)


def test_conversions_accept_lists_and_integers():
    out = xyxy_to_cxcywh([[0, 0, 1, 1]])
    assert out.is_floating_point()
    assert_close(out, torch.tensor([[0.5, 0.5, 1.0, 1.0]]))
    assert_close(cxcywh_to_xyxy(torch.tensor([[1, 1, 2, 2]])), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))


def test_conversions_keep_empty_shape():
    assert xyxy_to_cxcywh(torch.zeros(0, 4)).shape == (0, 4)
    assert cxcywh_to_xyxy(torch.zeros(0, 4)).shape == (0, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conversions_match_torchvision(seed):
    xyxy = random_xyxy(200, seed)
    cxcywh = torchvision.ops.box_convert(xyxy, in_fmt="xyxy", out_fmt="cxcywh")
    assert_close(xyxy_to_cxcywh(xyxy), cxcywh)
    assert_close(
        cxcywh_to_xyxy(cxcywh), torchvision.ops.box_convert(cxcywh, in_fmt="cxcywh", out_fmt="xyxy")
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_xyxy_cxcywh_xyxy(seed):
    xyxy = random_xyxy(200, seed, low=-0.3, high=1.3)
    assert_close(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)
    cxcywh = xyxy_to_cxcywh(xyxy)
    assert_close(xyxy_to_cxcywh(cxcywh_to_xyxy(cxcywh)), cxcywh)


# --- Area and IoU --------------------------------------------------------------------------------


def test_box_area_by_hand():
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.25], [0.2, 0.2, 0.2, 0.9]])
    assert_close(box_area(boxes), torch.tensor([1.0, 0.125, 0.0]))


def test_box_area_matches_torchvision():
    boxes = random_xyxy(100, seed=3)
    assert_close(box_area(boxes), torchvision.ops.box_area(boxes))


def test_box_iou_by_hand():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    b = torch.tensor(
        [
            [0.25, 0.0, 0.75, 0.5],  # half of a unit square overlaps: 1 / (2 - 1/2) = 1/3
            [0.0, 0.0, 0.5, 0.5],  # the same box
            [0.5, 0.0, 1.0, 0.5],  # touches along an edge only
            [0.6, 0.6, 0.9, 0.9],  # far away
            [0.0, 0.0, 0.25, 0.25],  # a quarter of a, inside a
            [0.0, 0.0, 1.0, 1.0],  # contains a
        ]
    )
    expected = torch.tensor([[1 / 3, 1.0, 0.0, 0.0, 0.25, 0.25]])
    assert_close(box_iou(a, b), expected)
    assert_close(box_iou(b, a), expected.T)


def test_box_iou_unit_squares_overlapping_by_half():
    # Unit squares in a 2-unit-wide picture, written in fractions: 1/3 again.
    iou = box_iou([[0.0, 0.0, 0.5, 1.0]], [[0.25, 0.0, 0.75, 1.0]])
    assert_close(iou, torch.tensor([[1 / 3]]))


def test_box_iou_shapes_including_empty():
    assert box_iou(random_xyxy(3, 0), random_xyxy(5, 1)).shape == (3, 5)
    assert box_iou(torch.zeros(0, 4), random_xyxy(5, 1)).shape == (0, 5)
    assert box_iou(random_xyxy(3, 0), torch.zeros(0, 4)).shape == (3, 0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_box_iou_matches_torchvision(seed):
    # Boxes reaching a little outside the image, as anchors near the border do.
    boxes1 = random_xyxy(40, seed, low=-0.3, high=1.3)
    boxes2 = random_xyxy(70, seed + 100, low=-0.3, high=1.3)
    # Some exact duplicates and nested boxes too.
    boxes2[:5] = boxes1[:5]
    boxes2[5] = torch.tensor([-0.3, -0.3, 1.3, 1.3])
    iou = box_iou(boxes1, boxes2)
    assert_close(iou, torchvision.ops.box_iou(boxes1, boxes2))
    assert_close(iou[range(5), range(5)], torch.ones(5))
    assert (iou >= 0).all() and (iou <= 1 + 1e-6).all()


def test_box_iou_accepts_integer_tensor():
    iou = box_iou(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 1, 1]]))
    assert iou.is_floating_point()
    assert_close(iou, torch.tensor([[1.0]]))


# --- checks.boxes ---------------------------------------------------------------------------------


def test_check_xyxy_allows_the_fraction_margin():
    edge = torch.tensor([[-FRACTION_MARGIN, -FRACTION_MARGIN, 1 + FRACTION_MARGIN, 1.2]])
    assert_close(check_xyxy(edge), edge)


def test_check_xyxy_allows_pixels_when_asked():
    pixels = torch.tensor([[10.0, 20.0, 300.0, 200.0]])
    assert_close(check_xyxy(pixels, fractions=False), pixels)


def test_checks_boxes_converts_lists_to_float():
    out = checks.boxes([[0, 0, 1, 1], [0, 0, 0.5, 0.5]])
    assert out.dtype == torch.float32 and out.shape == (2, 4)


# --- Bad inputs ----------------------------------------------------------------------------------

BAD_SHAPES = [torch.zeros(4), torch.zeros(2, 3), torch.zeros(1, 2, 4), torch.zeros(3, 5)]


# Every public function that takes boxes, with box_iou checked on either side.
BOX_FUNCTIONS = {
    "xyxy_to_cxcywh": xyxy_to_cxcywh,
    "cxcywh_to_xyxy": cxcywh_to_xyxy,
    "box_area": box_area,
    "box_iou_first": lambda b: box_iou(b, [[0.0, 0.0, 1.0, 1.0]]),
    "box_iou_second": lambda b: box_iou([[0.0, 0.0, 1.0, 1.0]], b),
}


@pytest.mark.parametrize("bad", BAD_SHAPES, ids=lambda t: str(tuple(t.shape)))
@pytest.mark.parametrize("func", BOX_FUNCTIONS.values(), ids=BOX_FUNCTIONS.keys())
def test_wrong_shape_is_rejected(func, bad):
    with pytest.raises(ValueError, match=re.escape(str(tuple(bad.shape)))):
        func(bad)


def test_non_numeric_boxes_are_rejected():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        box_area("not boxes")
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        xyxy_to_cxcywh([[0, 0, 1, 1], [0, 0]])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "func",
    [*BOX_FUNCTIONS.values(), check_xyxy],
    ids=[*BOX_FUNCTIONS.keys(), "check_xyxy"],
)
def test_nan_and_inf_are_rejected(func, value):
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.6, 0.6]])
    boxes[1, 2] = value
    with pytest.raises(ValueError, match="NaN or inf"):
        func(boxes)


@pytest.mark.parametrize(
    "bad_row",
    [[0.6, 0.1, 0.4, 0.5], [0.1, 0.6, 0.5, 0.4]],
    ids=["x2<x1", "y2<y1"],
)
@pytest.mark.parametrize(
    "func",
    [xyxy_to_cxcywh, box_area, lambda b: box_iou(b, b), check_xyxy],
    ids=["xyxy_to_cxcywh", "box_area", "box_iou", "check_xyxy"],
)
def test_swapped_corners_are_rejected(func, bad_row):
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], bad_row])
    with pytest.raises(ValueError, match="x2 >= x1"):
        func(boxes)


def test_cxcywh_looking_boxes_hint_at_the_format():
    # (cx, cy, w, h) = (0.5, 0.5, 0.2, 0.2) read as xyxy has x2 < x1.
    with pytest.raises(ValueError, match="cxcywh format"):
        box_area([[0.5, 0.5, 0.2, 0.2]])


def test_negative_size_in_cxcywh_is_rejected():
    with pytest.raises(ValueError, match="width and height >= 0"):
        cxcywh_to_xyxy([[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, -0.1]])


@pytest.mark.parametrize(
    "zero_box",
    [[0.2, 0.2, 0.2, 0.6], [0.2, 0.3, 0.6, 0.3], [0.4, 0.4, 0.4, 0.4]],
    ids=["zero width", "zero height", "point"],
)
def test_box_iou_of_a_zero_area_box_is_zero_never_nan(zero_box):
    good = [[0.0, 0.0, 0.5, 0.5]]
    assert_close(box_iou(good, [zero_box]), torch.tensor([[0.0]]))
    assert_close(box_iou([good[0], zero_box], good), torch.tensor([[1.0], [0.0]]))
    # Two zero-area boxes, even the same one, have IoU 0 (0 / 0 would be NaN).
    assert_close(box_iou([zero_box], [zero_box]), torch.tensor([[0.0]]))


def test_box_iou_in_pixels_equals_box_iou_in_fractions():
    width, height = 640.0, 480.0
    scale = torch.tensor([width, height, width, height])
    fractions1, fractions2 = random_xyxy(30, 7), random_xyxy(20, 8)
    pixels = box_iou(fractions1 * scale, fractions2 * scale)
    assert_close(pixels, box_iou(fractions1, fractions2))
    assert_close(pixels, torchvision.ops.box_iou(fractions1 * scale, fractions2 * scale))


def test_box_iou_accepts_float64_and_mixed_dtypes():
    boxes1, boxes2 = random_xyxy(10, 9), random_xyxy(12, 10)
    iou64 = box_iou(boxes1.double(), boxes2.double())
    assert iou64.dtype == torch.float64
    assert_close(iou64, torchvision.ops.box_iou(boxes1.double(), boxes2.double()))
    assert box_iou(boxes1, boxes2.double()).dtype == torch.float64


@pytest.mark.parametrize("func", [box_area, check_xyxy], ids=["box_area", "check_xyxy"])
def test_pixels_passed_as_fractions_are_rejected(func):
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [10.0, 20.0, 300.0, 200.0]])
    with pytest.raises(ValueError, match="look like pixels"):
        func(boxes)


def test_negative_pixels_are_rejected_too():
    with pytest.raises(ValueError, match="look like pixels"):
        box_area([[-40.0, -40.0, 0.5, 0.5]])


def test_error_names_the_argument():
    with pytest.raises(ValueError, match="my_boxes"):
        check_xyxy(torch.zeros(3), name="my_boxes")
    with pytest.raises(ValueError, match="boxes2"):
        box_iou([[0.0, 0.0, 1.0, 1.0]], [[0.5, 0.5, 0.2, 0.2]])
