"""Pascal VOC: read an extracted VOC2007 (or 2012) folder as a detection dataset.

Nothing is downloaded. ``root`` is the year folder, the one that holds the three sub-folders:

    VOCdevkit/VOC2007/                  <- root
        JPEGImages/000005.jpg           one image per id
        Annotations/000005.xml          one annotation per id
        ImageSets/Main/train.txt        the ids of each split (train, val, trainval, test)

This is the layout ``torchvision.datasets.VOCDetection`` leaves after extraction; its own
``root`` is two levels higher (the folder holding ``VOCdevkit``). If you pass that folder, or
``VOCdevkit``, the error names the year folders it found below.

An item is ``(image, target)``: ``image`` a ``tv_tensors.Image`` (3, H, W) float32 in [0, 1],
``target["boxes"]`` a ``tv_tensors.BoundingBoxes`` XYXY in pixels, float32 (N, 4), and
``target["labels"]`` int64 (N,) with classes 1..20 (0 is background).

All annotations are read and checked when the dataset is built, so a broken file fails at once
with its path in the message, not in the middle of an epoch. Every problem is a ValueError naming
the file; a missing file or folder is a ``VOCFileNotFound``, both a ValueError and a
FileNotFoundError.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, read_image
from torchvision.transforms.v2 import functional as F

from ssd_lesson import checks

# The 20 Pascal VOC classes in the standard (alphabetical) order: label i + 1 is VOC_CLASSES[i].
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
# A corner at most this many pixels outside the image is a rounding slip of the annotation tool
# (a few VOC2012 boxes start at 0): it is clipped. Further out is an error.
BORDER_TOLERANCE_PX = 1.0
_CORNERS = ("xmin", "ymin", "xmax", "ymax")


class VOCFileNotFound(FileNotFoundError, ValueError):
    """A file or folder of the VOC layout is missing. Both a FileNotFoundError and, like every
    other VOC problem, a ValueError naming the file."""


class VOCDetectionFolder(Dataset):
    """The images of one VOC split with their boxes and labels.

    Args:
        root: the year folder, e.g. ``.../VOCdevkit/VOC2007`` (see the module docstring).
        image_set: the split, a file name in ``ImageSets/Main`` without ``.txt``.
        classes: the class names; name ``classes[i]`` gets label ``i + 1``. Every object's name
            must be one of them.
        transform: called as ``image, target = transform(image, target)``, e.g.
            ``ssd_augmentation(300)``.
        keep_difficult: VOC marks some objects "difficult" (tiny, hidden); the standard
            evaluation ignores them, and by default they are left out.
    """

    def __init__(
        self,
        root: str | Path,
        image_set: str = "train",
        classes: Sequence[str] = VOC_CLASSES,
        transform: Callable | None = None,
        keep_difficult: bool = False,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"expected root as a folder path, got {type(root).__name__}")
        if not isinstance(image_set, str) or not image_set:
            raise ValueError(f"expected image_set as a split name like 'train', got {image_set!r}")
        if transform is not None and not callable(transform):
            raise ValueError(f"expected transform as a callable or None, got {transform!r}")
        self.root = Path(root)
        self.image_set = image_set
        self.classes = () if isinstance(classes, str) else tuple(classes)
        names_ok = all(isinstance(c, str) for c in self.classes)
        if not self.classes or not names_ok or len(set(self.classes)) < len(self.classes):
            raise ValueError(
                f"expected classes as a non-empty list of different names, got {classes!r}"
            )
        self.transform = transform
        self.keep_difficult = checks.flag(keep_difficult, "keep_difficult")
        self.ids = _read_ids(_image_set_file(self.root, image_set))
        self._boxes: list[Tensor] = []  # per image (N, 4) float32, xyxy pixels
        self._labels: list[Tensor] = []  # per image (N,) int64, 1..C
        self._sizes: list[tuple[int, int]] = []  # per image (height, width) from the XML
        for image_id in self.ids:
            self._check_image_exists(image_id)
            boxes, labels, size = self._read_annotation(image_id)
            self._boxes.append(boxes)
            self._labels.append(labels)
            self._sizes.append(size)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        image_path = self._check_image_exists(self.ids[index])
        try:
            pixels = read_image(str(image_path), mode=ImageReadMode.RGB)  # (3, H, W) uint8
        except (RuntimeError, OSError) as err:
            raise ValueError(f"{image_path}: cannot decode the image ({err})") from err
        height, width = pixels.shape[-2:]
        if (height, width) != self._sizes[index]:
            raise ValueError(
                f"{image_path}: the image is {width} x {height} pixels but its annotation "
                f"{self._annotation_path(self.ids[index])} says {self._sizes[index][1]} x "
                f"{self._sizes[index][0]} (width x height)"
            )
        image = tv_tensors.Image(F.to_dtype(pixels, torch.float32, scale=True))
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                self._boxes[index].clone(), format="XYXY", canvas_size=(height, width)
            ),
            "labels": self._labels[index].clone(),
        }
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target

    def _image_path(self, image_id: str) -> Path:
        return self.root / "JPEGImages" / f"{image_id}.jpg"

    def _check_image_exists(self, image_id: str) -> Path:
        path = self._image_path(image_id)
        if not path.is_file():
            raise VOCFileNotFound(f"missing image for id {image_id!r}: {path}")
        return path

    def _annotation_path(self, image_id: str) -> Path:
        return self.root / "Annotations" / f"{image_id}.xml"

    def _read_annotation(self, image_id: str) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """Boxes (N, 4) xyxy pixels, labels (N,) and the image (height, width) of one XML."""
        path = self._annotation_path(image_id)
        if not path.is_file():
            raise VOCFileNotFound(f"missing annotation for id {image_id!r}: {path}")
        try:
            tree = ET.parse(path)
        except ET.ParseError as err:
            raise ValueError(f"{path}: malformed XML ({err})") from err
        height = _number(tree.getroot(), "size/height", path)
        width = _number(tree.getroot(), "size/width", path)
        if height < 1 or width < 1 or height != int(height) or width != int(width):
            raise ValueError(f"{path}: expected a positive whole <size>, got {width} x {height}")
        names, corners, difficult = [], [], []
        for k, obj in enumerate(tree.getroot().iter("object")):
            names.append((obj.findtext("name") or "").strip())
            corners.append([_number(obj, f"bndbox/{c}", path, f"object {k}") for c in _CORNERS])
            difficult.append((obj.findtext("difficult") or "0").strip() == "1")
        unknown = [(k, name) for k, name in enumerate(names) if name not in self.classes]
        if unknown:
            k, name = unknown[0]
            raise ValueError(
                f"{path}: object {k} has unknown class {name!r}; expected one of "
                f"{list(self.classes)}"
            )
        boxes = _to_pixel_xyxy(torch.tensor(corners, dtype=torch.float32).reshape(-1, 4))
        # Clip the tolerated slips (see BORDER_TOLERANCE_PX) to the image, then check.
        clipped = torch.minimum(boxes.clamp(min=0), torch.tensor([width, height, width, height]))
        _check_inside(boxes, clipped, int(height), int(width), path)
        labels = torch.tensor([self.classes.index(n) + 1 for n in names], dtype=torch.int64)
        keep = ~torch.tensor(difficult, dtype=torch.bool) | self.keep_difficult
        return clipped[keep], labels[keep], (int(height), int(width))


def _to_pixel_xyxy(corners: Tensor) -> Tensor:
    """VOC's (xmin, ymin, xmax, ymax) to ours: (N, 4) -> (N, 4).

    VOC counts pixels from 1 and includes both end pixels: xmin = 1, xmax = 3 covers the first
    three columns. Ours are 0-based edges: pixel column i spans [i, i + 1), so those three columns
    span [0, 3]. Hence x1 = xmin - 1, y1 = ymin - 1, while x2 = xmax and y2 = ymax stay.
    (Implementations that subtract 1 from all four corners make every box one pixel too small.)
    """
    return corners - torch.tensor([1.0, 1.0, 0.0, 0.0])


def _check_inside(boxes: Tensor, clipped: Tensor, height: int, width: int, path: Path) -> None:
    """Raise if a box lies outside the image (beyond the tolerance) or has no area inside it."""
    limits = torch.tensor([0.0, 0.0, width, height])
    tol = BORDER_TOLERANCE_PX
    outside = (boxes[:, :2] < -tol).any(dim=1) | (boxes[:, 2:] > limits[2:] + tol).any(dim=1)
    empty = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    bad = outside | empty
    if bad.any():
        row = int(torch.nonzero(bad)[0])
        x1, y1, x2, y2 = boxes[row].tolist()
        voc = [x1 + 1, y1 + 1, x2, y2]  # back to the file's numbers for the message
        problem = "lies outside" if outside[row] else "has no area (xmax < xmin or ymax < ymin) in"
        raise ValueError(
            f"{path}: object {row}: box (xmin, ymin, xmax, ymax) = {voc} {problem} the {width} x "
            f"{height} image (1-based pixels, 1..{width} and 1..{height})"
        )


def _number(element: ET.Element, tag: str, path: Path, where: str = "") -> float:
    text = element.findtext(tag)
    place = f"{where} " if where else ""
    if text is None:
        raise ValueError(f"{path}: {place}has no <{tag}>")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # float() also reads "nan" and "inf"
        raise ValueError(f"{path}: {place}<{tag}> is {text.strip()!r}, not a number")
    return value


def _image_set_file(root: Path, image_set: str) -> Path:
    if not root.is_dir():
        raise VOCFileNotFound(f"VOC root folder not found: {root}")
    if not (root / "ImageSets").is_dir():
        # Look one and two levels down: root may be VOCdevkit or the folder above it.
        below = [*root.glob("*/ImageSets/Main"), *root.glob("*/*/ImageSets/Main")]
        found = sorted(p.parent.parent for p in below if p.is_dir())
        hint = f"; did you mean {[str(p) for p in found]}?" if found else ""
        raise VOCFileNotFound(
            f"no ImageSets folder in {root}: expected the year folder that holds JPEGImages, "
            f"Annotations and ImageSets, such as VOCdevkit/VOC2007{hint}"
        )
    path = root / "ImageSets" / "Main" / f"{image_set}.txt"
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.txt") if "_" not in p.stem)
        raise VOCFileNotFound(f"image set {image_set!r} not found: {path}; found {splits}")
    return path


def _read_ids(path: Path) -> list[str]:
    ids = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split()
        if len(words) > 1:
            raise ValueError(f"{path}: line {number} is {line!r}; expected one image id per line")
        ids.extend(words)
    if not ids:
        raise ValueError(f"{path}: no image ids in the file")
    return ids
