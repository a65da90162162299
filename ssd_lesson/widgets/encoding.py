"""Lesson 03's explorer: four offsets move and scale an anchor onto an object.

The scene is fixed: the sample photo, three objects, and the 84 explorer anchors of lesson 02,
matched with ``match_anchors``. Each (object, matched anchor) pair is one choice of the "pair"
control. The sliders are the offsets in the paper's plain units, variances (1, 1):
``t_x = shift / anchor width`` and ``t_w = log(width / anchor width)``. ``encode`` gives the
target offsets, ``decode`` turns the sliders into a box; nothing here re-implements them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from matplotlib import patheffects
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou
from ssd_lesson.encoding import decode, encode
from ssd_lesson.matching import match_anchors
from ssd_lesson.plotting import (
    ANCHOR_COLOR,
    GROUND_TRUTH_COLOR,
    PREDICTION_COLOR,
    KeyEntry,
    draw_boxes,
    legend_below,
    show_image,
)
from ssd_lesson.widgets.explorer import Explorer, dropdown, explorer_photo, slider
from ssd_lesson.widgets.matching import explorer_anchors

# The objects of the scene (xyxy fractions of the square sample photo). The face is lesson 00's;
# the whole person overlaps its anchors well (small offsets), the tie is far from its only anchor
# (large offsets).
ENCODING_OBJECTS = {
    "face": (0.31, 0.29, 0.72, 0.67),
    "person": (0.05, 0.06, 1.0, 1.0),
    "tie": (0.44, 0.80, 0.58, 1.0),
}
# The paper's equations have no variances: dividing by (1, 1) leaves the offsets as they are.
PLAIN_VARIANCES = (1.0, 1.0)
# Slider ranges: every target of the scene lies inside them (the tests check it). At their ends
# the box may leave the image: it is still drawn, and its IoU with the object still computed.
CENTRE_OFFSET_RANGE = 1.0  # t_x, t_y in -1..1: up to one anchor width (height) either way
SIZE_OFFSET_RANGE = 1.5  # t_w, t_h in -1.5..1.5: from exp(-1.5) ≈ 0.22 to exp(1.5) ≈ 4.5 times
# The sliders move in steps of 0.01, so they can only come within 0.005 of a target. For every
# pair of this scene that is still an IoU of at least 0.98 with the object: "landed".
LANDED_IOU = 0.98
OFFSET_NAMES = ("t_x", "t_y", "t_w", "t_h")
ENCODING_KEY = (
    KeyEntry(ANCHOR_COLOR, "anchor (dotted)", ":", 2),
    KeyEntry(GROUND_TRUTH_COLOR, "ground truth (dashed)", "--", 2.5),
    KeyEntry(PREDICTION_COLOR, "decode(anchor, sliders)", "-", 2),
)


class EncodingPair(NamedTuple):
    """One object and one anchor matched to it."""

    label: str  # e.g. "face ← anchor 25 (IoU 0.33)": the pair control's text
    name: str  # the object
    gt_xyxy: Tensor  # (4,)
    anchor_index: int  # into explorer_anchors()
    anchor_xyxy: Tensor  # (4,)
    iou: float  # of the anchor with the object


class EncodingView(NamedTuple):
    """What the encoding explorer shows: a pair, its target offsets, the sliders' box."""

    pair: EncodingPair
    offsets: Tensor  # (4,) the sliders: t_x, t_y, t_w, t_h, plain units
    target_offsets: Tensor  # (4,) encode(anchor, object), plain units
    decoded_xyxy: Tensor  # (4,) decode(anchor, sliders)
    iou: float  # of the decoded box with the object
    landed: bool  # iou >= LANDED_IOU


def encoding_pairs() -> tuple[EncodingPair, ...]:
    """Every (object, matched anchor) pair of the scene, object by object, best IoU first.

    Computed afresh at every call (under a millisecond), so no caller can change another's."""
    anchors = explorer_anchors()
    gt = torch.tensor(list(ENCODING_OBJECTS.values()))  # (G, 4)
    matched_gt = match_anchors(anchors, gt)  # (A,)
    iou = box_iou(gt, anchors)  # (G, A)
    pairs = []
    for g, name in enumerate(ENCODING_OBJECTS):
        indices = (matched_gt == g).nonzero().flatten().tolist()
        for i in sorted(indices, key=lambda i: -float(iou[g, i])):
            label = f"{name} ← anchor {i} (IoU {float(iou[g, i]):.2f})"
            pair = EncodingPair(label, name, gt[g].clone(), i, anchors[i].clone(), float(iou[g, i]))
            pairs.append(pair)
    return tuple(pairs)


def encoding_view(
    pair: EncodingPair | int, t_x: float, t_y: float, t_w: float, t_h: float
) -> EncodingView:
    """The box that offsets (t_x, t_y, t_w, t_h) make of the pair's anchor, and the target.

    Args:
        pair: an ``EncodingPair``, or an index into ``encoding_pairs()``.
        t_x, t_y, t_w, t_h: offsets in plain units (variances (1, 1)).
    """
    if not isinstance(pair, EncodingPair):
        pairs = encoding_pairs()
        index = checks.integer(pair, "pair")
        pair = pairs[int(checks.number(index, "pair", 0, len(pairs) - 1))]
    anchor = pair.anchor_xyxy[None]  # (1, 4)
    offsets = torch.tensor([[t_x, t_y, t_w, t_h]], dtype=torch.float32)  # (1, 4)
    target = encode(anchor, pair.gt_xyxy[None], PLAIN_VARIANCES)  # (1, 4)
    decoded = decode(anchor, offsets, PLAIN_VARIANCES)  # (1, 4)
    iou = float(box_iou(decoded, pair.gt_xyxy[None])[0, 0])
    return EncodingView(pair, offsets[0], target[0], decoded[0], iou, iou >= LANDED_IOU)


def draw_encoding_view(view: EncodingView, ax, photo: bool = True, legend: bool = True):
    """The anchor (orange, dotted), the object (green, dashed), the sliders' box (purple, solid),
    an arrow from the anchor's centre to the box's; on the sample photo or a blank canvas."""
    show_image(ax, explorer_photo() if photo else None)
    pair = view.pair
    draw_boxes(ax, pair.anchor_xyxy[None], ANCHOR_COLOR, linewidth=2, linestyle=":")
    draw_boxes(ax, view.decoded_xyxy[None], PREDICTION_COLOR, linewidth=2.5)
    # The object last: dashed over the solid box, both stay visible once the box has landed.
    draw_boxes(ax, pair.gt_xyxy[None], GROUND_TRUTH_COLOR, [pair.name], 2.5, "--")
    start, end = _centre(pair.anchor_xyxy), _centre(view.decoded_xyxy)
    ax.plot(*start, "o", color=ANCHOR_COLOR, markersize=5, markeredgecolor="white")
    if np.hypot(*(end - start)) > 0.03:  # an arrow shorter than its head would be a blot
        ax.annotate(
            "",
            xy=end,
            xytext=start,
            arrowprops={
                "arrowstyle": "-|>",
                "color": PREDICTION_COLOR,
                "lw": 2,
                "path_effects": [patheffects.withStroke(linewidth=4, foreground="white")],
            },
        )
    sliders = ", ".join(_signed(v) for v in view.offsets.tolist())
    ax.set_title(f"anchor {pair.anchor_index} moved by ({sliders})", fontsize=9)
    if legend:
        legend_below(ax, ENCODING_KEY, ncol=3)
    return ax


def describe_encoding_view(view: EncodingView) -> str:
    target = ", ".join(_signed(v) for v in view.target_offsets.tolist())
    text = (
        f"target (t_x, t_y, t_w, t_h) = ({target}); "
        f"sliders give IoU {view.iou:.2f} with the {view.pair.name}"
    )
    return text + (" · landed ✓" if view.landed else "")


def encoding_explorer(pair: int = 0) -> Explorer:
    """Lesson 03: pick an (object, anchor) pair, move the four offsets, land on the object."""
    options = [(p.label, i) for i, p in enumerate(encoding_pairs())]
    controls = {"pair": dropdown("pair", options, pair)}
    for name in OFFSET_NAMES:
        limit = CENTRE_OFFSET_RANGE if name in ("t_x", "t_y") else SIZE_OFFSET_RANGE
        controls[name] = slider(name, 0.0, -limit, limit)
    return Explorer(
        controls,
        encoding_view,
        lambda view, ax: draw_encoding_view(view, ax, legend=False),
        describe_encoding_view,
        key=ENCODING_KEY,
        figsize=(5.0, 5.0),
    )


def _centre(box_xyxy: Tensor) -> np.ndarray:
    x1, y1, x2, y2 = box_xyxy.tolist()
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2])


def _signed(value: float) -> str:
    """``+0.21`` / ``-0.10``, and never ``-0.00``."""
    rounded = round(value, 2)
    return f"{rounded + 0.0:+.2f}"
