"""Augmentation: SSD's random zoom-out, crop, flip and colour changes, from torchvision.

The paper's ablation credits crop, flip and colour changes with +8.8 mAP; zoom-out (its section
3.6) adds 2-3 more with longer training. Every step here is a ready-made
``torchvision.transforms.v2`` transform; ``ssd_augmentation`` only chooses them, orders them and
names their settings. It works on the item format of every ``ssd_lesson.data`` dataset:
``image`` a ``tv_tensors.Image`` (3, H, W) float32 in [0, 1] and ``target`` a dict with
``"boxes"`` (``tv_tensors.BoundingBoxes``, XYXY pixels) and ``"labels"`` (int64, classes 1..C).
v2 transforms move the boxes with the image, so a flip flips the boxes too.

The steps, in the paper's order (``enabled=True``):

1. ``ToDtype(float32, scale=True)``: uint8 images become floats in [0, 1]; float images pass.
2. ``RandomPhotometricDistort``: random brightness, contrast, saturation, hue, channel order.
3. ``RandomZoomOut`` (the paper's "expansion"): paste the image into a larger canvas filled with
   the mean colour, so objects become smaller.
4. ``RandomIoUCrop``: cut a random patch that overlaps some object by at least a random IoU
   (0, 0.1, 0.3, 0.5, 0.7 or 0.9, drawn at random), or keep the whole image; objects whose
   centre falls outside are dropped.
5. ``RandomHorizontalFlip``.
6. ``Resize`` back to ``image_size``, ``ClampBoundingBoxes`` to the image, and
   ``SanitizeBoundingBoxes``: drop boxes thinner than ``min_box_size`` pixels, with their labels.

With ``enabled=False`` only steps 1 and 6 remain: deterministic, for validation.

Images without objects: ``RandomIoUCrop`` draws a minimum IoU, then tries 40 crops that contain
the centre of some box. With no boxes every try fails, so it draws again until it draws its
"keep the whole image" option (1 in 7): the image passes uncropped, after ~240 wasted tries.

Randomness comes from torch's global generator: ``torch.manual_seed(s)`` makes a run repeat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision.transforms import v2

# The ImageNet mean colour (RGB, fractions). A VGG backbone with ImageNet weights subtracts it
# (``model.VGGBackbone`` and ``ssd300.SSD300Backbone`` normalise inside the model), so the zoom-out
# canvas becomes zeros at the network's input: it adds no signal of its own. Caffe SSD fills
# with the same mean (104, 117, 123 in BGR, 0..255). The small model learns its own scaling.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
# The paper zooms out up to 4x on 300-pixel images. Our images are small (tens of pixels), so a
# 4x zoom-out would shrink a 9-pixel object to 2 pixels: we stop at 2x by default.
MAX_ZOOM_OUT = 2.0
# Boxes narrower or shorter than this (pixels, after the resize) are dropped: too small to learn.
MIN_BOX_SIZE = 2.0
# torchvision's defaults for the random steps: each applied to half of the images.
PHOTOMETRIC_P = 0.5
ZOOM_OUT_P = 0.5
FLIP_P = 0.5


def ssd_augmentation(
    image_size: int | tuple[int, int],
    enabled: bool = True,
    fill: Sequence[float] = IMAGENET_MEAN,
    max_zoom_out: float = MAX_ZOOM_OUT,
    min_box_size: float = MIN_BOX_SIZE,
    photometric_p: float = PHOTOMETRIC_P,
    zoom_out_p: float = ZOOM_OUT_P,
    crop: bool = True,
    flip_p: float = FLIP_P,
) -> v2.Compose:
    """SSD's training augmentation, or (``enabled=False``) just the resize, as one transform.

    Call it as ``image, target = transform(image, target)``; the output image has the size
    ``image_size`` and every box lies inside it with width and height >= ``min_box_size``.
    Pixel values stay in [0, 1], up to rounding in the resize (a few 1e-7 above 1).

    Args:
        image_size: output side in pixels, or (height, width).
        enabled: False keeps only the dtype conversion, the resize and the box clean-up.
        fill: the zoom-out canvas colour, three fractions (R, G, B).
        max_zoom_out: the canvas is up to this many times the image side (>= 1).
        min_box_size: boxes below this width or height in output pixels are dropped (>= 1).
        photometric_p, zoom_out_p, flip_p: probability of each random step, in [0, 1].
        crop: False skips ``RandomIoUCrop``.

    Returns:
        v2.Compose: the pipeline; print it to see the steps.
    """
    size = _check_image_size(image_size)
    fill = _check_fill(fill)
    if not (isinstance(max_zoom_out, (int, float)) and 1 <= max_zoom_out < math.inf):
        raise ValueError(f"expected max_zoom_out >= 1 (1 = never zoom out), got {max_zoom_out!r}")
    if not (isinstance(min_box_size, (int, float)) and 1 <= min_box_size < math.inf):
        raise ValueError(
            f"expected min_box_size >= 1 pixel (SanitizeBoundingBoxes' limit), got {min_box_size!r}"
        )
    probabilities = {"photometric_p": photometric_p, "zoom_out_p": zoom_out_p, "flip_p": flip_p}
    for name, p in probabilities.items():
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise ValueError(f"expected {name} as a probability in [0, 1], got {p!r}")

    steps = [v2.ToDtype(torch.float32, scale=True)]  # images only; boxes and labels pass
    if enabled:
        if photometric_p > 0:
            steps.append(v2.RandomPhotometricDistort(p=photometric_p))
        if zoom_out_p > 0 and max_zoom_out > 1:
            steps.append(v2.RandomZoomOut(fill=fill, side_range=(1.0, max_zoom_out), p=zoom_out_p))
        if crop:
            # The default options [0, 0.1, 0.3, 0.5, 0.7, 0.9, 1] are the paper's: any patch, a
            # patch overlapping some object by IoU >= 0, 0.1, ... 0.9, or the whole image (1).
            # The crop marks dropped boxes as all-zero: SanitizeBoundingBoxes below removes them.
            steps.append(v2.RandomIoUCrop())
        if flip_p > 0:
            steps.append(v2.RandomHorizontalFlip(p=flip_p))
    steps += [
        v2.Resize(size),  # (height, width): exactly this size, boxes scaled with the image
        v2.ClampBoundingBoxes(),  # cut boxes at the image border
        # Removes boxes below min_box_size and the matching entries of target["labels"] (the
        # default labels_getter finds the "labels" key of the dict after the image).
        v2.SanitizeBoundingBoxes(min_size=float(min_box_size)),
    ]
    return v2.Compose(steps)


def _check_image_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = isinstance(image_size, (tuple, list)) and len(image_size) == 2
    ok = ok and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in image_size)
    if not ok:
        raise ValueError(
            f"expected image_size as a positive int or (height, width) ints, got {image_size!r}"
        )
    return (image_size[0], image_size[1])


def _check_fill(fill) -> tuple[float, float, float]:
    message = f"expected fill as three fractions (R, G, B) in [0, 1], got {fill!r}"
    try:
        if isinstance(fill, str):
            raise TypeError
        values = tuple(float(v) for v in fill)
    except (TypeError, ValueError) as err:
        raise ValueError(message) from err
    if len(values) != 3 or not all(0 <= v <= 1 for v in values):
        raise ValueError(message)
    return values
