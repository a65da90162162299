"""Lesson 05's mining explorer: how many negatives per positive are mined, which, and the loss.

The scene is lesson 05's: the sample photo with a face and a cap, 540 anchors on SSD300's four
coarsest maps (10x10, 5x5, 3x3, 1x1; paper scales; aspect ratios 2 and 1/2), targets from
``build_targets`` and the loss from ``ssd_loss``. The "network" is untrained: fixed random class
scores and offsets from a seeded generator, as in lesson 05. ``gradient.py`` uses the same anchors
and predictions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ssd_lesson.anchors import make_anchors, paper_scales
from ssd_lesson.encoding import build_targets
from ssd_lesson.loss import NEG_POS_RATIO, ssd_loss
from ssd_lesson.plotting import (
    BACKGROUND_COLOR,
    GROUND_TRUTH_COLOR,
    MINED_COLOR,
    THRESHOLD_COLOR,
    KeyEntry,
    draw_boxes,
    legend_below,
    show_image,
)
from ssd_lesson.widgets.explorer import Explorer, add_axes, explorer_photo, few_ticks, slider

# SSD300's four coarsest feature maps, with only the ratios 2 and 1/2: 540 anchors, enough for
# several positives per object and few enough to draw.
LOSS_MAP_SIZES = (10, 5, 3, 1)
LOSS_ASPECT_RATIOS = ((2.0,),) * 4
# The untrained network's outputs, drawn as in lesson 05: scores ~ N(0, 1), offsets ~ N(0, 0.5²).
PREDICTION_SEED = 0
OFFSET_SPREAD = 0.5
# Mining scene: lesson 05's face and cap on the sample photo; class 0 is background.
MINING_OBJECTS = {"face": (0.31, 0.29, 0.72, 0.67), "cap": (0.31, 0.06, 0.73, 0.32)}
CLASS_NAMES = ("background", *MINING_OBJECTS)


# The functions below build their tensors afresh at every call (each in well under a
# millisecond), so a caller may change what it gets without changing what the next one gets.


def loss_explorer_anchors() -> Tensor:
    """The 540 anchors (xyxy fractions) of lesson 05's explorers."""
    scales = paper_scales(len(LOSS_MAP_SIZES))
    return make_anchors(LOSS_MAP_SIZES, scales, LOSS_ASPECT_RATIOS)


def untrained_predictions() -> tuple[Tensor, Tensor]:
    """Fixed "untrained network" outputs: class logits (1, A, C+1) and offsets (1, A, 4)."""
    generator = torch.Generator().manual_seed(PREDICTION_SEED)
    num_anchors = len(loss_explorer_anchors())
    class_logits = torch.randn(1, num_anchors, len(CLASS_NAMES), generator=generator)
    box_offsets = OFFSET_SPREAD * torch.randn(1, num_anchors, 4, generator=generator)
    return class_logits, box_offsets


# ---------------------------------------------------------------- hard-negative mining


class MiningView(NamedTuple):
    """What the mining explorer shows: positives, mined negatives, the loss terms."""

    neg_pos_ratio: float
    anchors_xyxy: Tensor  # (A, 4)
    gt_xyxy: Tensor  # (G, 4)
    positives: Tensor  # (A,) bool
    mined: Tensor  # (A,) bool: mined negatives
    anchor_class_loss: Tensor  # (A,) every anchor's cross-entropy
    num_positives: int
    num_negatives: int
    num_mined: int  # min(floor(neg_pos_ratio x num_positives), num_negatives)
    classification: float
    localization: float
    total: float


def mining_view(neg_pos_ratio: float = NEG_POS_RATIO) -> MiningView:
    """``ssd_loss`` of the untrained network on the face-and-cap scene, mining at this ratio."""
    anchors = loss_explorer_anchors()
    gt = torch.tensor(list(MINING_OBJECTS.values()))  # (G, 4)
    labels = torch.arange(1, len(MINING_OBJECTS) + 1)  # (G,) face = 1, cap = 2
    targets = build_targets(anchors, [gt], [labels])
    class_logits, box_offsets = untrained_predictions()
    result = ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets, neg_pos_ratio)
    positives, mined = result.positives[0], result.mined_negatives[0]
    return MiningView(
        neg_pos_ratio,
        anchors,
        gt,
        positives,
        mined,
        result.anchor_class_loss[0],
        num_positives=result.num_positives,
        num_negatives=int((~positives).sum()),
        num_mined=int(mined.sum()),
        classification=result.classification.item(),
        localization=result.localization.item(),
        total=result.total.item(),
    )


MINING_KEY = (
    KeyEntry(GROUND_TRUTH_COLOR, "ground truth (dashed)", "--", 2.5),
    KeyEntry(THRESHOLD_COLOR, "positive", linewidth=2),
    KeyEntry(MINED_COLOR, "mined negative", linewidth=2),
    KeyEntry(BACKGROUND_COLOR, "other negatives (centres)", marker="."),
)


def draw_mining_view(view: MiningView, ax, photo: bool = True, legend: bool = True):
    """Positives (blue), mined negatives (yellow), the centres of the other negatives (grey)."""
    show_image(ax, explorer_photo() if photo else None)
    anchors = view.anchors_xyxy
    rest = anchors[~view.positives & ~view.mined]
    centres = ((rest[:, :2] + rest[:, 2:]) / 2).unique(dim=0).numpy()
    ax.plot(
        centres[:, 0],
        centres[:, 1],
        ".",
        color=BACKGROUND_COLOR,
        markersize=4,
        mec="white",
        mew=0.5,
    )
    draw_boxes(ax, anchors[view.mined], MINED_COLOR, linewidth=1)
    draw_boxes(ax, anchors[view.positives], THRESHOLD_COLOR, linewidth=2)
    draw_boxes(ax, view.gt_xyxy, GROUND_TRUTH_COLOR, list(MINING_OBJECTS), 2.5, "--")
    ax.set_title(
        f"{view.num_positives} positives × {view.neg_pos_ratio:g} → "
        f"{view.num_mined} mined negatives",
        fontsize=9,
    )
    if legend:
        legend_below(ax, MINING_KEY)
    return ax


def draw_mining_losses(view: MiningView, ax):
    """Every negative's classification loss, highest first; the mined ones left of the cut."""
    losses = view.anchor_class_loss[~view.positives].sort(descending=True).values.numpy()
    rank = np.arange(1, len(losses) + 1)
    cut = view.num_mined
    ax.plot(rank, losses, color=BACKGROUND_COLOR, lw=1.5)
    ax.fill_between(rank[:cut], losses[:cut], color=MINED_COLOR, alpha=0.8, lw=0)
    ax.axvline(cut + 0.5, color="black", lw=1.5, ls="--")
    ax.text(
        cut + 0.5 + 0.02 * len(losses),
        0.95 * losses.max(),
        f"quota ⌊{view.neg_pos_ratio:g} × {view.num_positives}⌋ = {cut}",
        color="black",
        fontsize=8,
        va="top",
    )
    ax.set_xlim(0, len(losses))
    ax.set_ylim(0, 1.05 * losses.max())
    ax.set_xlabel("negatives, highest loss first", fontsize=8)
    ax.set_ylabel("cross-entropy", fontsize=8)
    few_ticks(ax, 4, 3)
    ax.set_title(f"{view.num_negatives} negatives; the first {cut} are mined", fontsize=9)
    return ax


def describe_mining_view(view: MiningView) -> str:
    return (
        f"positives: {view.num_positives} · mined negatives: {view.num_mined} of "
        f"{view.num_negatives} · classification {view.classification:.2f} + localization "
        f"{view.localization:.2f} = total {view.total:.2f}"
    )


def mining_axes(figure):
    """The mining explorer's layout: the scene (3.6 in square, no tick labels), the losses."""
    scene = add_axes(figure, 0.1, 0.35, 3.6, 3.6)
    scene.tick_params(labelleft=False, labelbottom=False)  # the photo needs no tick labels
    return scene, add_axes(figure, 4.5, 0.55, 4.3, 3.2)


def mining_explorer(neg_pos_ratio: float = NEG_POS_RATIO) -> Explorer:
    """Lesson 05: set how many negatives per positive are mined; see which, and the loss."""
    controls = {
        "neg_pos_ratio": slider("negatives per positive", float(neg_pos_ratio), 0.0, 10.0, 0.5)
    }

    def draw(view, axes):
        draw_mining_view(view, axes[0], legend=False)
        draw_mining_losses(view, axes[1])

    return Explorer(
        controls,
        mining_view,
        draw,
        describe_mining_view,
        key=MINING_KEY,
        make_axes=mining_axes,
        figsize=(9.0, 4.3),
    )
