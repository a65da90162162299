"""Tests for ssd_lesson.data.collate: a hand-built batch, DataLoader, and build_targets."""

import re

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from ssd_lesson.anchors import make_anchors
from ssd_lesson.data.augment import ssd_augmentation
from ssd_lesson.data.collate import Batch, detection_collate
from ssd_lesson.encoding import build_targets


def item(boxes, labels, height=4, width=8, fill=0.0, box_format="XYXY"):
    """An (image, target) pair: a one-value image, boxes in pixels as a BoundingBoxes."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    target = {
        "boxes": tv_tensors.BoundingBoxes(boxes, format=box_format, canvas_size=(height, width)),
        "labels": torch.as_tensor(labels, dtype=torch.int64),
    }
    return tv_tensors.Image(torch.full((3, height, width), fill)), target


# Image 0: 8 x 4 pixels (W x H), a box over the left half and one over the bottom-right quarter.
# Image 1: no objects.
HAND_BATCH = [
    item([[0, 0, 4, 4], [4, 2, 8, 4]], [3, 1], fill=0.25),
    item([], [], fill=0.75),
]


def test_hand_built_batch():
    batch = detection_collate(HAND_BATCH)
    assert isinstance(batch, Batch)
    assert batch.images.shape == (2, 3, 4, 8) and batch.images.dtype == torch.float32
    assert type(batch.images) is torch.Tensor  # a plain tensor, ready for the network
    assert batch.images[0].unique().tolist() == [0.25] and batch.images[1].unique().tolist() == [
        0.75
    ]
    # Pixels divided by (W, H, W, H) = (8, 4, 8, 4).
    assert torch.equal(batch.boxes[0], torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]))
    assert batch.labels[0].tolist() == [3, 1] and batch.labels[0].dtype == torch.int64
    # No objects: (0, 4) and (0,).
    assert batch.boxes[1].shape == (0, 4) and batch.boxes[1].dtype == torch.float32
    assert batch.labels[1].shape == (0,) and batch.labels[1].dtype == torch.int64
    assert all(type(b) is torch.Tensor for b in batch.boxes)
    # Even when torchvision is told to keep its tensor types through torch operations.
    with tv_tensors.set_return_type("TVTensor"):
        assert type(detection_collate(HAND_BATCH).images) is torch.Tensor


def test_other_box_formats_and_plain_tensors():
    # (cx, cy, w, h) = (2, 2, 4, 4) is the xyxy box (0, 0, 4, 4).
    cxcywh = item([[2, 2, 4, 4]], [5], box_format="CXCYWH")
    image, target = item([[4, 2, 8, 4]], [6])
    plain = (image.as_subclass(torch.Tensor), {"boxes": [[4, 2, 8, 4]], "labels": [6]})
    batch = detection_collate([cxcywh, plain, (image, target)])
    assert torch.equal(batch.boxes[0], torch.tensor([[0.0, 0.0, 0.5, 1.0]]))
    assert torch.equal(batch.boxes[1], torch.tensor([[0.5, 0.5, 1.0, 1.0]]))
    assert torch.equal(batch.boxes[1], batch.boxes[2])
    assert [lab.tolist() for lab in batch.labels] == [[5], [6], [6]]
    # Empty targets written any way.
    batch = detection_collate([(image, {"boxes": [], "labels": []})])
    assert batch.boxes[0].shape == (0, 4) and batch.labels[0].shape == (0,)


def test_build_targets_takes_the_batch_as_it_is():
    # Two 1 x 1 maps: anchor 0 is a centred square of side 0.5, anchor 1 covers the whole image.
    anchors_xyxy = make_anchors([1], [0.5, 2.0], [[]])  # (2, 4)
    batch = detection_collate(
        [
            item([[2, 1, 6, 3]], [4]),  # the centre square: anchor 0's object
            item([], []),
            item([[0, 0, 8, 4], [2, 1, 6, 3]], [2, 7]),
        ]
    )
    targets = build_targets(anchors_xyxy, batch.boxes, batch.labels)
    assert targets.labels.tolist() == [[4, 0], [0, 0], [7, 2]]
    assert targets.offsets.shape == (3, 2, 4)
    # Exactly what the same boxes give when written as fractions by hand.
    by_hand = build_targets(
        anchors_xyxy,
        [
            torch.tensor([[0.25, 0.25, 0.75, 0.75]]),
            torch.zeros(0, 4),
            torch.tensor([[0, 0, 1, 1.0], [0.25, 0.25, 0.75, 0.75]]),
        ],
        [torch.tensor([4]), torch.zeros(0, dtype=torch.int64), torch.tensor([2, 7])],
    )
    for ours, expected in zip(targets, by_hand, strict=True):
        torch.testing.assert_close(ours, expected)


class ListDataset(torch.utils.data.Dataset):
    """Items of different sizes, made uniform by the transform."""

    def __init__(self, transform):
        self.items = [
            item([[1, 1, 5, 3]], [1], 4, 8),
            item([], [], 10, 6),
            item([[0, 0, 12, 12]], [2], 12, 12),
        ]
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.transform(*self.items[i])


def test_works_in_a_dataloader_after_ssd_augmentation():
    torch.manual_seed(0)
    loader = DataLoader(
        ListDataset(ssd_augmentation(16)), batch_size=3, collate_fn=detection_collate
    )
    batch = next(iter(loader))
    assert batch.images.shape == (3, 3, 16, 16)
    assert len(batch.boxes) == len(batch.labels) == 3
    for boxes, labels in zip(batch.boxes, batch.labels, strict=True):
        assert boxes.shape == (labels.shape[0], 4)
        assert (boxes >= 0).all() and (boxes <= 1).all()
    loader = DataLoader(
        ListDataset(ssd_augmentation(16, enabled=False)), batch_size=3, collate_fn=detection_collate
    )
    batch = next(iter(loader))
    # Resized without randomness: the fractions do not change. 8 x 4 image: (1/8, 1/4, 5/8, 3/4).
    assert torch.equal(batch.boxes[0], torch.tensor([[0.125, 0.25, 0.625, 0.75]]))
    assert torch.equal(batch.boxes[2], torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    targets = build_targets(make_anchors([2], [0.5, 0.7], [[2]]), batch.boxes, batch.labels)
    assert targets.labels.shape == (3, 2 * 2 * 4) and targets.labels[1].eq(0).all()


# --- bad batches ---------------------------------------------------------------------------------


def test_images_of_different_sizes_are_rejected():
    message = "got sizes (H, W) [(4, 8), (6, 8)]"
    with pytest.raises(ValueError, match=re.escape(message)):
        detection_collate([item([], []), item([], [], height=6)])


def bad_target(**changes):
    image, target = item([[0, 0, 4, 4]], [1])
    return [(image, {**target, **changes})]


@pytest.mark.parametrize(
    "batch, message",
    [
        ([], "non-empty list of (image, target)"),
        ("image", "non-empty list of (image, target)"),
        ([(torch.zeros(3, 4, 8),)], "item 0 as a pair (image, target dict)"),
        ([(torch.zeros(3, 4, 8), [])], "item 0 as a pair (image, target dict)"),
        ([(torch.zeros(4, 8), {})], "image 0 as a tensor of shape (3, H, W), got (4, 8)"),
        ([(torch.zeros(1, 4, 8), {})], "image 0 as a tensor of shape (3, H, W), got (1, 4, 8)"),
        (
            [(torch.zeros(3, 4, 8, dtype=torch.uint8), {})],
            "float32 in [0, 1], got torch.uint8",
        ),
        ([(torch.zeros(3, 4, 8), {"boxes": []})], "keys 'boxes' and 'labels'"),
        (
            bad_target(labels=torch.tensor([1, 2])),
            "got 1 boxes and 2 labels",
        ),
        (
            bad_target(labels=torch.tensor([0])),
            "classes 1..C in image 0",
        ),
        (
            bad_target(labels=torch.tensor([1.0])),
            "integer labels for image 0",
        ),
        (bad_target(labels=torch.tensor([[1]])), "labels of image 0 of shape (N,), got (1, 1)"),
        (bad_target(boxes=torch.zeros(2, 6)), "boxes of image 0 of shape (N, 4), got (2, 6)"),
        (
            bad_target(
                boxes=tv_tensors.BoundingBoxes([[0, 0, 4, 4]], format="XYXY", canvas_size=(8, 8))
            ),
            "got canvas_size (8, 8)",
        ),
        (
            bad_target(boxes=torch.tensor([[0.0, 0, 9, 4]])),
            "boxes of image 0 (after dividing by its width",
        ),
        (bad_target(boxes=torch.tensor([[2.0, 0, 2, 4]])), "positive width and height"),
        (bad_target(boxes=torch.tensor([[0.0, 0, float("nan"), 4]])), "finite"),
    ],
)
def test_bad_batches_are_rejected(batch, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        detection_collate(batch)
