"""Anchors (the paper's "default boxes"): the fixed list of boxes SSD is handed.

Each feature map of the network is a grid. On every cell of map k we centre the same few boxes:

* a square of side ``s_k`` (the map's *scale*, a fraction of the image side);
* an extra square of side ``sqrt(s_k * s_{k+1})``, between this map's scale and the next one's;
* for each extra aspect ratio ``r`` of the map, a box ``w = s_k * sqrt(r)``, ``h = s_k / sqrt(r)``
  and its turned twin with width and height swapped (ratio ``1/r``).

Aspect ratio means width / height here, as in the SSD paper and torchvision's
``DefaultBoxGenerator``. (Beware: torchvision's Faster R-CNN ``AnchorGenerator`` uses h / w.)

Order of the boxes, the same as torchvision's: map by map (finest first); within a map, cell by
cell in reading order (row 0 left to right, then row 1, ...); within a cell, the square ``s_k``,
the extra square, then ``r_1``, ``1/r_1``, ``r_2``, ``1/r_2``, ... So box ``i`` of a map with
``n`` boxes per cell sits in cell ``i // n`` and is box type ``i % n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import cxcywh_to_xyxy

# The SSD paper spreads the scales of its feature maps evenly from S_MIN to S_MAX.
S_MIN = 0.2
S_MAX = 0.9

# SSD300: six feature maps, from conv4_3 (38 x 38) down to conv11_2 (1 x 1).
SSD300_FEATURE_MAP_SIZES = (38, 19, 10, 5, 3, 1)
# Extra aspect ratios per map; [2] means {2, 1/2}, [2, 3] means {2, 1/2, 3, 1/3}.
SSD300_ASPECT_RATIOS = ((2,), (2, 3), (2, 3), (2, 3), (2,), (2,))
# On PASCAL VOC the paper gives the finest map (conv4_3) the scale 0.1 and the other five maps
# S_MIN..S_MAX. (The COCO setting uses 0.07, then 0.15, 0.33, 0.51, 0.69, 0.87 and 1.05.)
SSD300_VOC_FIRST_SCALE = 0.1


def paper_scales(num_maps: int, s_min: float = S_MIN, s_max: float = S_MAX) -> list[float]:
    """The paper's scales ``s_k = s_min + (s_max - s_min) (k - 1) / (m - 1)``, k = 1..m.

    Returns ``num_maps + 1`` numbers: the formula continued one step to k = m + 1, because the
    last map's extra square box ``sqrt(s_m * s_{m+1})`` needs a next scale.
    """
    num_maps, s_min, s_max = checks.paper_scales_inputs(num_maps, s_min, s_max)
    if num_maps == 1:
        return [s_min, s_max]
    step = (s_max - s_min) / (num_maps - 1)
    return [s_min + step * k for k in range(num_maps + 1)]


def anchors_per_location(aspect_ratios: Sequence[Sequence[float]]) -> list[int]:
    """Boxes per cell on each map: 2 squares + 2 per extra aspect ratio. Sizes a model's heads."""
    return [2 + 2 * len(ratios) for ratios in checks.aspect_ratios(aspect_ratios)]


def make_anchors(
    feature_map_sizes: Sequence[int | tuple[int, int]],
    scales: Sequence[float],
    aspect_ratios: Sequence[Sequence[float]],
    clip: bool = True,
    steps: Sequence[float] | None = None,
) -> Tensor:
    """Every anchor box of every feature map, in the order described in the module docstring.

    Args:
        feature_map_sizes: one entry per map, ``f`` for an f x f grid or ``(rows, cols)``.
        scales: ``len(feature_map_sizes) + 1`` box sizes, fractions of the image side; the last
            one only feeds the last map's extra square box.
        aspect_ratios: per map, the extra ratios (width / height, each > 0 and not 1); each also
            brings its inverse, so ``[2, 3]`` gives 2, 1/2, 3, 1/3.
        clip: cap each width and height at 1 (the whole image), as torchvision does. Centres stay
            where they are, so a box near the border may still stick out of the image.
        steps: per map, the distance between neighbouring cell centres, a fraction of the
            (square) image's side: cell ``(i, j)`` is centred at ``((j + 0.5) * step,
            (i + 0.5) * step)``. Default ``1 / f``: the cells tile the image exactly. The paper's
            Caffe code and torchvision's SSD300 use pixel steps 8, 16, 32, 64, 100, 300 instead,
            so pass ``[8 / 300, 16 / 300, ...]`` for their anchors (38 x 8 = 304: conv4_3's
            cells are a little wider than 300 / 38, and its last centre sits on the border).

    Returns:
        Tensor[A, 4]: xyxy, fractions of the image (the anchors are laid out as centres and
        sizes, then turned into corners, the format every other function takes).
    """
    sizes, scales, ratios, steps = checks.anchor_layout(
        feature_map_sizes, scales, aspect_ratios, clip, steps
    )
    per_map = []
    for k, (rows, cols) in enumerate(sizes):
        centres = _cell_centres(rows, cols, steps[k])  # (rows * cols, 2)
        wh = _box_sizes(scales[k], scales[k + 1], ratios[k])  # (n, 2)
        if clip:
            wh = wh.clamp(0, 1)
        # Every cell gets every box size: (cells, n, 2) + (cells, n, 2) -> (cells * n, 4).
        cells, n = centres.shape[0], wh.shape[0]
        boxes = torch.cat((centres[:, None, :].expand(cells, n, 2), wh.expand(cells, n, 2)), dim=-1)
        per_map.append(boxes.reshape(-1, 4))
    return cxcywh_to_xyxy(torch.cat(per_map))


def ssd300_anchors(scales: Sequence[float] | None = None, clip: bool = True) -> Tensor:
    """The 8732 anchors of SSD300 (xyxy fractions); scales default to the paper's VOC setting."""
    if scales is None:
        scales = [SSD300_VOC_FIRST_SCALE] + paper_scales(len(SSD300_FEATURE_MAP_SIZES) - 1)
    return make_anchors(SSD300_FEATURE_MAP_SIZES, scales, SSD300_ASPECT_RATIOS, clip=clip)


def _cell_centres(rows: int, cols: int, step: float | None) -> Tensor:
    """Cell (i, j) has centre ((j + 0.5) * step_x, (i + 0.5) * step_y); reading order.

    Without a step, step_x = 1 / cols and step_y = 1 / rows. -> (rows * cols, 2)
    """
    step_x, step_y = (1 / cols, 1 / rows) if step is None else (step, step)
    xs = ((torch.arange(cols, dtype=torch.float64) + 0.5) * step_x).float()
    ys = ((torch.arange(rows, dtype=torch.float64) + 0.5) * step_y).float()
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((grid_x.reshape(-1), grid_y.reshape(-1)), dim=-1)


def _box_sizes(s_k: float, s_next: float, ratios: Sequence[float]) -> Tensor:
    """(width, height) of the boxes of one cell, in the documented order. -> (n, 2)"""
    s_extra = math.sqrt(s_k * s_next)
    wh = [[s_k, s_k], [s_extra, s_extra]]
    for r in ratios:
        w, h = s_k * math.sqrt(r), s_k / math.sqrt(r)
        wh += [[w, h], [h, w]]
    return torch.tensor(wh, dtype=torch.float32)
