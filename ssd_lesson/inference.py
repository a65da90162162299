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

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torchvision
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou
from ssd_lesson.encoding import VARIANCES, decode

# The paper's inference settings: "we filter out most boxes with a confidence threshold of 0.01",
# "apply nms with jaccard overlap of 0.45 per class and keep the top 200 detections per image".
SCORE_THRESHOLD = 0.01
NMS_IOU_THRESHOLD = 0.45
TOP_K = 200


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
    boxes, scores, iou_threshold = checks.nms_inputs(boxes, scores, iou_threshold)
    # 1) The boxes' indices by decreasing score. A stable sort keeps equal scores in index
    #    order, as torchvision's CPU kernel does.
    left = torch.sort(scores, descending=True, stable=True).indices  # (N,)
    keep = []
    while len(left) > 0:
        # 2) The best box left is kept...
        best, left = left[0], left[1:]
        keep.append(best)
        # 3) ...and every box left that overlaps it by IoU > iou_threshold is dropped. The IoU
        #    is compared in float64, as torchvision does, so that the two always agree.
        overlap = box_iou(boxes[best][None], boxes[left])[0]  # (boxes left,)
        left = left[overlap.double() <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


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
    boxes, scores, class_ids, iou_threshold = checks.batched_nms_inputs(
        boxes, scores, class_ids, iou_threshold
    )
    keep = [torch.zeros(0, dtype=torch.long, device=boxes.device)]
    for class_id in torch.unique(class_ids):
        members = torch.nonzero(class_ids == class_id)[:, 0]  # this class's boxes, in order
        keep.append(members[nms(boxes[members], scores[members], iou_threshold)])
    return _best_first(torch.cat(keep), scores)  # merge the classes


def _best_first(indices: Tensor, scores: Tensor) -> Tensor:
    """``indices`` by decreasing score; equal scores in increasing index order."""
    indices = torch.sort(indices).values
    return indices[torch.sort(scores[indices], descending=True, stable=True).indices]


# ---------------------------------------------------------------------------------------------
# The whole pipeline


def detect(
    anchors,
    class_logits: Tensor,
    box_offsets: Tensor,
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
        anchors (Tensor[A, 4]): xyxy fractions.
        class_logits (Tensor[B, A, C+1]): raw class scores; column 0 is background.
        box_offsets (Tensor[B, A, 4]): predicted (t_x, t_y, t_w, t_h), scaled by ``variances``.
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
    checks.batch_outputs(class_logits, box_offsets)
    settings = dict(score_threshold=score_threshold, iou_threshold=iou_threshold, top_k=top_k)
    settings.update(class_agnostic=class_agnostic, variances=variances, fast=fast)
    return [
        detect_steps(
            anchors, logits, offsets, **settings, candidates_per_class=candidates_per_class
        ).final
        for logits, offsets in zip(class_logits, box_offsets, strict=True)
    ]


@torch.no_grad()
def detect_steps(
    anchors,
    class_logits: Tensor,
    box_offsets: Tensor,
    score_threshold: float = SCORE_THRESHOLD,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    top_k: int = TOP_K,
    class_agnostic: bool = False,
    variances: Sequence[float] = VARIANCES,
    fast: bool = True,
    candidates_per_class: int | None = None,
) -> DetectionSteps:
    """``detect`` for ONE image (class_logits (A, C+1), box_offsets (A, 4)), with every step.

    The settings are ``detect``'s. ``detect_steps(...).final`` equals ``detect(...)[0]``.
    """
    class_logits, box_offsets = checks.image_outputs(
        class_logits,
        box_offsets,
        score_threshold,
        iou_threshold,
        top_k,
        class_agnostic,
        fast,
        candidates_per_class,
    )
    # 1) Decode every anchor's offsets into a box, clipped to the image.
    boxes = decode(anchors, box_offsets, variances).clamp(0, 1)  # (A, 4)
    # 2) Softmax: class scores -> probabilities.
    probabilities = torch.softmax(class_logits, dim=-1)  # (A, C+1)
    # 3) Every (class, anchor) pair above the threshold is a candidate; class-major order, like
    #    torchvision's. Background's column is never a detection.
    object_scores = probabilities[:, 1:].T  # (C, A)
    if candidates_per_class is not None:  # only the best few of each class
        object_scores = _best_of_each_row(object_scores, candidates_per_class)
    class_index, anchor = torch.nonzero(object_scores > score_threshold, as_tuple=True)
    labels = class_index + 1
    candidates = Detections(boxes[anchor], object_scores[class_index, anchor], labels)
    # 4) NMS per class: different classes never suppress each other, unless class-agnostic.
    groups = torch.zeros_like(labels) if class_agnostic else labels
    run_nms = torchvision.ops.batched_nms if fast else batched_nms
    kept = run_nms(candidates.boxes, candidates.scores, groups, iou_threshold)
    # Ties between classes may come in another order from torchvision (above 1000 boxes it
    # merges the classes with an unstable sort): order them by index, as batched_nms does.
    kept = _best_first(kept, candidates.scores)
    # 5) The top_k best survivors of the image.
    final = Detections(*(field[kept[:top_k]] for field in candidates))
    return DetectionSteps(boxes, probabilities, candidates, anchor, kept, final)


def _best_of_each_row(scores: Tensor, count: int) -> Tensor:
    """``scores`` (C, A) with all but the ``count`` best of each row set to 0."""
    best = scores.topk(min(count, scores.shape[1]), dim=1).indices  # (C, count)
    return torch.zeros_like(scores).scatter_(1, best, scores.gather(1, best))
