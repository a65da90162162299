"""Inference: from the network's raw outputs to a short list of boxes, one list per image.

SSD300 scores 8732 anchors for every class. Most anchors see background, and each object is
covered by a dozen overlapping anchors that all fire. The paper's post-processing keeps one box
per object:

1. **Decode** every anchor's offsets into a box (``ssd_lesson.encoding.decode``), clipped to the
   image.
2. **Softmax** the class scores into probabilities.
3. **Threshold**: for every object class c >= 1, keep the (anchor, class) pairs whose
   probability is above ``score_threshold`` (0.01).
4. **Non-maximum suppression (NMS)**, per class: take the best box, drop every box of the same
   class that overlaps it by IoU > ``iou_threshold`` (0.45), repeat with the best box left.
5. **Top k**: keep the ``top_k`` (200) best detections of the image.

``nms`` and ``batched_nms`` are the lesson's readable versions; they keep exactly the boxes
torchvision's ``ops.nms`` and ``ops.batched_nms`` keep, in the same order. ``detect`` runs the
whole pipeline with either (``fast=True``: torchvision's; ``fast=False``: ours) and
``detect_steps`` returns every intermediate step of one image, for pictures.

Ties. When two boxes have exactly the same score, the one with the lower index comes first: it
is kept first and listed first. torchvision's CPU kernel behaves the same (its sort of the scores
keeps equal scores in index order); its documentation promises nothing about ties, and its GPU
kernel may order them differently. One known difference: above 1000 boxes (on the CPU)
``torchvision.ops.batched_nms`` merges the classes with an unstable sort, so equal scores of
*different* classes may come in another order than ours; the same boxes are kept. ``detect``
orders such ties by index whichever NMS ran, so ``fast=True`` and ``fast=False`` always agree.

Compared with torchvision's ``SSD.postprocess_detections``: the same steps and defaults (0.01,
0.45, 200), plus one step the paper does not describe: torchvision keeps only the 400 best
candidates of each class before NMS (``topk_candidates``; the original Caffe code does the same).
``detect`` skips that step unless ``candidates_per_class=400`` is given, and then gives the same
detections as torchvision. torchvision clips boxes to the image in pixels; ours are fractions,
clipped to [0, 1].
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torchvision
from torch import Tensor

from ssd_lesson.boxes import _iou, check_xyxy
from ssd_lesson.encoding import VARIANCES, decode

# The paper's inference settings: "we filter out most boxes with a confidence threshold of 0.01",
# "apply nms with jaccard overlap of 0.45 per class and keep the top 200 detections per image".
SCORE_THRESHOLD = 0.01
NMS_IOU_THRESHOLD = 0.45
TOP_K = 200
# detect's settings that reach each image, in this order.
_SETTINGS = (
    "score_threshold",
    "iou_threshold",
    "top_k",
    "class_agnostic",
    "fast",
    "candidates_per_class",
)
# NMS computes its IoU table this many rows at a time (see _overlap_table).
OVERLAP_BLOCK_ROWS = 1024


class Detections(NamedTuple):
    """The detections of one image, sorted by decreasing score. K may be 0."""

    boxes: Tensor  # (K, 4) xyxy fractions of the image, clipped to [0, 1]
    scores: Tensor  # (K,) class probabilities
    labels: Tensor  # (K,) int64 object classes, 1..C


class DetectionSteps(NamedTuple):
    """Every step of ``detect`` for one image, so that a lesson can draw each one."""

    boxes: Tensor  # (A, 4) 1) every anchor's decoded box, clipped to the image
    probabilities: Tensor  # (A, C+1) 2) softmax of the class scores; column 0 is background
    candidates: Detections  # 3) the N (anchor, class) pairs above score_threshold
    candidate_anchors: Tensor  # (N,) int64: the anchor each candidate comes from
    kept: Tensor  # (M,) int64: 4) indices into candidates that survive NMS, best first
    final: Detections  # 5) the first top_k of the kept candidates: what detect returns


# ---------------------------------------------------------------------------------------------
# Non-maximum suppression


def nms(boxes, scores, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression: the lesson's readable version of ``torchvision.ops.nms``.

    Take the box with the best score and keep it; drop every other box that overlaps it by
    IoU > ``iou_threshold``; repeat with the best box left until none is left.

    Args:
        boxes (Tensor[N, 4]): xyxy, with x2 >= x1 and y2 >= y1 (fractions or pixels).
        scores (Tensor[N]): one finite score per box.
        iou_threshold: in [0, 1]. 0 drops every box that overlaps a kept one at all; 1 drops
            nothing.

    Returns:
        Tensor[K] (int64): indices of the kept boxes, by decreasing score (equal scores: lower
        index first). The same as ``torchvision.ops.nms``.
    """
    boxes, scores = _check_boxes_and_scores(boxes, scores)
    _check_threshold(iou_threshold, "iou_threshold")
    return _nms(boxes, scores, iou_threshold)


def _nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    # 1) Sort the boxes by decreasing score. A stable sort keeps equal scores in index order,
    #    as torchvision's CPU kernel does.
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    # 2) Which box would suppress which: overlaps[i, j] is True when the i-th best box overlaps
    #    the j-th best one by IoU > iou_threshold. One vectorised table, computed once.
    overlaps = _overlap_table(boxes[order], iou_threshold)  # (N, N) bool
    # 3) The greedy pass, best box first: a box that no kept box suppressed is kept, and it
    #    suppresses the boxes it overlaps. (It also marks itself and better boxes, which are
    #    decided already: harmless.)
    suppressed = torch.zeros(len(order), dtype=torch.bool, device=boxes.device)  # (N,)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[keep]


def _overlap_table(boxes: Tensor, iou_threshold: float) -> Tensor:
    """(N, 4) boxes -> (N, N) bool: IoU > iou_threshold, computed a block of rows at a time."""
    # In blocks, so that the float IoUs of SSD300's 8732 anchors never all exist at once: the
    # whole (8732, 8732) float table would take 300 MB, the bool table takes 76 MB.
    threshold = _threshold_below(iou_threshold, boxes.dtype)
    # A 0/0 IoU (two boxes of zero area) is NaN, and NaN > threshold is False, as in torchvision.
    blocks = [_iou(block, boxes) > threshold for block in boxes.split(OVERLAP_BLOCK_ROWS)]
    return torch.cat(blocks) if blocks else boxes.new_zeros(0, 0, dtype=torch.bool)


def _threshold_below(threshold: float, dtype: torch.dtype) -> Tensor:
    """The largest number of ``dtype`` that is <= ``threshold`` (a Python float, 64 bits).

    torchvision compares each float32 IoU with the 64-bit threshold. Comparing with the threshold
    rounded to the *nearest* float32 would disagree with it when the rounding goes up and an IoU
    equals the rounded value; comparing with the float32 just below the threshold never does.
    """
    rounded = torch.tensor(threshold, dtype=torch.float64).to(dtype)
    if rounded.item() > threshold:
        rounded = torch.nextafter(rounded, torch.tensor(float("-inf"), dtype=dtype))
    return rounded


def batched_nms(boxes, scores, class_ids, iou_threshold: float) -> Tensor:
    """NMS within each class: boxes of different classes never suppress each other.

    Args:
        boxes (Tensor[N, 4]): xyxy, with x2 >= x1 and y2 >= y1.
        scores (Tensor[N]): one finite score per box.
        class_ids (Tensor[N], int): the class of each box.
        iou_threshold: in [0, 1].

    Returns:
        Tensor[K] (int64): indices of the kept boxes, by decreasing score (equal scores: lower
        index first). The same as ``torchvision.ops.batched_nms``.
    """
    boxes, scores = _check_boxes_and_scores(boxes, scores)
    class_ids = _check_class_ids(class_ids, boxes.shape[0])
    _check_threshold(iou_threshold, "iou_threshold")
    return _batched_nms(boxes, scores, class_ids, iou_threshold)


def _batched_nms(boxes: Tensor, scores: Tensor, class_ids: Tensor, iou_threshold: float) -> Tensor:
    # NMS within each class, one class at a time. torchvision does the same for large inputs;
    # for small ones it uses a trick: shift each class's boxes by (class id) x (largest
    # coordinate + 1), so that boxes of different classes land far apart and cannot overlap,
    # and one plain NMS call does every class at once. Both keep the same boxes. The trick does
    # not suit our NMS: its overlap table would hold every pair of boxes of *all* classes,
    # 20 times the memory of 20 tables of one class each.
    keep = []
    for class_id in torch.unique(class_ids):
        members = torch.nonzero(class_ids == class_id)[:, 0]  # this class's boxes, index order
        keep.append(members[_nms(boxes[members], scores[members], iou_threshold)])
    if not keep:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    return _best_first(torch.cat(keep), scores)  # merge the classes


def _best_first(indices: Tensor, scores: Tensor) -> Tensor:
    """``indices`` by decreasing score; equal scores in increasing index order."""
    indices = torch.sort(indices).values
    return indices[torch.sort(scores[indices], descending=True, stable=True).indices]


# ---------------------------------------------------------------------------------------------
# The whole pipeline


def detect(
    class_logits: Tensor,
    box_offsets: Tensor,
    anchors_xyxy,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    top_k: int = TOP_K,
    class_agnostic: bool = False,
    variances: Sequence[float] = VARIANCES,
    fast: bool = True,
    candidates_per_class: int | None = None,
) -> list[Detections]:
    """Turn a batch of network outputs into detections: decode, softmax, threshold, NMS, top k.

    Args:
        class_logits (Tensor[B, A, C+1]): raw class scores; column 0 is background.
        box_offsets (Tensor[B, A, 4]): predicted (t_x, t_y, t_w, t_h), scaled by ``variances``.
        anchors_xyxy (Tensor[A, 4]): xyxy fractions.
        score_threshold: keep (anchor, class) pairs with probability > this, in [0, 1).
        iou_threshold: NMS drops a box overlapping a better one of its class by IoU > this.
        top_k: at most this many detections per image.
        class_agnostic: if True, NMS compares boxes of all classes with each other (a box may
            then suppress a box of another class).
        variances: the (centre, size) variances the offsets were encoded with.
        fast: True runs ``torchvision.ops.batched_nms``, False the lesson's ``batched_nms``;
            both give the same detections.
        candidates_per_class: if given, keep only this many best candidates of each class
            before NMS, as torchvision (400) and the Caffe code do. The paper does not.

    Returns:
        One ``Detections`` per image: boxes (K, 4) xyxy fractions in [0, 1], scores (K,),
        labels (K,) int64 in 1..C, by decreasing score; K <= top_k.
    """
    # In the order of _SETTINGS:
    settings = (score_threshold, iou_threshold, top_k, class_agnostic, fast, candidates_per_class)
    steps = _detect_batch(class_logits, box_offsets, anchors_xyxy, variances, settings)
    return [image_steps.final for image_steps in steps]


def detect_steps(
    class_logits: Tensor, box_offsets: Tensor, anchors_xyxy, **settings
) -> DetectionSteps:
    """``detect`` for ONE image (class_logits (A, C+1), box_offsets (A, 4)), with every step.

    ``settings``: any keyword argument of ``detect`` (``score_threshold``, ``top_k``, ...), with
    the same defaults. ``detect_steps(...).final`` equals ``detect(...)[0]`` on the same image.

    Returns:
        DetectionSteps: decoded boxes, probabilities, candidates, kept, final.
    """
    for name, value, shape in (
        ("class_logits", class_logits, "(A, C+1)"),
        ("box_offsets", box_offsets, "(A, 4)"),
    ):
        if not isinstance(value, Tensor) or value.ndim != 2:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"expected {name} of one image, shape {shape}, got {got}; for a batch use detect"
            )
    # detect's own signature names the settings and their defaults, and rejects unknown ones.
    arguments = inspect.signature(detect).bind(class_logits, box_offsets, anchors_xyxy, **settings)
    arguments.apply_defaults()
    chosen = tuple(arguments.arguments[name] for name in _SETTINGS)
    variances = arguments.arguments["variances"]
    (steps,) = _detect_batch(class_logits[None], box_offsets[None], anchors_xyxy, variances, chosen)
    return steps


@torch.no_grad()
def _detect_batch(class_logits, box_offsets, anchors_xyxy, variances, settings) -> list:
    """Every step of ``detect`` for each image of a batch: a list of ``DetectionSteps``."""
    logits, offsets = _check_outputs(class_logits, box_offsets)
    _check_settings(*settings)
    # 1) Decode every anchor's offsets into a box, clipped to the image.
    boxes = decode(anchors_xyxy, offsets, variances).clamp_(0, 1)  # (B, A, 4)
    # 2) Softmax: class scores -> probabilities.
    probabilities = torch.softmax(logits, dim=-1)  # (B, A, C+1)
    return [
        _detect_image(image_boxes, image_probabilities, *settings)
        for image_boxes, image_probabilities in zip(boxes, probabilities, strict=True)
    ]


def _detect_image(
    boxes: Tensor,
    probabilities: Tensor,
    score_threshold: float,
    iou_threshold: float,
    top_k: int,
    class_agnostic: bool,
    fast: bool,
    candidates_per_class: int | None,
) -> DetectionSteps:
    """Steps 3 to 5 for one image: boxes (A, 4) decoded and clipped, probabilities (A, C+1)."""
    # 3) Every (class, anchor) pair is a candidate detection. Class-major order, like
    #    torchvision's: all candidates of class 1, then of class 2, ...
    object_scores = probabilities[:, 1:].T  # (C, A): background's column is never a detection
    if candidates_per_class is None:
        class_index, anchor = torch.nonzero(object_scores > score_threshold, as_tuple=True)
    else:  # the best candidates_per_class anchors of each class, best first
        count = min(candidates_per_class, object_scores.shape[1])
        best_scores, best_anchors = object_scores.topk(count, dim=1)  # (C, count) each
        class_index, rank = torch.nonzero(best_scores > score_threshold, as_tuple=True)
        anchor = best_anchors[class_index, rank]
    candidates = Detections(
        boxes=boxes[anchor], scores=object_scores[class_index, anchor], labels=class_index + 1
    )
    # 4) NMS per class: different classes never suppress each other, unless class-agnostic.
    groups = torch.zeros_like(candidates.labels) if class_agnostic else candidates.labels
    run_nms = torchvision.ops.batched_nms if fast else _batched_nms
    kept = run_nms(candidates.boxes, candidates.scores, groups, iou_threshold)
    # Both give the same kept candidates, best first. Only exact ties between classes may come
    # in another order: above 1000 boxes torchvision merges the classes with an unstable sort.
    # Ordering ties by index makes fast=True and fast=False give the same list, always.
    kept = _best_first(kept, candidates.scores)
    # 5) The top_k best survivors of the image.
    final = Detections(*(field[kept[:top_k]] for field in candidates))
    return DetectionSteps(boxes, probabilities, candidates, anchor, kept, final)


# ---------------------------------------------------------------------------------------------
# Input checks


def _check_boxes_and_scores(boxes, scores) -> tuple[Tensor, Tensor]:
    boxes = check_xyxy(boxes, "boxes", fractions=False)
    scores = _as_tensor(scores, "scores", "(N,)")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(
            f"expected scores of shape ({boxes.shape[0]},), one per box, got {tuple(scores.shape)}"
        )
    if not scores.is_floating_point():
        scores = scores.to(boxes.dtype)
    if not torch.isfinite(scores).all():
        raise ValueError("expected finite scores, got NaN or inf")
    return boxes, scores


def _check_class_ids(class_ids, num_boxes: int) -> Tensor:
    class_ids = _as_tensor(class_ids, "class_ids", "(N,)")
    if class_ids.shape != (num_boxes,):
        raise ValueError(
            f"expected class_ids of shape ({num_boxes},), one per box, got {tuple(class_ids.shape)}"
        )
    if class_ids.is_floating_point() or class_ids.is_complex() or class_ids.dtype == torch.bool:
        raise ValueError(f"expected integer class_ids, got dtype {class_ids.dtype}")
    return class_ids


def _as_tensor(value, name: str, shape: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"expected {name} as a tensor of shape {shape}, got {value!r}") from err


def _check_threshold(value, name: str, high_included: bool = True) -> None:
    interval = "[0, 1]" if high_included else "[0, 1)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")
    if not (0 <= value <= 1 if high_included else 0 <= value < 1):
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")


def _check_count(value, name: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = "an integer >= 1 or None" if optional else "an integer >= 1"
        raise ValueError(f"expected {name} as {allowed}, got {value!r}")


def _check_settings(
    score_threshold, iou_threshold, top_k, class_agnostic, fast, candidates_per_class
) -> None:
    # score_threshold = 1 would drop everything: no probability is above 1.
    _check_threshold(score_threshold, "score_threshold", high_included=False)
    _check_threshold(iou_threshold, "iou_threshold")
    _check_count(top_k, "top_k")
    _check_count(candidates_per_class, "candidates_per_class", optional=True)
    for name, flag in (("class_agnostic", class_agnostic), ("fast", fast)):
        if not isinstance(flag, bool):
            raise ValueError(f"expected {name} as True or False, got {flag!r}")


def _check_outputs(class_logits, box_offsets) -> tuple[Tensor, Tensor]:
    """The network's outputs for a batch: logits (B, A, C+1) and offsets (B, A, 4)."""
    for name, value in (("class_logits", class_logits), ("box_offsets", box_offsets)):
        if not isinstance(value, Tensor):
            raise ValueError(f"expected {name} as a tensor, got {type(value).__name__}")
        if not value.is_floating_point():
            raise ValueError(f"expected floating-point {name}, got dtype {value.dtype}")
    if class_logits.ndim != 3 or class_logits.shape[-1] < 2:
        raise ValueError(
            f"expected class_logits of shape (B, A, C+1), background + at least one class, got "
            f"{tuple(class_logits.shape)}"
        )
    expected = (*class_logits.shape[:2], 4)
    if tuple(box_offsets.shape) != expected:
        raise ValueError(
            f"expected box_offsets of shape {expected} to match class_logits "
            f"{tuple(class_logits.shape)}, got {tuple(box_offsets.shape)}"
        )
    if not torch.isfinite(class_logits).all():
        raise ValueError(
            "expected finite class_logits, got NaN or inf; training has probably diverged"
        )
    return class_logits, box_offsets
