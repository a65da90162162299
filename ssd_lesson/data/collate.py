"""Collate: turn a list of dataset items into one batch for the network and the loss.

A ``DataLoader`` hands ``detection_collate`` a list of ``(image, target)`` items (the format of
every ``ssd_lesson.data`` dataset). The images can be stacked into one tensor because they all
have the same size, but each image has its own number of objects, so boxes and labels stay lists.
Boxes leave here as xyxy **fractions** of the image, the package's convention, ready for
``ssd_lesson.encoding.build_targets(anchors_xyxy, batch.boxes, batch.labels)``.

    loader = DataLoader(dataset, batch_size=32, shuffle=True, collate_fn=detection_collate)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ssd_lesson import checks


class Batch(NamedTuple):
    """B images of one size and their objects: N_i boxes and labels for image i."""

    images: Tensor  # (B, 3, H, W) float32 in [0, 1]
    boxes: list[Tensor]  # B tensors (N_i, 4): xyxy, fractions of the image
    labels: list[Tensor]  # B tensors (N_i,) int64: classes 1..C


def detection_collate(batch) -> Batch:
    """Stack the images and turn each image's pixel boxes into fractions of the image.

    Args:
        batch: a non-empty list of ``(image, target)``: image (3, H, W) float, the same H and W
            for all; ``target["boxes"]`` (N, 4) pixels, a ``tv_tensors.BoundingBoxes`` (any
            format, converted to XYXY) or a plain tensor in XYXY; ``target["labels"]`` (N,)
            integers 1..C. N may be 0.

    Returns:
        Batch(images (B, 3, H, W) float32, boxes: list of (N_i, 4) xyxy fractions,
        labels: list of (N_i,) int64).
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"expected a non-empty list of (image, target) items, got {batch!r}")
    images = [_check_image(item, i) for i, item in enumerate(batch)]
    sizes = sorted({tuple(image.shape[-2:]) for image in images})
    if len(sizes) > 1:
        raise ValueError(
            f"expected images of one size to stack into a batch, got sizes (H, W) {sizes}; resize "
            "them to one size first, e.g. with ssd_augmentation(image_size) as the transform"
        )
    height, width = sizes[0]
    boxes, labels = [], []
    for i, (_, target) in enumerate(batch):
        boxes_px, image_labels = _boxes_and_labels(target, i, (height, width))
        scale = boxes_px.new_tensor([width, height, width, height])
        fractions = checks.boxes(
            boxes_px / scale,
            f"boxes of image {i} (after dividing by its width and height)",
            positive_area=True,
            margin=checks.GROUND_TRUTH_MARGIN,
        )
        boxes.append(fractions)
        labels.append(image_labels)
    return Batch(torch.stack(images), boxes, labels)


def _check_image(item, i: int) -> Tensor:
    if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], dict)):
        raise ValueError(f"expected item {i} as a pair (image, target dict), got {type(item)}")
    image = item[0]
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"expected image {i} as a tensor of shape (3, H, W), got {shape}")
    if image.dtype != torch.float32:
        raise ValueError(
            f"expected image {i} as float32 in [0, 1], got {image.dtype}; add "
            "v2.ToDtype(torch.float32, scale=True) to the transform"
        )
    return image.as_subclass(Tensor)


def _boxes_and_labels(target: dict, i: int, canvas: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Image i's boxes as a plain (N, 4) float32 tensor of xyxy pixels, and labels (N,) int64."""
    if "boxes" not in target or "labels" not in target:
        raise ValueError(f"expected target {i} with keys 'boxes' and 'labels', got {list(target)}")
    boxes = target["boxes"]
    if isinstance(boxes, tv_tensors.BoundingBoxes):
        if tuple(boxes.canvas_size) != canvas:
            raise ValueError(
                f"expected the boxes of image {i} on its canvas {canvas} (H, W), got canvas_size "
                f"{tuple(boxes.canvas_size)}; was the image resized without its boxes?"
            )
        boxes = F.convert_bounding_box_format(boxes, new_format=tv_tensors.BoundingBoxFormat.XYXY)
    boxes = torch.as_tensor(boxes).as_subclass(Tensor).float()
    labels = torch.as_tensor(target["labels"]).as_subclass(Tensor)
    if boxes.numel() == 0:  # "no objects", however it was written: [], (0,), (0, 4)
        boxes = boxes.reshape(0, 4)
    if labels.numel() == 0:
        labels = labels.reshape(0).long()  # torch.as_tensor([]) is float: no labels, any dtype
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"expected boxes of image {i} of shape (N, 4), got {tuple(boxes.shape)}")
    if labels.ndim != 1:
        raise ValueError(f"expected labels of image {i} of shape (N,), got {tuple(labels.shape)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"expected integer labels for image {i}, got dtype {labels.dtype}")
    if labels.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"expected one label per box in image {i}, got {boxes.shape[0]} boxes and "
            f"{labels.shape[0]} labels"
        )
    if (labels < 1).any():
        raise ValueError(
            f"expected classes 1..C in image {i} (0 is background), got {labels.tolist()}"
        )
    return boxes, labels.long()
