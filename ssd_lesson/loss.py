"""The SSD loss: how wrong the network's offsets and class scores are, anchor by anchor.

    loss = (classification + localization) / N,    N = number of positive anchors in the batch

* **Localization**: Smooth L1 between predicted and target offsets, on positive anchors only.
  A background anchor has no object, so it has no box to fit.
* **Classification**: softmax cross-entropy, on every positive anchor plus the *hardest*
  negatives: in each image the background anchors the network most wrongly thinks hold an
  object, at most ``neg_pos_ratio`` (3 in the paper) per positive. Without this the thousands of
  easy background anchors would swamp the few object anchors.

Matching and targets come from ``ssd_lesson.encoding.build_targets`` and carry no gradient; the
gradient reaches only the two predictions. The result equals torchvision's
``SSD.compute_loss`` (both terms are divided by ``max(1, N)``, negatives are mined per image) as
long as every image has at least 3 negatives per positive, as real images do. Below that,
torchvision does not cap the quota and counts some positives again as negatives; we do not.
The paper's loss is (L_conf + α L_loc) / N with α = 1: we leave the α out.

Images with no objects. The paper sets the loss to 0 when N = 0; torchvision mines
``3 × 0 = 0`` negatives in such an image, so it adds nothing to the loss. ssd-lesson does the
same by default, so that its numbers equal torchvision's and the paper's: a batch with no objects
at all gives a loss of exactly 0, with zero gradients, never NaN. The cost is that an
object-free image teaches the classifier nothing. ``min_negatives`` changes that: each image then
contributes at least that many of its hardest negatives, objects or not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssd_lesson import checks
from ssd_lesson.matching import BACKGROUND_CLASS

# The paper: "we sort them using the highest confidence loss for each default box and pick the
# top ones so that the ratio between the negatives and positives is at most 3:1".
NEG_POS_RATIO = 3


@dataclass(frozen=True)
class LossResult:
    """The SSD loss of one batch, its two parts, and which anchors took part."""

    total: Tensor  # scalar: localization + classification; call total.backward()
    localization: Tensor  # scalar: Smooth L1 over positives' offsets / N
    classification: Tensor  # scalar: cross-entropy over positives + mined negatives / N
    num_positives: int  # N before the max(1, N): positive anchors in the whole batch
    positives: Tensor  # (B, A) bool: anchors matched to an object
    mined_negatives: Tensor  # (B, A) bool: the hardest background anchors, per image
    anchor_class_loss: Tensor  # (B, A): every anchor's cross-entropy, detached (for pictures)

    def __repr__(self) -> str:
        return (
            f"LossResult(total={self.total.item():.4f}, localization="
            f"{self.localization.item():.4f}, classification={self.classification.item():.4f}, "
            f"num_positives={self.num_positives}, "
            f"num_mined_negatives={int(self.mined_negatives.sum())})"
        )


def ssd_loss(
    class_logits: Tensor,
    box_offsets: Tensor,
    target_labels: Tensor,
    target_offsets: Tensor,
    neg_pos_ratio: float = NEG_POS_RATIO,
    min_negatives: int = 0,
) -> LossResult:
    """The SSD training loss of a batch.

    Args:
        class_logits (Tensor[B, A, C+1]): raw class scores; column 0 is background.
        box_offsets (Tensor[B, A, 4]): predicted (t_x, t_y, t_w, t_h), scaled like the targets.
        target_labels (Tensor[B, A], int): 0 = background, 1..C = object class.
        target_offsets (Tensor[B, A, 4]): encoded offsets; only positives' rows are used.
        neg_pos_ratio: at most this many mined negatives per positive, per image (paper: 3).
        min_negatives: at least this many mined negatives per image, even with no positives
            (default 0, as in the paper and torchvision).

    Returns:
        LossResult; ``total`` is what training minimises.
    """
    checks.loss_inputs(class_logits, box_offsets, target_labels, target_offsets)
    positives = target_labels > BACKGROUND_CLASS  # (B, A)
    num_positives = int(positives.sum())
    n = max(1, num_positives)  # N = 0 would divide by zero

    # 1) Localization: Smooth L1 on the positives' offsets only.
    localization = F.smooth_l1_loss(
        box_offsets[positives], target_offsets[positives], reduction="sum"
    )

    # 2) Classification: cross-entropy of every anchor, then keep positives + hardest negatives.
    num_classes = class_logits.shape[-1]
    anchor_loss = F.cross_entropy(
        class_logits.reshape(-1, num_classes), target_labels.reshape(-1).long(), reduction="none"
    ).view_as(target_labels)  # (B, A)
    mined = hard_negatives(anchor_loss.detach(), positives, neg_pos_ratio, min_negatives)
    classification = anchor_loss[positives | mined].sum()

    return LossResult(
        total=(localization + classification) / n,
        localization=localization / n,
        classification=classification / n,
        num_positives=num_positives,
        positives=positives,
        mined_negatives=mined,
        anchor_class_loss=anchor_loss.detach(),
    )


def hard_negatives(
    anchor_loss: Tensor, positives: Tensor, neg_pos_ratio: float = NEG_POS_RATIO, min_negatives=0
) -> Tensor:
    """Per image, the negatives with the highest loss: a (B, A) bool mask.

    Args:
        anchor_loss (Tensor[B, A]): every anchor's classification loss.
        positives (Tensor[B, A], bool): anchors matched to an object.
        neg_pos_ratio: at most this many negatives per positive (paper: 3).
        min_negatives: at least this many per image, if it has them (default 0).

    Image b gets ``min(max(floor(neg_pos_ratio × positives_b), min_negatives), negatives_b)``
    of them; a positive is never chosen. Among negatives with exactly equal loss, which ones are
    chosen is unspecified (the loss is the same either way).
    """
    neg_pos_ratio, min_negatives = checks.mining_inputs(
        anchor_loss, positives, neg_pos_ratio, min_negatives
    )
    # 1) How many negatives each image keeps: neg_pos_ratio per positive, at least
    #    min_negatives, at most all it has. (In float64, like Python: in float32, 100 × 0.29
    #    rounds up to 29 instead of 28.99..., one negative too many.)
    num_positives = positives.sum(dim=1, keepdim=True)  # (B, 1)
    quota = (num_positives.double() * neg_pos_ratio).floor().clamp(min=min_negatives)
    quota = torch.minimum(quota, positives.shape[1] - num_positives)  # (B, 1)
    # 2) Per image, the `quota` anchors with the highest loss. Positives get -inf, so they come
    #    last and are never among them. topk finds the k largest without sorting all A.
    negative_loss = anchor_loss.masked_fill(positives, float("-inf"))  # (B, A)
    most = int(quota.max()) if len(quota) else 0
    hardest = negative_loss.topk(most, dim=1).indices  # (B, most): anchor indices, hardest first
    keep = torch.arange(most, device=quota.device) < quota  # (B, most): the first quota of each
    return torch.zeros_like(positives).scatter_(1, hardest, keep)
