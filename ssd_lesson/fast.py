"""Speed-ups: engineering, not SSD.

Nothing in this module is part of the SSD algorithm. The lessons teach the readable versions in
``ssd_lesson.matching`` and ``ssd_lesson.encoding``; training uses the versions here, which give
exactly the same results (``tests/test_fast.py`` checks them against the readable ones and
against torchvision) but work on a whole batch at once:

* ``match_anchors_batch``: ``match_anchors`` for every image of a batch. On the CPU it loops over
  the images: each image's IoU table (10 objects x 8732 anchors, 350 kB) stays in the cache, and
  the loop took half the time of one padded (32, 10, 8732) table here. Elsewhere it pads the
  images' boxes to one tensor and matches them all in one go (``match_anchors_padded``), because
  on a GPU one big kernel beats many small ones.
* ``build_targets``: ``encoding.build_targets`` without its Python loop: the positives of every
  image are found and encoded in one call.

Both rules of matching are written here again, in a form that suits batches: the forced match
uses ``scatter_reduce`` with "amax", which gives a shared best anchor to the later object, as
the readable version's loop does, without a loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.boxes import box_iou
from ssd_lesson.encoding import VARIANCES, TrainingTargets, encode
from ssd_lesson.matching import BACKGROUND, BACKGROUND_CLASS, IOU_THRESHOLD


def pad_boxes(gt_boxes_list) -> tuple[Tensor, Tensor]:
    """Stack a list of (G_i, 4) box tensors into (B, G, 4) with zero padding and a (B, G) mask."""
    gt_boxes_list = checks.per_image(gt_boxes_list, "gt_boxes_list")
    boxes = [checks.boxes(b, "gt_boxes", fractions=False) for b in gt_boxes_list]
    most = max((len(b) for b in boxes), default=0)
    dtype = boxes[0].dtype if boxes else torch.float32
    padded = torch.zeros(len(boxes), most, 4, dtype=dtype)
    mask = torch.zeros(len(boxes), most, dtype=torch.bool)
    for i, b in enumerate(boxes):
        padded[i, : len(b)] = b
        mask[i, : len(b)] = True
    return padded, mask


def match_anchors_padded(anchors, gt_boxes, gt_mask, iou_threshold=IOU_THRESHOLD) -> Tensor:
    """Both matching rules for B images at once. Returns (B, A) int64, as ``match_anchors``.

    Args:
        anchors (Tensor[A, 4]): xyxy fractions, shared by every image.
        gt_boxes (Tensor[B, G, 4]): xyxy fractions, padded (see ``pad_boxes``).
        gt_mask (Tensor[B, G], bool): True for real boxes, False for padding.
    """
    anchors, gt_boxes, gt_mask, iou_threshold = checks.padded_match_inputs(
        anchors, gt_boxes, gt_mask, iou_threshold
    )
    return _match_padded(anchors, gt_boxes, gt_mask, iou_threshold)


def _match_padded(anchors: Tensor, gt_boxes: Tensor, gt_mask: Tensor, iou_threshold) -> Tensor:
    """``match_anchors_padded`` on checked inputs."""
    num_images, num_gt = gt_mask.shape
    if num_gt == 0:
        return torch.full((num_images, len(anchors)), BACKGROUND, device=anchors.device)
    iou = box_iou(gt_boxes.reshape(-1, 4), anchors).reshape(num_images, num_gt, -1)  # (B, G, A)
    iou = iou.masked_fill(~gt_mask[..., None], -1.0)  # padded objects never win
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=1)  # (B, A)
    matched = torch.where(best_iou_for_each_anchor >= iou_threshold, best_gt_for_each_anchor, -1)
    # Forced matches; padded objects are sent to a scratch column A, dropped after.
    best_anchor_for_each_gt = iou.argmax(dim=2).masked_fill(~gt_mask, len(anchors))  # (B, G)
    gt_index = torch.arange(num_gt, device=anchors.device).expand(num_images, num_gt)
    matched = torch.cat((matched, matched.new_full((num_images, 1), BACKGROUND)), dim=1)
    matched.scatter_reduce_(1, best_anchor_for_each_gt, gt_index, reduce="amax", include_self=False)
    return matched[:, : len(anchors)]


def match_anchors_batch(anchors, gt_boxes_list, iou_threshold=IOU_THRESHOLD) -> Tensor:
    """``match_anchors`` for a batch given as a list of (G_i, 4) boxes. Returns (B, A) int64."""
    anchors, _, iou_threshold = checks.match_inputs(anchors, [], iou_threshold)
    gt_list = checks.per_image(gt_boxes_list, "gt_boxes_list")
    gt_list = [checks.ground_truth(gt).to(anchors) for gt in gt_list]
    if anchors.device.type != "cpu":  # one big kernel beats many small ones
        padded, mask = pad_boxes(gt_list)
        return _match_padded(anchors, padded.to(anchors), mask.to(anchors.device), iou_threshold)
    # On the CPU one image at a time: each image's IoU table stays in the cache.
    matches = [_match_image(anchors, gt, iou_threshold) for gt in gt_list]
    if not matches:
        return torch.zeros(0, len(anchors), dtype=torch.long)
    return torch.stack(matches)


def _match_image(anchors: Tensor, gt: Tensor, iou_threshold: float) -> Tensor:
    """Both rules for one image, inputs checked: (A, 4), (G, 4) -> (A,)."""
    if len(gt) == 0:
        return torch.full((len(anchors),), BACKGROUND, device=anchors.device)
    iou = box_iou(gt, anchors)  # (G, A)
    best_iou_for_each_anchor, best_gt_for_each_anchor = iou.max(dim=0)  # (A,)
    matched = torch.where(best_iou_for_each_anchor >= iou_threshold, best_gt_for_each_anchor, -1)
    gt_index = torch.arange(len(gt), device=anchors.device)
    return matched.scatter_reduce_(0, iou.argmax(dim=1), gt_index, "amax", include_self=False)


@torch.no_grad()
def build_targets(
    anchors,
    gt_boxes_list,
    gt_labels_list,
    iou_threshold: float = IOU_THRESHOLD,
    variances: Sequence[float] = VARIANCES,
) -> TrainingTargets:
    """``encoding.build_targets`` for a batch without a loop over images (same arguments, same
    result)."""
    anchors, boxes, labels = checks.batch_targets_inputs(anchors, gt_boxes_list, gt_labels_list)
    matched = match_anchors_batch(anchors, boxes, iou_threshold)  # (B, A)
    # All images' boxes and labels in one tensor each; image b's start at row first[b].
    all_boxes = torch.cat([anchors.new_zeros(0, 4), *boxes])  # (sum G_i, 4)
    all_labels = torch.cat([torch.zeros(0, dtype=torch.long), *labels]).to(anchors.device)
    first = torch.tensor([0] + [len(b) for b in boxes[:-1]], device=anchors.device).cumsum(0)
    # Only the positives, a few hundred of the B x A pairs, are encoded; the rest stay 0.
    image, anchor = torch.nonzero(matched != BACKGROUND, as_tuple=True)  # (P,) each
    rows = first[image] + matched[image, anchor]  # (P,) each positive's object
    offsets = anchors.new_zeros(*matched.shape, 4)  # (B, A, 4)
    offsets[image, anchor] = encode(anchors[anchor], all_boxes[rows], variances)
    target_labels = torch.full_like(matched, BACKGROUND_CLASS)
    target_labels[image, anchor] = all_labels[rows]
    return TrainingTargets(target_labels, offsets, matched)
