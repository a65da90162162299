"""Synthetic shapes: a small detection dataset that is drawn, not downloaded.

Every image is a square canvas with a noisy, colourful background and 0 to 5 objects. An object
is one of ``SHAPE_CLASSES`` (ellipse, rectangle, triangle, cross). Colours are random per object,
so the class can only be told from the *shape*. Sizes range from tiny (a few pixels, for the
finest feature map) to more than half the image (for the coarsest), and objects may overlap a
little. The background has smooth colour gradients, pixel noise and a few distractors (soft blobs
and thin lines) that are not objects, so "anything that differs from the background" is not
enough: the detector has to learn the shapes.

Image ``i`` of a dataset with seed ``s`` depends on ``(s, i)`` only: the same picture whatever
order the images are read in, on every machine. Drawing is vectorised: each shape is a mask
computed from a grid of pixel coordinates, so thousands of images take a few seconds.

An item is ``(image, target)`` in torchvision's detection layout: ``image`` a
``tv_tensors.Image`` (3, H, W) float32 in [0, 1]; ``target["boxes"]`` a
``tv_tensors.BoundingBoxes`` in **pixels**, XYXY, tight around the drawn shape;
``target["labels"]`` int64 classes 1..C (0 is background and never appears).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from ssd_lesson import checks

# Class 1..C names; index 0 of a model's scores is background.
SHAPE_CLASSES = ("ellipse", "rectangle", "triangle", "cross")
DEFAULT_IMAGE_SIZE = 64
# Object size (the longer side of its box) as a fraction of the image side, drawn log-uniformly:
# as many tiny objects as large ones. 0.14 of 64 px is 9 px: the smallest shape still readable.
DEFAULT_MIN_SIZE = 0.14
DEFAULT_MAX_SIZE = 0.7
# Width : height of an object is drawn between 1 / MAX_STRETCH and MAX_STRETCH (log-uniformly).
# ``max_stretch`` changes it: lesson 08 draws long thin objects with ELONGATED_STRETCH.
MAX_STRETCH = 1.6
ELONGATED_STRETCH = 4.0
# A new object is placed again (up to PLACEMENT_TRIES times, then left out) if its box and an
# earlier one share more than this fraction of the smaller box: objects may touch and overlap at
# their edges, but none is hidden behind or inside another, so every object stays recognisable.
MAX_OVERLAP = 0.25
PLACEMENT_TRIES = 20
# Half the width of the cross's arms, as a fraction of the half-size of the shape.
CROSS_ARM = 0.34
# Objects are at least this far (RGB distance) from the background colour under them.
MIN_CONTRAST = 0.45
NOISE_STD = 0.04
MAX_DISTRACTORS = 3
# precompute draws this many images at a time.
PRECOMPUTE_CHUNK = 256


class ShapesDataset(Dataset):
    """``num_images`` synthetic images with ellipses, rectangles, triangles and crosses.

    Args:
        num_images: length of the dataset.
        image_size: side of the square images, in pixels (>= 32).
        seed: the dataset's seed; image i depends only on (seed, i).
        min_objects, max_objects: objects per image, drawn uniformly from this range (0 allowed).
            An object that finds no free place (see MAX_OVERLAP) is left out, so a crowded
            image may have fewer than drawn.
        min_size, max_size: object size range, fractions of the image side.
        transform: optional ``transform(image, target) -> (image, target)``, e.g. an augmentation.
        precompute: draw every image once now and keep it (faster epochs, costs memory:
            12 kB per 64 x 64 image).
        max_stretch: the longer side of an object is at most this many times its shorter side
            (>= 1; default ``MAX_STRETCH``, ``ELONGATED_STRETCH`` for long thin objects).
    """

    def __init__(
        self,
        num_images: int,
        image_size: int = DEFAULT_IMAGE_SIZE,
        seed: int = 0,
        min_objects: int = 0,
        max_objects: int = 5,
        min_size: float = DEFAULT_MIN_SIZE,
        max_size: float = DEFAULT_MAX_SIZE,
        transform=None,
        precompute: bool = False,
        max_stretch: float = MAX_STRETCH,
    ) -> None:
        num_images = checks.integer(num_images, "num_images", 0)
        image_size = checks.integer(image_size, "image_size", 32)
        seed = checks.integer(seed, "seed", 0)
        min_objects = checks.integer(min_objects, "min_objects", 0)
        max_objects = checks.integer(max_objects, "max_objects", min_objects)
        min_size = checks.number(min_size, "min_size", 0, 1, low_open=True)
        max_size = checks.number(max_size, "max_size", 0, 1, low_open=True)
        precompute = checks.flag(precompute, "precompute")
        max_stretch = checks.number(max_stretch, "max_stretch", 1, math.inf, high_open=True)
        if min_size > max_size:
            raise ValueError(
                f"expected 0 < min_size <= max_size <= 1 (fractions of the image side), got "
                f"min_size={min_size!r}, max_size={max_size!r}"
            )
        if min_size * image_size < 4:
            raise ValueError(
                f"expected objects of at least 4 pixels, got min_size={min_size} of a "
                f"{image_size}-pixel image ({min_size * image_size:.1f} pixels)"
            )
        if transform is not None and not callable(transform):
            raise ValueError(f"expected transform as a callable or None, got {transform!r}")
        self.num_images = num_images
        self.image_size = image_size
        self.seed = seed
        self.min_objects, self.max_objects = min_objects, max_objects
        self.min_size, self.max_size = float(min_size), float(max_size)
        self.max_stretch = float(max_stretch)
        self.transform = transform
        self._cache = None
        if precompute:
            self._cache = []
            for first in range(0, num_images, PRECOMPUTE_CHUNK):
                chunk = range(first, min(first + PRECOMPUTE_CHUNK, num_images))
                pixels, boxes, labels = self.draw_many(chunk)
                self._cache += list(zip(pixels, boxes, labels, strict=True))

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ValueError(f"expected an integer index, got {index!r}")
        if not -self.num_images <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        index = int(index) % self.num_images
        pixels, boxes, labels = self._cache[index] if self._cache else self.draw(index)
        size = (self.image_size, self.image_size)
        image = tv_tensors.Image(pixels)
        target = {
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=size),
            "labels": labels,
        }
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target

    def draw(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        """Image ``index`` as plain tensors: pixels (3, H, W), boxes_px (N, 4), labels (N,)."""
        pixels, boxes, labels = self.draw_many([index])
        return pixels[0], boxes[0], labels[0]

    def draw_many(self, indices) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Several images at once (faster than one by one): pixels (B, 3, H, W), and per image
        boxes_px (N_i, 4) and labels (N_i,). Image i is the same as ``draw(i)``."""
        # The random numbers are drawn with numpy, image by image, each from its own (seed,
        # index) stream; the pixels are computed with torch, for all images at once.
        scenes = [self._scene(int(i)) for i in indices]
        yy, xx = _pixel_centres(self.image_size)
        image = _backgrounds([s["background"] for s in scenes], self.image_size, yy, xx)
        # Objects, padded to max_objects per image; padding has half-size 0 and covers nothing.
        most = max(self.max_objects, 1)
        objects = torch.zeros(len(scenes), most, 8)  # label, cx, cy, half_w, half_h, r, g, b
        for b, scene in enumerate(scenes):
            objects[b, : len(scene["objects"])] = torch.from_numpy(scene["objects"])
        labels = objects[..., 0].long()  # (B, K); 0 for padding
        masks = _shape_masks(labels, objects[..., 1:3], objects[..., 3:5], yy, xx)  # (B,K,H,W)
        colours = _object_colours(image, objects[..., 1:3], objects[..., 5:8])  # (B, K, 3)
        for k in range(most):  # objects are sorted largest first: later ones are drawn on top
            image = torch.where(masks[:, k, None], colours[:, k, :, None, None], image)
        noise = torch.stack([torch.randn(image.shape[1:], generator=s["noise"]) for s in scenes])
        image = (image + NOISE_STD * noise).clamp(0, 1)
        boxes, label_list = [], []
        for b in range(len(scenes)):
            keep = masks[b].flatten(1).any(dim=1) & (labels[b] > 0)
            boxes.append(_mask_boxes(masks[b, keep]))
            label_list.append(labels[b, keep])
        return image, boxes, label_list

    def _scene(self, index: int) -> dict:
        """The random numbers of image ``index``: background, objects and a noise generator."""
        rng = np.random.default_rng([self.seed, index])
        n = int(rng.integers(self.min_objects, self.max_objects + 1))
        background = _background_numbers(rng)
        centres, half_sizes = _place_objects(
            n, self.min_size, self.max_size, rng, self.max_stretch
        )  # (M, 2) each
        labels = rng.integers(1, len(SHAPE_CLASSES) + 1, n)[: len(centres)]
        colours = rng.random((n, 3))[: len(centres)]
        # Large objects first, so a small object on top of a large one is never hidden.
        order = np.argsort(-half_sizes.max(axis=1), kind="stable")
        objects = np.concatenate((labels[:, None], centres, half_sizes, colours), axis=1)[order]
        noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
        return {"background": background, "objects": objects.astype(np.float32), "noise": noise}


def _pixel_centres(size: int) -> tuple[Tensor, Tensor]:
    """Centres of the pixels as fractions of the image: y of shape (H, 1), x of shape (1, W).

    Kept apart rather than as full (H, W) grids: most formulas below are a sum of an x part
    and a y part, and broadcasting builds the full grid only at the last step.
    """
    c = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    return c[:, None], c[None, :]


def _background_numbers(rng: np.random.Generator) -> np.ndarray:
    """One image's background, as numbers in [0, 1): a (1 + 2 * MAX_DISTRACTORS, 8) array.

    Row 0: gradient (angle, start r g b, end r g b). Rows 1..MAX_DISTRACTORS: blobs (x, y,
    radius, strength, r g b, used). The last MAX_DISTRACTORS rows: lines (x, y, angle, r g b,
    unused, used). Unused distractors have used = 0.
    """
    numbers = rng.random((1 + 2 * MAX_DISTRACTORS, 8), dtype=np.float32)
    num_blobs, num_lines = rng.integers(0, MAX_DISTRACTORS + 1, 2)
    numbers[1:, 7] = 0
    numbers[1 : 1 + num_blobs, 7] = 1
    numbers[1 + MAX_DISTRACTORS : 1 + MAX_DISTRACTORS + num_lines, 7] = 1
    return numbers


def _backgrounds(numbers: list[np.ndarray], size: int, yy: Tensor, xx: Tensor) -> Tensor:
    """Smooth two-colour gradients, a few soft blobs and thin lines: (B, 3, H, W) in [0, 1]."""
    p = torch.from_numpy(np.stack(numbers))[..., None, None]  # (B, rows, 8, 1, 1)
    gradient, blobs = p[:, 0], p[:, 1 : 1 + MAX_DISTRACTORS]
    lines = p[:, 1 + MAX_DISTRACTORS :]
    # 1) Gradient between two random colours along a random direction.
    angle = 2 * math.pi * gradient[:, 0]  # (B, 1, 1)
    along = (xx - 0.5) * torch.cos(angle) + (yy - 0.5) * torch.sin(angle)  # (B, H, W)
    t = ((along / math.sqrt(0.5) + 1) / 2)[:, None]  # (B, 1, H, W)
    image = gradient[:, 1:4] + (gradient[:, 4:7] - gradient[:, 1:4]) * t  # (B, 3, H, W)
    # 2) Distractors: soft round blobs (no sharp edges, unlike the objects) and thin lines.
    radius = 0.05 + 0.2 * blobs[:, :, 2]  # (B, D, 1, 1)
    dist2 = (xx - blobs[:, :, 0]) ** 2 + (yy - blobs[:, :, 1]) ** 2  # (B, D, H, W)
    weight = torch.exp(-dist2 / (2 * radius**2)) * 0.8 * blobs[:, :, 3] * blobs[:, :, 7]
    normal = math.pi * lines[:, :, 2]
    distance = (xx - lines[:, :, 0]) * torch.cos(normal) + (yy - lines[:, :, 1]) * torch.sin(normal)
    on_line = (distance.abs() < 0.6 / size) & (lines[:, :, 7] > 0)  # about one pixel wide
    for k in range(MAX_DISTRACTORS):
        image = image + weight[:, k, None] * (blobs[:, k, 4:7] - image)
    for k in range(MAX_DISTRACTORS):
        image = torch.where(on_line[:, k, None], lines[:, k, 3:6], image)
    return image


def _place_objects(
    n: int, min_size: float, max_size: float, rng, max_stretch: float = MAX_STRETCH
) -> tuple[np.ndarray, ...]:
    """Centres and half-sizes (fractions, (M, 2) float32 each) of up to n boxes in the image.

    Each box is drawn again while it overlaps an earlier one by more than MAX_OVERLAP; an object
    that finds no place in PLACEMENT_TRIES tries is left out (so M <= n).
    """
    tries = (n, PLACEMENT_TRIES)
    size = np.exp(rng.uniform(math.log(min_size), math.log(max_size), tries))
    stretch = np.exp(rng.uniform(-1, 1, tries) * math.log(max_stretch))
    # The longer side is `size`; the other is shorter by the stretch factor.
    w = np.where(stretch >= 1, size, size * stretch)
    h = np.where(stretch >= 1, size / stretch, size)
    half = np.stack((w, h), axis=-1) / 2  # (N, T, 2)
    centre = half + (1 - 2 * half) * rng.random((n, PLACEMENT_TRIES, 2))  # (N, T, 2), inside
    boxes = np.concatenate((centre - half, centre + half), axis=-1)  # (N, T, 4)
    placed: list[tuple[int, int]] = []  # (object, try) of the objects placed so far
    for i in range(n):  # n <= max_objects
        if placed:
            earlier = boxes[tuple(np.array(placed).T)]  # (P, 4)
            worst = _overlap(boxes[i], earlier).max(axis=1)  # (T,)
            fits = np.flatnonzero(worst <= MAX_OVERLAP)
        else:
            fits = [0]
        if len(fits):
            placed.append((i, int(fits[0])))
    pick = tuple(np.array(placed, dtype=np.int64).reshape(-1, 2).T)
    return centre[pick].astype(np.float32), half[pick].astype(np.float32)


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shared area over the smaller box's area, xyxy boxes (N, 4) x (M, 4) -> (N, M) in [0, 1]."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(min=0).prod(axis=-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=-1)
    return inter / np.minimum(area_a[:, None], area_b[None, :])


def _shape_masks(labels: Tensor, centres: Tensor, half_sizes: Tensor, yy, xx) -> Tensor:
    """Which pixels each shape covers: labels (B, K), centres and half-sizes (B, K, 2) ->
    (B, K, H, W) bool. Label 0 (padding) covers nothing.

    Each pixel is written in the shape's own coordinates u, v in [-1, 1] (its box), where the
    four shapes have simple formulas.
    """
    half = half_sizes.clamp(min=1e-6)[..., None, None]  # (B, K, 2, 1, 1)
    u = (xx - centres[..., 0, None, None]) / half[..., 0, :, :]  # (B, K, H, W)
    v = (yy - centres[..., 1, None, None]) / half[..., 1, :, :]
    inside_box = (u.abs() <= 1) & (v.abs() <= 1)
    ellipse = u**2 + v**2 <= 1
    triangle = inside_box & (u.abs() <= (v + 1) / 2)  # apex at the top, base at the bottom
    cross = inside_box & ((u.abs() <= CROSS_ARM) | (v.abs() <= CROSS_ARM))
    label = labels[..., None, None]  # (B, K, 1, 1)
    masks = torch.zeros_like(inside_box)
    for class_index, shape in enumerate((ellipse, inside_box, triangle, cross), start=1):
        masks = torch.where(label == class_index, shape, masks)
    return masks


def _object_colours(image: Tensor, centres: Tensor, colours: Tensor) -> Tensor:
    """Random colours (B, K, 3), each pushed away from the background at its object's centre."""
    size = image.shape[-1]
    col = (centres[..., 0] * size).long().clamp(0, size - 1)  # (B, K)
    row = (centres[..., 1] * size).long().clamp(0, size - 1)
    batch = torch.arange(image.shape[0])[:, None]
    under = image.permute(0, 2, 3, 1)[batch, row, col]  # (B, K, 3)
    too_close = (colours - under).norm(dim=-1, keepdim=True) < MIN_CONTRAST
    # Too close: move the colour most of the way to the RGB corner farthest from the background
    # (each channel 0 or 1), at least 0.5 * 0.75 * sqrt(3) = 0.65 away from it.
    far_corner = (under < 0.5).float()
    return torch.where(too_close, far_corner + 0.25 * (colours - far_corner), colours)


def _mask_boxes(masks: Tensor) -> Tensor:
    """Tight xyxy pixel boxes of masks (N, H, W): from the first to past the last covered pixel."""
    if masks.shape[0] == 0:
        return torch.zeros(0, 4)
    size = masks.shape[-1]
    index = torch.arange(size)
    cols, rows = masks.any(dim=1), masks.any(dim=2)  # (N, W), (N, H)
    x1 = torch.where(cols, index, size).amin(dim=1)
    x2 = torch.where(cols, index, -1).amax(dim=1) + 1
    y1 = torch.where(rows, index, size).amin(dim=1)
    y2 = torch.where(rows, index, -1).amax(dim=1) + 1
    return torch.stack((x1, y1, x2, y2), dim=1).float()
