"""Tests for ssd_lesson.data.shapes: determinism, tight boxes, the item contract, bad arguments."""

import math

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from ssd_lesson.data import shapes
from ssd_lesson.data.shapes import SHAPE_CLASSES, ShapesDataset

SIZE = 64


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset(300, image_size=SIZE, seed=7, precompute=True)


def test_item_contract(dataset):
    image, target = dataset[0]
    assert isinstance(image, tv_tensors.Image)
    assert image.dtype == torch.float32 and image.shape == (3, SIZE, SIZE)
    assert isinstance(target["boxes"], tv_tensors.BoundingBoxes)
    assert target["boxes"].format == tv_tensors.BoundingBoxFormat.XYXY
    assert tuple(target["boxes"].canvas_size) == (SIZE, SIZE)
    assert target["boxes"].dtype == torch.float32
    assert target["labels"].dtype == torch.int64
    assert len(dataset) == 300
    assert len(SHAPE_CLASSES) >= 4


def test_pixels_boxes_and_labels_in_range(dataset):
    for i in range(len(dataset)):
        image, target = dataset[i]
        boxes, labels = target["boxes"], target["labels"]
        assert 0 <= image.min() and image.max() <= 1
        assert boxes.shape == (len(labels), 4)
        assert (boxes >= 0).all() and (boxes <= SIZE).all()
        assert (boxes[:, 2:] > boxes[:, :2]).all()
        assert ((labels >= 1) & (labels <= len(SHAPE_CLASSES))).all()
        assert boxes.eq(boxes.round()).all()  # whole pixels: from the first to past the last


def test_same_seed_and_index_same_image_in_any_order():
    forward = ShapesDataset(20, seed=3)
    backward = ShapesDataset(20, seed=3)
    later = [backward[i] for i in reversed(range(20))][::-1]
    batch = forward.draw_many([5, 2, 11])
    for i in range(20):
        image, target = forward[i]
        torch.testing.assert_close(image, later[i][0], rtol=0, atol=0)
        torch.testing.assert_close(target["boxes"], later[i][1]["boxes"], rtol=0, atol=0)
        assert target["labels"].equal(later[i][1]["labels"])
    for row, i in enumerate([5, 2, 11]):  # drawn together or alone: the same picture
        torch.testing.assert_close(batch[0][row], forward[i][0].as_subclass(torch.Tensor))
        assert batch[1][row].equal(forward[i][1]["boxes"].as_subclass(torch.Tensor))
    precomputed = ShapesDataset(20, seed=3, precompute=True)
    assert precomputed[13][0].equal(forward[13][0])
    # A longer dataset with the same seed starts with the same images.
    assert ShapesDataset(50, seed=3)[19][0].equal(forward[19][0])


def test_different_seeds_or_indices_differ():
    a, b = ShapesDataset(5, seed=0), ShapesDataset(5, seed=1)
    assert not a[0][0].equal(b[0][0])
    assert not a[0][0].equal(a[1][0])


def _noise_free_single_objects(monkeypatch, n=60):
    """Images with exactly one object and no pixel noise: its pixels all have one colour."""
    monkeypatch.setattr(shapes, "NOISE_STD", 0.0)
    ds = ShapesDataset(n, seed=11, min_objects=1, max_objects=1)
    for i in range(n):
        image, target = ds[i]
        box = target["boxes"][0].long().tolist()
        x1, y1, x2, y2 = box
        centre = image[:, (y1 + y2 - 1) // 2, (x1 + x2 - 1) // 2]  # every shape covers its centre
        mask = (image == centre[:, None, None]).all(dim=0)
        yield mask, box, int(target["labels"][0])


def test_boxes_are_tight_around_the_drawn_shape(monkeypatch):
    for mask, (x1, y1, x2, y2), _ in _noise_free_single_objects(monkeypatch):
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        cols = torch.nonzero(mask.any(dim=0)).flatten()
        assert (int(cols.min()), int(rows.min())) == (x1, y1)
        assert (int(cols.max()) + 1, int(rows.max()) + 1) == (x2, y2)


def test_classes_are_their_shapes(monkeypatch):
    """How much of its box a shape fills tells the shapes apart (colours are random)."""
    expected_fill = {
        "ellipse": math.pi / 4,
        "rectangle": 1.0,
        "triangle": 0.5,
        "cross": 1 - (1 - shapes.CROSS_ARM) ** 2,
    }
    seen = set()
    for mask, (x1, y1, x2, y2), label in _noise_free_single_objects(monkeypatch, n=80):
        name = SHAPE_CLASSES[label - 1]
        fill = mask[y1:y2, x1:x2].float().mean().item()
        assert fill == pytest.approx(expected_fill[name], abs=0.12), name
        seen.add(name)
    assert seen == set(SHAPE_CLASSES)


def test_object_counts_include_zero_and_the_maximum(dataset):
    counts = [len(dataset[i][1]["labels"]) for i in range(len(dataset))]
    assert min(counts) == 0 and max(counts) == 5
    assert set(counts) == set(range(6))


def test_sizes_cover_tiny_to_large(dataset):
    boxes = torch.cat([dataset[i][1]["boxes"] for i in range(len(dataset))])
    longer = (boxes[:, 2:] - boxes[:, :2]).amax(dim=1) / SIZE  # fraction of the image side
    assert longer.min() < 0.18  # tiny: about 10 pixels, for the finest feature map
    assert longer.max() > 0.6  # large: most of the image, for the coarsest maps
    assert (longer < 0.25).float().mean() > 0.2  # and many of each, not just one outlier
    assert (longer > 0.45).float().mean() > 0.1


def test_some_objects_overlap(dataset):
    from torchvision.ops import box_iou

    overlapping = 0
    for i in range(len(dataset)):
        boxes = dataset[i][1]["boxes"]
        iou = box_iou(boxes, boxes).fill_diagonal_(0)
        overlapping += int((iou > 0).any())
    assert overlapping > 20


def test_transform_is_applied_to_image_and_boxes():
    plain = ShapesDataset(4, seed=5)
    flipped = ShapesDataset(4, seed=5, transform=v2.RandomHorizontalFlip(p=1.0))
    for i in range(4):
        (image, target), (f_image, f_target) = plain[i], flipped[i]
        assert f_image.equal(image.flip(-1))
        x1, y1, x2, y2 = target["boxes"].unbind(-1)
        expected = torch.stack((SIZE - x2, y1, SIZE - x1, y2), dim=-1)
        assert f_target["boxes"].as_subclass(torch.Tensor).equal(expected)
        assert f_target["labels"].equal(target["labels"])


def test_index_out_of_range_and_negative_index():
    ds = ShapesDataset(3)
    assert ds[-1][0].equal(ds[2][0])
    with pytest.raises(IndexError):
        ds[3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_images": -1}, "num_images"),
        ({"num_images": 2.5}, "num_images"),
        ({"image_size": 16}, "image_size"),
        ({"seed": -3}, "seed"),
        ({"min_objects": 3, "max_objects": 2}, "max_objects"),
        ({"min_size": 0.5, "max_size": 0.2}, "min_size"),
        ({"max_size": 1.5}, "max_size"),
        ({"min_size": 0.02}, "4 pixels"),
        ({"transform": "flip"}, "transform"),
        ({"min_size": "a"}, "expected min_size as a number"),
        ({"max_size": None}, "expected max_size as a number"),
        ({"min_size": float("nan")}, "min_size"),
        ({"max_objects": 1.5}, "max_objects"),
        ({"image_size": "64"}, "image_size"),
        ({"seed": True}, "seed"),
        ({"precompute": "yes"}, "precompute"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, message):
    args = {"num_images": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        ShapesDataset(**args)


def test_bad_index_is_rejected():
    with pytest.raises(ValueError, match="integer index"):
        ShapesDataset(3)[1.5]
