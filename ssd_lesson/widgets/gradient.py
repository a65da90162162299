"""Lesson 05's gradient explorer: move a predicted box, move the object; watch loss and positives.

One object (a 0.3 x 0.4 box) on a blank canvas, the 540 anchors and the untrained network of
``loss.py``. The object's best anchor predicts exactly its target offsets, except that its t_x
is moved by the "predicted shift". The loss is ``ssd_loss``, its gradient comes from autograd, and
both curves are the real functions evaluated on a grid:

* the loss against the predicted shift is smooth (Smooth L1: a parabola within ±1, then straight);
* the number of positives against the object's x jumps: matching is a yes/no decision.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.encoding import VARIANCES, build_targets, decode
from ssd_lesson.loss import ssd_loss
from ssd_lesson.matching import explain_matches
from ssd_lesson.plotting import (
    ANCHOR_COLOR,
    FORCED_COLOR,
    GROUND_TRUTH_COLOR,
    PREDICTION_COLOR,
    THRESHOLD_COLOR,
    KeyEntry,
    draw_boxes,
    legend_below,
    show_image,
)
from ssd_lesson.widgets.explorer import Explorer, add_axes, few_ticks, slider
from ssd_lesson.widgets.loss import loss_explorer_anchors, untrained_predictions

# Gradient scene: one object of this size, centred at height GT_CY, moved left and right.
GT_WIDTH, GT_HEIGHT, GT_CY = 0.3, 0.4, 0.5
# Slider ranges. The predicted shift is in the loss's units (variances 0.1, 0.2): 1 = a tenth of
# the anchor's width. Smooth L1 is quadratic within ±1 and straight beyond, so ±3 shows both.
SHIFT_RANGE = 3.0
SHIFT_STEP = 0.05
CURVE_STEP = 0.1  # the loss curve's points: a smooth curve, computed in ~30 ms per ground truth x
GT_X_STEP = 0.01
GT_X_RANGE = (round(GT_WIDTH / 2, 2), round(1 - GT_WIDTH / 2, 2))  # the object inside the image


class GradientView(NamedTuple):
    """What the gradient explorer shows: the loss, its slope, the positives, two curves."""

    prediction_shift: float  # predicted t_x - target t_x of the best anchor
    gt_x: float
    anchors_xyxy: Tensor  # (A, 4)
    gt_xyxy: Tensor  # (1, 4)
    positive_anchors: tuple[int, ...]
    best_anchor: int  # the object's best anchor (always a positive)
    predicted_xyxy: Tensor  # (4,) decode(best anchor's predicted offsets)
    loss: float
    gradient: float  # d loss / d (best anchor's predicted t_x), by autograd
    shifts: Tensor  # (S,) the loss curve's x ...
    losses: Tensor  # (S,) ... and y: the loss at every slider position, this gt_x
    gt_xs: Tensor  # (X,) the positives curve's x ...
    positive_counts: Tensor  # (X,) ... and y: the number of positives at every gt_x


def _gt_box(gt_x: float) -> Tensor:
    x1, y1 = gt_x - GT_WIDTH / 2, GT_CY - GT_HEIGHT / 2
    return torch.tensor([[x1, y1, x1 + GT_WIDTH, y1 + GT_HEIGHT]])  # (1, 4)


# The caches below are private: what leaves this module is cloned first (see gradient_view).


@functools.lru_cache(maxsize=256)
def _gradient_scene(gt_x: float):
    """Targets, the best anchor, and the predictions before the shift, for one gt_x."""
    anchors, gt = loss_explorer_anchors(), _gt_box(gt_x)
    targets = build_targets(anchors, [gt], [torch.tensor([1])])
    best = int(explain_matches(anchors, gt).best_anchor_for_each_gt[0])
    class_logits, box_offsets = untrained_predictions()  # new tensors: ours to change
    box_offsets[0, best] = targets.offsets[0, best]  # right on target but for the shift
    return gt, targets, best, class_logits, box_offsets


def _loss(gt_x: float, prediction_shift: float, with_gradient: bool = False):
    """The loss with the best anchor's predicted t_x moved by ``prediction_shift``."""
    _, targets, best, class_logits, base_offsets = _gradient_scene(gt_x)
    box_offsets = base_offsets.clone()
    box_offsets[0, best, 0] += prediction_shift
    box_offsets.requires_grad_(with_gradient)
    result = ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets)
    if with_gradient:
        result.total.backward()
    return result, box_offsets


def _grid(low: float, high: float, step: float) -> Tensor:
    return torch.linspace(low, high, round((high - low) / step) + 1)


@functools.lru_cache(maxsize=256)
def _loss_curve(gt_x: float) -> tuple[Tensor, Tensor]:
    shifts = _grid(-SHIFT_RANGE, SHIFT_RANGE, CURVE_STEP)
    with torch.no_grad():
        losses = [_loss(gt_x, float(s))[0].total.item() for s in shifts]
    return shifts, torch.tensor(losses)


@functools.cache
def _positives_curve() -> tuple[Tensor, Tensor]:
    gt_xs = _grid(*GT_X_RANGE, GT_X_STEP)
    counts = [int((_gradient_scene(round(float(x), 2))[1].labels > 0).sum()) for x in gt_xs]
    return gt_xs, torch.tensor(counts)


def gradient_view(prediction_shift: float = 0.5, gt_x: float = 0.45) -> GradientView:
    """The loss, and its gradient by autograd, with one object at ``gt_x`` and its best anchor's
    predicted t_x ``prediction_shift`` away from the target (in the loss's units).

    ``gt_x`` is rounded to the slider's step, 0.01, and must keep the object inside the image.
    """
    prediction_shift = checks.number(prediction_shift, "prediction_shift")
    gt_x = round(checks.number(gt_x, "gt_x"), 2)  # the slider's step; keeps the caches small
    checks.number(gt_x, "gt_x (the object inside the image)", GT_X_RANGE[0], GT_X_RANGE[1])
    gt, targets, best, _, _ = _gradient_scene(gt_x)
    result, box_offsets = _loss(gt_x, prediction_shift, with_gradient=True)
    anchors = loss_explorer_anchors()
    predicted = decode(anchors[best][None], box_offsets.detach()[0, best][None], VARIANCES)
    shifts, losses = _loss_curve(gt_x)
    gt_xs, positive_counts = _positives_curve()
    return GradientView(
        prediction_shift,
        gt_x,
        anchors,
        gt.clone(),
        positive_anchors=tuple(result.positives[0].nonzero().flatten().tolist()),
        best_anchor=best,
        predicted_xyxy=predicted[0],
        loss=result.total.item(),
        gradient=box_offsets.grad[0, best, 0].item(),
        shifts=shifts.clone(),
        losses=losses.clone(),
        gt_xs=gt_xs.clone(),
        positive_counts=positive_counts.clone(),
    )


GRADIENT_KEY = (
    KeyEntry(GROUND_TRUTH_COLOR, "ground truth (dashed)", "--", 2.5),
    KeyEntry(THRESHOLD_COLOR, "positive anchors", linewidth=1.5),
    KeyEntry(ANCHOR_COLOR, "the best anchor (dotted)", ":", 2),
    KeyEntry(PREDICTION_COLOR, "its predicted box", linewidth=2),
)


def draw_gradient_scene(view: GradientView, ax, legend: bool = True):
    """The object, its positive anchors, the best anchor and its predicted box."""
    show_image(ax)
    anchors = view.anchors_xyxy
    draw_boxes(ax, anchors[list(view.positive_anchors)], THRESHOLD_COLOR, linewidth=1.5)
    draw_boxes(ax, anchors[view.best_anchor][None], ANCHOR_COLOR, linewidth=2, linestyle=":")
    draw_boxes(ax, view.predicted_xyxy[None], PREDICTION_COLOR, linewidth=2)
    draw_boxes(ax, view.gt_xyxy, GROUND_TRUTH_COLOR, linewidth=2.5, linestyle="--")
    ax.set_title(f"ground truth x = {view.gt_x:.2f}", fontsize=9)
    if legend:
        legend_below(ax, GRADIENT_KEY)
    return ax


def draw_loss_curve(view: GradientView, ax):
    """The loss against the predicted shift; the current point and its tangent (autograd)."""
    ax.plot(view.shifts.numpy(), view.losses.numpy(), color=THRESHOLD_COLOR, lw=1.5)
    x, y, slope = view.prediction_shift, view.loss, view.gradient
    half = 0.6
    ax.plot([x - half, x + half], [y - half * slope, y + half * slope], color=FORCED_COLOR, lw=1.5)
    ax.plot(x, y, "o", color=FORCED_COLOR, markersize=5)
    ax.set_xlim(-SHIFT_RANGE, SHIFT_RANGE)
    ax.set_xlabel("predicted shift (t_x - target, of the best anchor)", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    # Smooth L1 bends at ±1: a parabola inside, straight lines outside.
    few_ticks(ax, (-3, -1, 0, 1, 3), 3)
    ax.set_title(f"loss {y:.3f}, slope {slope:+.3f}", fontsize=9)
    return ax


def draw_positives_curve(view: GradientView, ax):
    """The number of positives against the object's x: steps, and where the object is now."""
    ax.step(view.gt_xs.numpy(), view.positive_counts.numpy(), where="mid", color=THRESHOLD_COLOR)
    ax.plot(view.gt_x, len(view.positive_anchors), "o", color=FORCED_COLOR, markersize=5)
    ax.set_xlim(0, 1)  # the image's width, as in the scene
    ax.set_ylim(0, int(view.positive_counts.max()) + 1)
    ax.set_xlabel("ground truth x", fontsize=8)
    ax.set_ylabel("positives", fontsize=8)
    few_ticks(ax, (0, 0.5, 1), (0, int(view.positive_counts.max())))
    return ax


def gradient_axes(figure):
    """The gradient explorer's layout: the scene (3.3 in square) above the positives curve,
    sharing its x axis (the object's x is an x in the image), and the loss curve on the right."""
    scene = add_axes(figure, 0.35, 1.35, 2.95, 2.95)
    positives = add_axes(figure, 0.35, 0.45, 2.95, 0.75, sharex=scene)
    scene.tick_params(labelleft=False, labelbottom=False)  # the positives curve has them
    return scene, add_axes(figure, 4.3, 0.75, 4.5, 3.55), positives


def draw_gradient_view(view: GradientView, axes, legend: bool = True):
    """The scene, the loss curve and the positives curve on three Axes (see gradient_axes)."""
    scene, loss_ax, positives_ax = axes
    draw_gradient_scene(view, scene, legend=False)
    draw_loss_curve(view, loss_ax)
    draw_positives_curve(view, positives_ax)
    if legend:  # under the loss curve, clear of its x label
        legend_below(loss_ax, GRADIENT_KEY, offset=-0.14)
    return axes


def describe_gradient_view(view: GradientView) -> str:
    anchors = ", ".join(str(i) for i in view.positive_anchors)
    return (
        f"loss {view.loss:.3f} · d loss / d t_x of anchor {view.best_anchor} = "
        f"{view.gradient + 0.0:+.3f} · positives: {len(view.positive_anchors)} "
        f"(anchors {anchors})"
    )


def gradient_explorer(prediction_shift: float = 0.5, gt_x: float = 0.45) -> Explorer:
    """Lesson 05: move the predicted box (smooth) and the ground truth (jumps)."""
    controls = {
        "prediction_shift": slider(
            "predicted shift", prediction_shift, -SHIFT_RANGE, SHIFT_RANGE, SHIFT_STEP
        ),
        "gt_x": slider("ground truth x", gt_x, *GT_X_RANGE, GT_X_STEP),
    }
    return Explorer(
        controls,
        gradient_view,
        lambda view, axes: draw_gradient_view(view, axes, legend=False),
        describe_gradient_view,
        key=GRADIENT_KEY,
        make_axes=gradient_axes,
        figsize=(9.0, 4.5),
    )
