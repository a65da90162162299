"""Tests for ssd_lesson.anchors: scales, anchor layout and order, and torchvision agreement."""

import math

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
from torchvision.models.detection.image_list import ImageList

from ssd_lesson.anchors import (
    S_MAX,
    S_MIN,
    SSD300_ASPECT_RATIOS,
    SSD300_FEATURE_MAP_SIZES,
    SSD300_VOC_FIRST_SCALE,
    anchors_per_location,
    make_anchors,
    paper_scales,
    ssd300_anchors,
)
from ssd_lesson.boxes import xyxy_to_cxcywh

SQRT2 = math.sqrt(2)
VOC_SCALES = [0.1, 0.2, 0.375, 0.55, 0.725, 0.9, 1.075]
COCO_SCALES = [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]


def torchvision_anchors(sizes, scales, aspect_ratios, clip, image_hw=(300, 300), steps=None):
    """torchvision's DefaultBoxGenerator, converted to xyxy fractions of the image."""
    height, width = image_hw
    generator = DefaultBoxGenerator(
        [list(r) for r in aspect_ratios], scales=list(scales), steps=steps, clip=clip
    )
    images = ImageList(torch.zeros(1, 3, height, width), [(height, width)])
    maps = [torch.zeros(1, 1, *((s, s) if isinstance(s, int) else s)) for s in sizes]
    (boxes_px,) = generator(images, maps)
    return boxes_px / torch.tensor([width, height, width, height], dtype=boxes_px.dtype)


def make_anchors_cxcywh(*args, **kwargs):
    """make_anchors' xyxy boxes as (cx, cy, w, h), to inspect centres and sizes."""
    return xyxy_to_cxcywh(make_anchors(*args, **kwargs))


def hand_loop_anchors(sizes, scales, aspect_ratios, clip):
    """The module docstring's recipe written as plain loops."""
    boxes = []
    for k, size in enumerate(sizes):
        rows, cols = (size, size) if isinstance(size, int) else size
        s_k, s_next = scales[k], scales[k + 1]
        wh = [(s_k, s_k), (math.sqrt(s_k * s_next),) * 2]
        for r in aspect_ratios[k]:
            wh += [
                (s_k * math.sqrt(r), s_k / math.sqrt(r)),
                (s_k / math.sqrt(r), s_k * math.sqrt(r)),
            ]
        for i in range(rows):
            for j in range(cols):
                for w, h in wh:
                    if clip:
                        w, h = min(w, 1.0), min(h, 1.0)
                    boxes.append([(j + 0.5) / cols, (i + 0.5) / rows, w, h])
    return torch.tensor(boxes, dtype=torch.float32)


# --- Scales and counts ---------------------------------------------------------------------------


def test_paper_scales_for_five_maps():
    scales = paper_scales(5)
    assert len(scales) == 6
    assert scales == pytest.approx([0.2, 0.375, 0.55, 0.725, 0.9, 1.075])


def test_paper_scales_span_s_min_to_s_max():
    scales = paper_scales(6)
    assert scales[0] == pytest.approx(S_MIN)
    assert scales[5] == pytest.approx(S_MAX)
    assert scales == pytest.approx([0.2 + 0.14 * k for k in range(7)])


def test_paper_scales_custom_range_and_single_map():
    assert paper_scales(3, s_min=0.1, s_max=0.5) == pytest.approx([0.1, 0.3, 0.5, 0.7])
    assert paper_scales(1) == pytest.approx([S_MIN, S_MAX])


@pytest.mark.parametrize("num_maps", [0, -1, 2.0, "3", None])
def test_paper_scales_rejects_bad_num_maps(num_maps):
    with pytest.raises(ValueError, match="num_maps"):
        paper_scales(num_maps)


@pytest.mark.parametrize("s_min, s_max", [(0.9, 0.2), (0.0, 0.9), (-0.1, 0.9)])
def test_paper_scales_rejects_bad_range(s_min, s_max):
    with pytest.raises(ValueError, match="s_min|s_max"):
        paper_scales(4, s_min=s_min, s_max=s_max)


def test_anchors_per_location_ssd300():
    assert anchors_per_location(SSD300_ASPECT_RATIOS) == [4, 6, 6, 6, 4, 4]
    assert anchors_per_location([[], [1.5], [2, 3, 4]]) == [2, 4, 8]


def test_anchors_per_location_matches_torchvision():
    ratios = [[2], [2, 3], [1.5], []]
    generator = DefaultBoxGenerator(ratios, scales=[0.1, 0.2, 0.3, 0.4, 0.5])
    assert anchors_per_location(ratios) == generator.num_anchors_per_location()


def test_ssd300_has_8732_anchors():
    anchors = ssd300_anchors()
    assert anchors.shape == (8732, 4)
    assert anchors.dtype == torch.float32
    per_cell = anchors_per_location(SSD300_ASPECT_RATIOS)
    assert sum(f * f * n for f, n in zip(SSD300_FEATURE_MAP_SIZES, per_cell, strict=True)) == 8732


def test_ssd300_default_scales_are_the_voc_setting():
    assert SSD300_VOC_FIRST_SCALE == 0.1
    anchors = ssd300_anchors()
    assert_close(anchors, make_anchors(SSD300_FEATURE_MAP_SIZES, VOC_SCALES, SSD300_ASPECT_RATIOS))
    # The very first anchor: the small square of conv4_3's top-left cell.
    anchors = xyxy_to_cxcywh(anchors)
    assert_close(anchors[0], torch.tensor([0.5 / 38, 0.5 / 38, 0.1, 0.1]))
    # The last four: the 1 x 1 map's boxes, centred on the image.
    s, s_next = 0.9, 1.075
    expected = torch.tensor(
        [
            [0.5, 0.5, s, s],
            [0.5, 0.5, min(math.sqrt(s * s_next), 1.0), min(math.sqrt(s * s_next), 1.0)],
            [0.5, 0.5, min(s * SQRT2, 1.0), s / SQRT2],
            [0.5, 0.5, s / SQRT2, min(s * SQRT2, 1.0)],
        ]
    )
    assert_close(anchors[-4:], expected)


# --- Layout and order by hand --------------------------------------------------------------------


def test_single_cell_by_hand():
    anchors = make_anchors_cxcywh([1], [0.2, 0.8], [[2]])
    expected = torch.tensor(
        [
            [0.5, 0.5, 0.2, 0.2],
            [0.5, 0.5, 0.4, 0.4],  # sqrt(0.2 * 0.8)
            [0.5, 0.5, 0.2 * SQRT2, 0.2 / SQRT2],  # ratio 2: wider than tall
            [0.5, 0.5, 0.2 / SQRT2, 0.2 * SQRT2],  # ratio 1/2
        ]
    )
    assert_close(anchors, expected)
    # Aspect ratio is width / height.
    assert_close(anchors[2, 2] / anchors[2, 3], torch.tensor(2.0))


def test_two_by_two_map_by_hand():
    anchors = make_anchors_cxcywh([2], [0.5, 0.5], [[4]], clip=False)
    centres = [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]  # reading order
    sizes = [[0.5, 0.5], [0.5, 0.5], [1.0, 0.25], [0.25, 1.0]]
    expected = torch.tensor([c + s for c in centres for s in sizes])
    assert_close(anchors, expected)


@pytest.mark.parametrize(
    "sizes, scales, ratios, clip",
    [
        ([2], [0.3, 0.6], [[2]], True),
        ([2, 1], [0.3, 0.6, 0.9], [[2, 3], [1.5]], False),
        ([(2, 3), (3, 1)], [0.4, 0.8, 1.2], [[2], [3]], True),
        ([(1, 4)], [1.1, 1.3], [[2]], False),
    ],
)
def test_make_anchors_matches_hand_loop(sizes, scales, ratios, clip):
    assert_close(
        make_anchors_cxcywh(sizes, scales, ratios, clip=clip),
        hand_loop_anchors(sizes, scales, ratios, clip),
    )


def test_non_square_map_centres():
    # 2 rows, 3 columns: x steps in thirds, y in halves.
    anchors = make_anchors_cxcywh([(2, 3)], [0.2, 0.4], [[]])
    centres = anchors[::2, :2]
    expected = torch.tensor(
        [[x / 6, y / 4] for y in (1, 3) for x in (1, 3, 5)],
    )
    assert_close(centres, expected)


def test_box_i_sits_in_cell_i_div_n():
    rows, cols = 3, 5
    ratios = [2, 3]
    n = anchors_per_location([ratios])[0]
    anchors = make_anchors_cxcywh([(rows, cols)], [0.3, 0.5], [ratios])
    assert anchors.shape == (rows * cols * n, 4)
    # The first n boxes all sit at cell (0, 0).
    assert_close(anchors[:n, :2], torch.tensor([[0.5 / cols, 0.5 / rows]]).expand(n, 2))
    index = torch.arange(anchors.shape[0])
    cell = index // n
    expected_cx = (cell % cols + 0.5) / cols
    expected_cy = (cell // cols + 0.5) / rows
    assert_close(anchors[:, 0], expected_cx.float())
    assert_close(anchors[:, 1], expected_cy.float())
    # Box type i % n has the same size in every cell.
    assert_close(anchors[:, 2:], anchors[:n, 2:][index % n])


def test_box_types_within_a_cell():
    s_k, s_next = 0.3, 0.6
    anchors = make_anchors_cxcywh([1], [s_k, s_next], [[2, 3]])
    w, h = anchors[:, 2], anchors[:, 3]
    ratio = w / h
    assert_close(ratio, torch.tensor([1.0, 1.0, 2.0, 0.5, 3.0, 1 / 3]))
    assert_close(w[:2], torch.tensor([s_k, math.sqrt(s_k * s_next)]))
    # Every non-square box keeps the area of the s_k square.
    assert_close(w[2:] * h[2:], torch.full((4,), s_k * s_k))


def test_maps_come_finest_first():
    anchors = make_anchors_cxcywh([3, 1], [0.2, 0.5, 0.8], [[2], [2]])
    assert anchors.shape == (9 * 4 + 4, 4)
    assert_close(anchors[:36, 2:].amin(), torch.tensor(0.2 / SQRT2))
    assert_close(anchors[36:, :2], torch.full((4, 2), 0.5))
    assert_close(anchors[36, 2:], torch.tensor([0.5, 0.5]))


# --- Clipping ------------------------------------------------------------------------------------


def test_clip_caps_width_and_height_at_one():
    scales = [0.8, 1.4]
    clipped = make_anchors_cxcywh([2], scales, [[2]], clip=True)
    raw = make_anchors_cxcywh([2], scales, [[2]], clip=False)
    assert raw[:, 2:].max() > 1.0  # some boxes are wider than the image
    assert clipped[:, 2:].max() == 1.0
    assert_close(clipped[:, 2:], raw[:, 2:].clamp(max=1.0))
    # Centres are not moved, so border boxes may stick out of the image.
    assert_close(clipped[:, :2], raw[:, :2])
    assert make_anchors([2], scales, [[2]], clip=True)[:, 0].min() < 0


def test_clip_leaves_small_boxes_alone():
    assert_close(
        make_anchors([3], [0.2, 0.3], [[2]], clip=True),
        make_anchors([3], [0.2, 0.3], [[2]], clip=False),
    )


# --- torchvision agreement -----------------------------------------------------------------------

TORCHVISION_CASES = {
    "ssd300_voc": (SSD300_FEATURE_MAP_SIZES, VOC_SCALES, SSD300_ASPECT_RATIOS, True, (300, 300)),
    "ssd300_voc_noclip": (
        SSD300_FEATURE_MAP_SIZES,
        VOC_SCALES,
        SSD300_ASPECT_RATIOS,
        False,
        (300, 300),
    ),
    "ssd300_coco_clip": (
        SSD300_FEATURE_MAP_SIZES,
        COCO_SCALES,
        SSD300_ASPECT_RATIOS,
        True,
        (300, 300),
    ),
    "ssd300_coco_noclip": (
        SSD300_FEATURE_MAP_SIZES,
        COCO_SCALES,
        SSD300_ASPECT_RATIOS,
        False,
        (300, 300),
    ),
    "non_square_maps": (
        [(3, 5), (2, 4), (1, 2)],
        [0.2, 0.45, 0.7, 1.2],
        [[2, 3], [1.5], [2]],
        False,
        (240, 400),
    ),
    "non_square_maps_clip": ([(3, 5), (5, 3)], [0.5, 0.9, 1.3], [[2, 3], [1.5]], True, (300, 180)),
    "single_map": ([4], [0.35, 0.8], [[2, 3]], True, (300, 300)),
    "single_map_big_noclip": ([(3, 5)], [0.9, 1.3], [[1.5]], False, (150, 250)),
    "single_cell": ([1], [0.9, 1.1], [[2]], True, (100, 100)),
    "fractional_ratios": ([4, 2], [0.25, 0.5, 0.75], [[0.5, 3], [1.5, 4]], False, (300, 300)),
}


@pytest.mark.parametrize("case", TORCHVISION_CASES, ids=list(TORCHVISION_CASES))
def test_make_anchors_matches_torchvision(case):
    sizes, scales, ratios, clip, image_hw = TORCHVISION_CASES[case]
    ours = make_anchors(sizes, scales, ratios, clip=clip)
    theirs = torchvision_anchors(sizes, scales, ratios, clip, image_hw)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs)


@pytest.mark.parametrize("clip", [True, False])
def test_ssd300_anchors_match_torchvision(clip):
    ours = ssd300_anchors(clip=clip)
    theirs = torchvision_anchors(SSD300_FEATURE_MAP_SIZES, VOC_SCALES, SSD300_ASPECT_RATIOS, clip)
    assert_close(ours, theirs)


def test_ssd300_anchors_with_coco_scales_match_torchvision():
    ours = ssd300_anchors(scales=COCO_SCALES)
    theirs = torchvision_anchors(SSD300_FEATURE_MAP_SIZES, COCO_SCALES, SSD300_ASPECT_RATIOS, True)
    assert_close(ours, theirs)


# --- Steps: torchvision's SSD300 grid ----------------------------------------------------------

SSD300_STEPS_PX = [8, 16, 32, 64, 100, 300]

STEPS_CASES = {
    # (feature map sizes, scales, ratios, clip, image side in pixels, steps in pixels)
    "ssd300_torchvision": (
        SSD300_FEATURE_MAP_SIZES,
        COCO_SCALES,
        SSD300_ASPECT_RATIOS,
        True,
        300,
        SSD300_STEPS_PX,
    ),
    "ssd300_voc_noclip": (
        SSD300_FEATURE_MAP_SIZES,
        VOC_SCALES,
        SSD300_ASPECT_RATIOS,
        False,
        300,
        SSD300_STEPS_PX,
    ),
    "two_maps": ([4, 2], [0.3, 0.6, 0.9], [[2], [2, 3]], True, 64, [16, 30]),
    "non_square_map": ([(3, 5)], [0.4, 0.8], [[1.5]], False, 100, [20]),
    "single_cell": ([1], [0.9, 1.1], [[2]], True, 100, [100]),
}


@pytest.mark.parametrize("case", STEPS_CASES, ids=list(STEPS_CASES))
def test_steps_match_torchvision(case):
    sizes, scales, ratios, clip, side, steps_px = STEPS_CASES[case]
    ours = make_anchors(sizes, scales, ratios, clip=clip, steps=[s / side for s in steps_px])
    theirs = torchvision_anchors(sizes, scales, ratios, clip, (side, side), steps=steps_px)
    assert ours.shape == theirs.shape
    assert_close(ours, theirs)


def test_ssd300_torchvision_steps_centres_by_hand():
    steps = [s / 300 for s in SSD300_STEPS_PX]
    anchors = make_anchors_cxcywh(
        SSD300_FEATURE_MAP_SIZES, COCO_SCALES, SSD300_ASPECT_RATIOS, steps=steps
    )
    assert anchors.shape == (8732, 4)
    # conv4_3 (38 x 38, step 8): the first centre is 4 pixels in; 38 x 8 = 304 > 300, so the last
    # one sits on the border, not half a cell inside it.
    assert_close(anchors[0, :2], torch.tensor([4 / 300, 4 / 300]))
    assert_close(anchors[38 * 38 * 4 - 1, :2], torch.tensor([1.0, 1.0]))
    # The 3 x 3 map (step 100) tiles the image exactly, as without steps.
    start = sum(f * f * n for f, n in zip((38, 19, 10, 5), (4, 6, 6, 6), strict=True))
    assert_close(anchors[start : start + 36], make_anchors_cxcywh([3], COCO_SCALES[4:6], [[2]]))
    # The sizes do not depend on the steps.
    assert_close(
        anchors[:, 2:],
        make_anchors_cxcywh(SSD300_FEATURE_MAP_SIZES, COCO_SCALES, SSD300_ASPECT_RATIOS)[:, 2:],
    )


def test_steps_equal_to_one_over_f_change_nothing():
    sizes, scales, ratios = [4, 3], [0.3, 0.6, 0.9], [[2], [3]]
    assert_close(
        make_anchors(sizes, scales, ratios, steps=[1 / 4, 1 / 3]),
        make_anchors(sizes, scales, ratios),
    )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([8, 16], "are these pixels"),
        ([0.25], "one number per feature map"),
        ("0.25 0.5", "one number per feature map"),
        ([0.25, 0.0], "step"),
        ([0.25, math.nan], "step"),
        ([0.5, 0.5], "cell centres on the image"),
    ],
)
def test_bad_steps_are_rejected(steps, message):
    with pytest.raises(ValueError, match=message):
        make_anchors([4, 2], [0.2, 0.5, 0.8], [[2], [2]], steps=steps)


# --- Bad inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scales, expected",
    [
        ([0.2, 0.5], "3 scales"),
        ([0.1, 0.2, 0.3, 0.4], "3 scales"),
    ],
)
def test_wrong_number_of_scales(scales, expected):
    with pytest.raises(ValueError, match=expected):
        make_anchors([4, 2], scales, [[2], [2]])


def test_ssd300_wrong_number_of_scales():
    with pytest.raises(ValueError, match="7 scales"):
        ssd300_anchors(scales=paper_scales(6)[:6])


@pytest.mark.parametrize("scales", [[30.0, 60.0, 90.0], [0.2, 0.5, 300.0]])
def test_pixel_scales_are_rejected(scales):
    with pytest.raises(ValueError, match="are these pixels"):
        make_anchors([4, 2], scales, [[2], [2]])


@pytest.mark.parametrize("bad", [0.0, -0.2, math.nan, math.inf])
def test_non_positive_or_non_finite_scales_are_rejected(bad):
    with pytest.raises(ValueError, match="scale"):
        make_anchors([4, 2], [0.2, bad, 0.8], [[2], [2]])


@pytest.mark.parametrize("ratio", [1, 1.0, 0.0, -2.0, math.nan, math.inf])
def test_bad_aspect_ratio_is_rejected(ratio):
    with pytest.raises(ValueError, match="aspect ratio"):
        make_anchors([4, 2], [0.2, 0.5, 0.8], [[2], [3, ratio]])
    with pytest.raises(ValueError, match="aspect ratio"):
        anchors_per_location([[ratio]])


@pytest.mark.parametrize("ratios", [[2, 0.5], [3, 3], [2, 3, 1 / 3], [1.5, 2 / 3]])
def test_duplicate_aspect_ratios_are_rejected(ratios):
    with pytest.raises(ValueError, match="duplicate anchors"):
        make_anchors([2], [0.2, 0.5], [ratios])
    with pytest.raises(ValueError, match="r already brings 1/r"):
        anchors_per_location([ratios])


def test_flat_aspect_ratio_list_is_rejected():
    with pytest.raises(ValueError, match=r"\[\[2\], \[2, 3\]\]"):
        make_anchors([4, 2], [0.2, 0.5, 0.8], [2, 3])
    with pytest.raises(ValueError, match="aspect ratios per feature map"):
        anchors_per_location([2.0])


def test_one_ratio_list_per_map_is_required():
    with pytest.raises(ValueError, match="aspect ratios per feature map"):
        make_anchors([4, 2], [0.2, 0.5, 0.8], [[2]])


@pytest.mark.parametrize("sizes", [38, [], ()])
def test_feature_map_sizes_must_be_a_non_empty_list(sizes):
    with pytest.raises(ValueError, match="feature map size"):
        make_anchors(sizes, [0.2, 0.5], [[2]])


@pytest.mark.parametrize("size", [0, -3, 2.5, (2, 3, 4), (2, 0), (2.0, 3)])
def test_bad_feature_map_size_is_rejected(size):
    with pytest.raises(ValueError, match="feature map size"):
        make_anchors([size], [0.2, 0.5], [[2]])
