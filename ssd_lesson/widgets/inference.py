"""Lesson 07's explorer: a trained detector's boxes, before and after the score threshold and NMS.

The network runs once per image (in eval mode, without gradients) and its outputs are kept; a
slider then only re-runs the cheap last steps of ``ssd_lesson.inference.detect_steps``: the
score threshold and non-maximum suppression. The readout counts what each step did: how many
(anchor, class) candidates pass the threshold, how many NMS removes, how many boxes are left,
and how many ground-truth objects those boxes find. Nothing here re-implements NMS.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou
from ssd_lesson.data.collate import detection_collate
from ssd_lesson.data.shapes import SHAPE_CLASSES
from ssd_lesson.inference import NMS_IOU_THRESHOLD, TOP_K, Detections, detect_steps
from ssd_lesson.metrics import VOC_IOU_THRESHOLD
from ssd_lesson.model import SSD
from ssd_lesson.plotting import (
    GROUND_TRUTH_COLOR,
    OBJECT_PALETTE,
    KeyEntry,
    draw_boxes,
    legend_below,
    show_image,
)
from ssd_lesson.widgets.explorer import Explorer, int_slider, slider, toggle

# A picture needs confident boxes: the explorer starts at 0.5. (The paper's 0.01 is for
# measuring mAP, which wants every candidate; on a picture it leaves dozens of faint boxes.)
DEFAULT_SCORE_THRESHOLD = 0.5
# The sliders' ranges. 0 and 1 are left out: at 0 every anchor is a candidate for every class,
# and no probability is above 1. NMS IoU 1.0 is allowed: it removes nothing.
SCORE_THRESHOLD_RANGE = (0.01, 0.99, 0.01)  # (low, high, step)
NMS_IOU_RANGE = (0.05, 1.0, 0.05)
# An object counts as found when a kept box of its class overlaps it by IoU >= 0.5: the
# criterion of the VOC mAP of lesson 07 (there, each box may find one object only).
FOUND_IOU = VOC_IOU_THRESHOLD
# Only the best boxes get a "name 0.93" label: at a low threshold dozens of labels would cover
# the image.
LABELLED_BOXES = 10
# One colour per class, the Okabe-Ito palette without the ground truth's green; yellow last,
# as white label text on it is hard to read.
CLASS_COLORS = OBJECT_PALETTE  # class 1, 2, ...: none is a colour of the series' key
NMS_MODES = (("per class", False), ("class-agnostic", True))


class DetectionView(NamedTuple):
    """What the detection explorer shows: one image, its objects and the boxes that survive."""

    image: Tensor  # (3, H, W) in [0, 1]
    gt_xyxy: Tensor  # (G, 4) fractions
    gt_labels: Tensor  # (G,) 1..C
    detections: Detections  # the K kept boxes (K, 4), scores (K,), labels (K,), best first
    found: Tensor  # (G,) bool: a kept box of the object's class has IoU >= FOUND_IOU with it
    num_candidates: int  # (anchor, class) pairs above the score threshold, before NMS
    num_suppressed: int  # of those, removed by NMS
    num_beyond_top_k: int  # left by NMS but beyond the top TOP_K (200): not kept
    num_kept: int  # K
    num_found: int
    score_threshold: float
    iou_threshold: float
    class_agnostic: bool


def detection_view(
    image: Tensor,
    class_logits: Tensor,
    box_offsets: Tensor,
    anchors_xyxy: Tensor,
    gt_xyxy,
    gt_labels,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    class_agnostic: bool = False,
) -> DetectionView:
    """The detections of one image at these settings, and which objects they find.

    Args:
        image (Tensor[3, H, W]): the picture, values in [0, 1] (only drawn).
        class_logits (Tensor[A, C+1]), box_offsets (Tensor[A, 4]): the network's raw outputs
            for this image; column 0 of the logits is background.
        anchors_xyxy (Tensor[A, 4]): xyxy fractions.
        gt_xyxy (Tensor[G, 4]): the objects, xyxy fractions. gt_labels (Tensor[G,]): 1..C.
        score_threshold, iou_threshold, class_agnostic: as in ``ssd_lesson.inference.detect``.
    """
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] != 3:
        got = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"expected image as a tensor of shape (3, H, W), got {got}")
    # detect_steps checks the outputs and the settings, and says what is wrong.
    steps = detect_steps(
        anchors_xyxy,
        class_logits,
        box_offsets,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        class_agnostic=class_agnostic,
    )
    gt_xyxy = checks.ground_truth(gt_xyxy, "gt_xyxy")
    num_classes = class_logits.shape[-1] - 1
    gt_labels = checks.integer_labels(gt_labels, "gt_labels", len(gt_xyxy), 1, num_classes)
    kept = steps.final
    # An object is found if some kept box has its class and overlaps it enough.
    iou = box_iou(gt_xyxy, kept.boxes)  # (G, K)
    same_class = gt_labels[:, None] == kept.labels[None, :]  # (G, K)
    found = ((iou >= FOUND_IOU) & same_class).any(dim=1)  # (G,)
    num_candidates, num_left = len(steps.candidates.scores), len(steps.kept)
    return DetectionView(
        image.as_subclass(Tensor),
        gt_xyxy,
        gt_labels,
        kept,
        found,
        num_candidates=num_candidates,
        num_suppressed=num_candidates - num_left,
        num_beyond_top_k=num_left - len(kept.scores),
        num_kept=len(kept.scores),
        num_found=int(found.sum()),
        score_threshold=float(score_threshold),
        iou_threshold=float(iou_threshold),
        class_agnostic=class_agnostic,
    )


def describe_detection_view(view: DetectionView) -> str:
    """One line: 'kept: 4 boxes · 37 above the score threshold, 33 removed by NMS · found ...'."""
    steps = f"{view.num_candidates} above the score threshold, {view.num_suppressed} removed by NMS"
    if view.num_beyond_top_k:
        steps += f", {view.num_beyond_top_k} beyond the top {TOP_K}"
    objects = len(view.gt_labels)
    return (
        f"kept: {_count(view.num_kept, 'box', 'boxes')} · {steps} · found {view.num_found} of "
        f"{_count(objects, 'object', 'objects')} (IoU ≥ {FOUND_IOU:g})"
    )


def draw_detection_view(view: DetectionView, ax, class_names: Sequence[str], legend: bool = True):
    """The image, the kept boxes, one colour per class, the best ``LABELLED_BOXES`` labelled
    "name score", and the objects (green, dashed).

    ``class_names``: C+1 names, background first.
    """
    show_image(ax, view.image)
    boxes = view.detections.boxes
    scores, labels = view.detections.scores.tolist(), view.detections.labels.tolist()
    colors = [_class_color(label) for label in labels]
    # Worst first, so that the best boxes and their labels end up on top.
    worst_first = torch.arange(len(scores) - 1, -1, -1)
    unlabelled, labelled = worst_first[:-LABELLED_BOXES], worst_first[-LABELLED_BOXES:]
    draw_boxes(ax, boxes[unlabelled], [colors[i] for i in unlabelled.tolist()], linewidth=1.5)
    texts = [f"{class_names[labels[i]]} {scores[i]:.2f}" for i in labelled.tolist()]
    draw_boxes(ax, boxes[labelled], [colors[i] for i in labelled.tolist()], texts, linewidth=2)
    # The objects last: dashed over a solid box that fits them, both stay visible.
    draw_boxes(ax, view.gt_xyxy, GROUND_TRUTH_COLOR, linewidth=2, linestyle="--")
    mode = "class-agnostic" if view.class_agnostic else "per class"
    ax.set_title(
        f"score > {view.score_threshold:.2f}, then NMS at IoU {view.iou_threshold:.2f} ({mode})",
        fontsize=9,
    )
    if legend:
        legend_below(ax, detection_key(class_names), ncol=3)
    return ax


def detection_key(class_names: Sequence[str]) -> tuple[KeyEntry, ...]:
    """The colour key: ground truth, then one colour per object class."""
    classes = [KeyEntry(_class_color(c), name) for c, name in enumerate(class_names) if c > 0]
    return (KeyEntry(GROUND_TRUTH_COLOR, "ground truth (dashed)", "--", 2), *classes)


def detection_explorer(
    model: SSD,
    dataset,
    index: int = 0,
    score_threshold: float = DEFAULT_SCORE_THRESHOLD,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    class_agnostic: bool = False,
    class_names: Sequence[str] | None = None,
) -> Explorer:
    """Lesson 07: move the score threshold and the NMS IoU; see which boxes survive.

    Args:
        model: a trained ``SSD``; it runs once per image shown, in eval mode (its train/eval
            mode is restored afterwards).
        dataset: items ``(image, target)``, ``target["boxes"]`` xyxy pixels and
            ``target["labels"]`` 1..C (e.g. ``ShapesDataset``).
        index: the first image shown.
        score_threshold, iou_threshold, class_agnostic: the controls' first values.
        class_names: C+1 names, background first; default ``("background", *SHAPE_CLASSES)``.
    """
    if not isinstance(model, SSD):
        raise ValueError(f"expected model as an ssd_lesson.model.SSD, got {type(model).__name__}")
    if class_names is None:
        class_names = ("background", *SHAPE_CLASSES)
    class_names = tuple(class_names)
    if len(class_names) != model.config.num_classes + 1:
        raise ValueError(
            f"expected {model.config.num_classes + 1} class_names (background and the model's "
            f"{model.config.num_classes} classes), got {len(class_names)}: {class_names}"
        )
    num_images = len(dataset)
    if num_images == 0:
        raise ValueError("expected a dataset with at least one image, got an empty one")
    index = checks.integer(index, "index")
    checks.number(index, "index (an image of the dataset)", 0, num_images - 1)
    # The sliders' ranges: a first value outside them could not be shown.
    score_threshold = checks.number(score_threshold, "score_threshold", *SCORE_THRESHOLD_RANGE[:2])
    iou_threshold = checks.number(iou_threshold, "iou_threshold", *NMS_IOU_RANGE[:2])
    class_agnostic = checks.flag(class_agnostic, "class_agnostic")

    anchors = model.config.anchors()  # (A, 4)

    @functools.cache
    def network_outputs(i: int):
        """Image i, its objects and the network's outputs for it: computed once per image."""
        image, (gt_xyxy,), (gt_labels,) = detection_collate([dataset[i]])  # boxes -> fractions
        class_logits, box_offsets = _run_model(model, image)
        return image[0], class_logits, box_offsets, gt_xyxy, gt_labels

    def compute(score_threshold, iou_threshold, class_agnostic, index):
        image, class_logits, box_offsets, gt_xyxy, gt_labels = network_outputs(index)
        # The view holds the image and the objects: copies, so that the cache stays as it is.
        return detection_view(
            image.clone(),
            class_logits,
            box_offsets,
            anchors,
            gt_xyxy.clone(),
            gt_labels.clone(),
            score_threshold,
            iou_threshold,
            class_agnostic,
        )

    controls = {
        "score_threshold": slider("score threshold", score_threshold, *SCORE_THRESHOLD_RANGE),
        "iou_threshold": slider("NMS IoU", iou_threshold, *NMS_IOU_RANGE),
        "class_agnostic": toggle("NMS", NMS_MODES, class_agnostic),
        "index": int_slider("image", index, 0, num_images - 1),
    }
    return Explorer(
        controls,
        compute,
        lambda view, ax: draw_detection_view(view, ax, class_names, legend=False),
        describe_detection_view,
        key=detection_key(class_names),
        figsize=(5.0, 5.0),
    )


def _run_model(model: SSD, image: Tensor) -> tuple[Tensor, Tensor]:
    """images (1, 3, H, W) -> class_logits (A, C+1), box_offsets (A, 4), on the CPU.

    In eval mode (batch norm uses its running averages, as at test time) and without gradients;
    the model's train/eval mode is put back afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            class_logits, box_offsets = model(image.to(device))
    finally:
        model.train(was_training)
    return class_logits[0].cpu(), box_offsets[0].cpu()


def _class_color(label: int) -> str:
    return CLASS_COLORS[(label - 1) % len(CLASS_COLORS)]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
