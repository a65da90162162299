"""Tests for ssd_lesson.data.augment: sizes, boxes inside, labels aligned, flip, seeds, no boxes."""

import re

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ssd_lesson.data.augment import IMAGENET_MEAN, MIN_BOX_SIZE, ssd_augmentation

SEEDS = range(30)
# Only one random step at a time: every other probability 0 and no crop.
NOTHING_RANDOM = dict(photometric_p=0.0, zoom_out_p=0.0, crop=False, flip_p=0.0)


def item(image, boxes, labels):
    """An (image, target) pair in the ssd_lesson.data format; boxes are xyxy pixels."""
    image = tv_tensors.Image(image)
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    target = {
        "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=image.shape[-2:]),
        "labels": torch.as_tensor(labels, dtype=torch.int64),
    }
    return image, target


def random_item(seed, height=50, width=70):
    gen = torch.Generator().manual_seed(seed)
    boxes = [[5, 5, 25, 30], [30, 10, 60, 45], [12, 35, 20, 46]]
    return item(torch.rand(3, height, width, generator=gen), boxes, [3, 1, 2])


def coloured_item():
    """Black image with a solid red (class 1), green (2) and blue (3) rectangle."""
    image = torch.zeros(3, 60, 80)
    boxes = [[4, 6, 30, 34], [36, 4, 76, 24], [40, 30, 70, 56]]
    for channel, (x1, y1, x2, y2) in enumerate(boxes):
        image[channel, y1:y2, x1:x2] = 1.0
    return item(image, boxes, [1, 2, 3])


def check_output(image, target, size, min_box_size=MIN_BOX_SIZE):
    """What every output must satisfy; returns boxes and labels as plain tensors."""
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32
    assert image.shape == (3, *size)
    # Resize's arithmetic may overshoot 1 by a rounding error (2.4e-7 seen): allow 1e-6.
    assert torch.isfinite(image).all() and image.min() >= 0 and image.max() <= 1 + 1e-6
    boxes, labels = target["boxes"], target["labels"]
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and tuple(boxes.canvas_size) == size
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4 and torch.isfinite(boxes).all()
    assert labels.dtype == torch.int64 and labels.shape == (boxes.shape[0],)
    height, width = size
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all()
    assert (boxes[:, 3] <= height).all()
    assert (boxes[:, 2:] - boxes[:, :2] >= min_box_size).all()
    return boxes.as_subclass(torch.Tensor), labels


# --- enabled=False: resize and clean-up only -----------------------------------------------------


def test_disabled_is_the_identity_on_a_correctly_sized_image():
    image, target = random_item(0, height=48, width=64)
    out_image, out_target = ssd_augmentation((48, 64), enabled=False)(image, target)
    assert torch.equal(out_image, image)
    assert torch.equal(out_target["boxes"], target["boxes"])
    assert torch.equal(out_target["labels"], target["labels"])
    check_output(out_image, out_target, (48, 64))


def test_disabled_resizes_the_boxes_by_hand():
    # A 20 x 40 (H x W) image to 40 x 40: y doubles, x stays.
    image, target = item(torch.rand(3, 20, 40), [[4, 3, 12, 10]], [5])
    out_image, out_target = ssd_augmentation(40, enabled=False)(image, target)
    boxes, labels = check_output(out_image, out_target, (40, 40))
    assert torch.equal(boxes, torch.tensor([[4.0, 6.0, 12.0, 20.0]]))
    assert labels.tolist() == [5]


def test_disabled_drops_thin_boxes_with_their_labels_and_clamps_to_the_image():
    boxes = [
        [2, 2, 10, 10],
        [20, 5, 21, 15],
        [-3, 20, 12, 40],
    ]  # a 1-pixel-wide box; one sticks out
    image, target = item(torch.rand(3, 32, 32), boxes, [1, 2, 3])
    out_image, out_target = ssd_augmentation(32, enabled=False)(image, target)
    boxes, labels = check_output(out_image, out_target, (32, 32))
    assert torch.equal(boxes, torch.tensor([[2.0, 2, 10, 10], [0, 20, 12, 32]]))
    assert labels.tolist() == [1, 3]
    # With min_box_size=1 the thin box stays.
    _, kept = ssd_augmentation(32, enabled=False, min_box_size=1)(image, target)
    assert kept["labels"].tolist() == [1, 2, 3]


def test_uint8_images_become_fractions():
    pixel = torch.tensor([0, 51, 255], dtype=torch.uint8)  # R, G, B
    image, target = item(pixel[:, None, None].expand(3, 2, 2), [], [])
    out_image, _ = ssd_augmentation(2, enabled=False)(image, target)
    assert out_image.dtype == torch.float32
    torch.testing.assert_close(out_image[:, 0, 0], torch.tensor([0.0, 0.2, 1.0]))


# --- one random step at a time, checked by hand -----------------------------------------------


def test_flip_mirrors_a_box_exactly():
    image, target = item(torch.rand(3, 40, 64), [[10, 5, 30, 25], [0, 0, 64, 40]], [4, 7])
    only_flip = ssd_augmentation((40, 64), **{**NOTHING_RANDOM, "flip_p": 1.0})
    out_image, out_target = only_flip(image, target)
    # x -> 64 - x, so x1 = 64 - 30 = 34 and x2 = 64 - 10 = 54; y does not change.
    boxes, labels = check_output(out_image, out_target, (40, 64))
    assert torch.equal(boxes, torch.tensor([[34.0, 5, 54, 25], [0, 0, 64, 40]]))
    assert labels.tolist() == [4, 7]
    assert torch.equal(out_image, image.flip(-1))
    # The same as torchvision's flip on our format.
    expected_image, expected_target = v2.RandomHorizontalFlip(p=1.0)(image, target)
    assert torch.equal(out_target["boxes"], expected_target["boxes"])
    assert torch.equal(out_image, expected_image)


def test_zoom_out_is_capped_and_fills_with_the_mean_colour():
    # A white image: after zooming out, the canvas around it is the fill colour.
    image, target = item(torch.ones(3, 40, 40), [[0, 0, 40, 40]], [1])
    fill = (0.5, 0.25, 0.0)
    only_zoom = ssd_augmentation(
        40, fill=fill, max_zoom_out=2.0, **{**NOTHING_RANDOM, "zoom_out_p": 1.0}
    )
    sides = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        out_image, out_target = only_zoom(image, target)
        boxes, _ = check_output(out_image, out_target, (40, 40))
        sides.append((boxes[0, 2] - boxes[0, 0]).item())
        corner_pixels = out_image[:, [0, 0, -1, -1], [0, -1, 0, -1]].T  # (4, 3)
        is_fill = (corner_pixels - torch.tensor(fill)).abs().amax(dim=1) < 1e-5
        assert is_fill.any() or sides[-1] > 38  # some corner is canvas unless barely zoomed
    # The image (and its box) shrinks to between 1/2 and all of the side, never less.
    assert min(sides) >= 20 - 1 and max(sides) <= 40
    assert min(sides) < 26  # and the zoom really went near the cap


def test_default_fill_is_the_imagenet_mean():
    assert IMAGENET_MEAN == (0.485, 0.456, 0.406)
    zoom = [t for t in ssd_augmentation(64).transforms if isinstance(t, v2.RandomZoomOut)]
    assert len(zoom) == 1 and tuple(zoom[0].fill) == IMAGENET_MEAN
    assert tuple(zoom[0].side_range) == (1.0, 2.0)


def test_disabled_has_no_random_step():
    steps = [type(t) for t in ssd_augmentation(64, enabled=False).transforms]
    assert steps == [v2.ToDtype, v2.Resize, v2.ClampBoundingBoxes, v2.SanitizeBoundingBoxes]
    steps = [type(t) for t in ssd_augmentation(64).transforms]
    assert steps[1:5] == [
        v2.RandomPhotometricDistort,
        v2.RandomZoomOut,
        v2.RandomIoUCrop,
        v2.RandomHorizontalFlip,
    ]


# --- the whole pipeline ------------------------------------------------------------------------


def test_outputs_have_the_size_and_boxes_inside_the_image():
    augment, resize_only = ssd_augmentation((48, 64)), ssd_augmentation((48, 64), enabled=False)
    torch.manual_seed(0)
    changed = 0
    for seed in SEEDS:
        image, target = random_item(seed)  # 50 x 70, resized to 48 x 64
        out_image, out_target = augment(image, target)
        boxes, labels = check_output(out_image, out_target, (48, 64))
        assert set(labels.tolist()) <= {1, 2, 3}
        changed += not torch.equal(out_target["boxes"], resize_only(image, target)[1]["boxes"])
    assert changed > len(SEEDS) // 2  # the random steps really moved the boxes


def test_labels_stay_with_their_boxes():
    # Photometric changes would recolour the objects (even swap channels): off for this test.
    augment = ssd_augmentation(48, photometric_p=0.0, min_box_size=4)
    image, target = coloured_item()
    torch.manual_seed(1)
    seen = 0
    for _ in SEEDS:
        out_image, out_target = augment(image, target)
        boxes, labels = check_output(out_image, out_target, (48, 48), min_box_size=4)
        # Every box, however cropped, is part of its solid rectangle: its centre pixel has the
        # colour of its class (red = 1, green = 2, blue = 3).
        centres = ((boxes[:, :2] + boxes[:, 2:]) / 2).long()  # (N, 2) x, y
        colours = out_image[:, centres[:, 1], centres[:, 0]].T  # (N, 3)
        assert torch.equal(colours.argmax(dim=1) + 1, labels)
        assert (colours.amax(dim=1) > 0.5).all()
        seen += labels.numel()
    assert seen > len(SEEDS)


def test_seeded_runs_repeat():
    augment = ssd_augmentation(40)

    def run(seed):
        torch.manual_seed(seed)
        return [augment(*random_item(i)) for i in range(5)]

    first, again, other = run(3), run(3), run(4)
    for (image1, target1), (image2, target2) in zip(first, again, strict=True):
        assert torch.equal(image1, image2)
        assert torch.equal(target1["boxes"], target2["boxes"])
        assert torch.equal(target1["labels"], target2["labels"])
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_images_without_boxes_pass_through():
    image, target = item(torch.rand(3, 30, 40), [], [])
    augment = ssd_augmentation((32, 32))
    torch.manual_seed(0)
    for _ in range(10):
        out_image, out_target = augment(image, target)
        boxes, labels = check_output(out_image, out_target, (32, 32))
        assert boxes.shape == (0, 4) and labels.shape == (0,)
    # With no box to aim at, RandomIoUCrop keeps the whole image: only the crop on, the image
    # comes back unchanged.
    only_crop = ssd_augmentation((30, 40), **{**NOTHING_RANDOM, "crop": True})
    for seed in range(5):
        torch.manual_seed(seed)
        out_image, _ = only_crop(image, target)
        assert torch.equal(out_image, image)


def test_crop_only_crops():
    # Only the crop on: the output is a resized piece of the input; with seeds it really crops.
    image, target = coloured_item()
    only_crop = ssd_augmentation((60, 80), **{**NOTHING_RANDOM, "crop": True})
    cropped = 0
    for seed in SEEDS:
        torch.manual_seed(seed)
        out_image, out_target = only_crop(image, target)
        check_output(out_image, out_target, (60, 80))
        cropped += not torch.equal(out_image, image)
    assert cropped > len(SEEDS) // 2


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image_size=0), "image_size"),
        (dict(image_size=(32, 32, 3)), "image_size"),
        (dict(image_size=True), "image_size"),
        (dict(image_size="64"), "image_size"),
        (dict(image_size=32.0), "image_size"),
        (dict(image_size=32, fill=(0.5, 0.5)), "fill"),
        (dict(image_size=32, fill=(124, 117, 104)), "fill"),
        (dict(image_size=32, fill="grey"), "fill"),
        (dict(image_size=32, max_zoom_out=0.5), "max_zoom_out"),
        (dict(image_size=32, min_box_size=0.5), "min_box_size"),
        (dict(image_size=32, photometric_p=1.5), "photometric_p"),
        (dict(image_size=32, zoom_out_p=-0.1), "zoom_out_p"),
        (dict(image_size=32, flip_p="0.5"), "flip_p"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ssd_augmentation(**kwargs)
