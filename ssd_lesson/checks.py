"""Input checks: engineering, not SSD.

Every public function of ssd-lesson starts with one line that calls a function of this module.
Each check turns friendly input (lists, NumPy numbers, integer tensors) into what the algorithm
needs, or raises ``ValueError`` saying what was expected and what arrived, so that a learner's
mistake never becomes a NaN, a silent wrong answer or a crash from deep inside torch.

The algorithms themselves live in the concept modules (boxes, anchors, matching, encoding, loss,
inference, metrics); nothing here is part of SSD. This module imports nothing from the package.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

# Anchors near the image border stick out of the image by up to half their size, so fractions a
# little outside [0, 1] are legal. Pixel coordinates are tens or hundreds: anything beyond this
# margin is almost certainly pixels passed where fractions were expected.
FRACTION_MARGIN = 0.5
# Ground-truth boxes lie inside the image: allow only annotations rounded at the border.
GROUND_TRUTH_MARGIN = 0.01

# One message for every place that sees NaN or inf coming out of a network.
DIVERGED = "training has probably diverged: try a lower learning rate"


# ---------------------------------------------------------------------------------------------
# Numbers


def number(
    value,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open=False,
    high_open=False,
) -> float:
    """A real number (int, float, NumPy scalar, 0-d tensor) in the interval, as a float."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")
    real = float(value)
    inside = (low < real if low_open else low <= real) and (
        real < high if high_open else real <= high
    )
    if math.isnan(real) or not inside:
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")
    return real


def integer(value, name: str, minimum: int = 0, *, optional: bool = False) -> int | None:
    """An integer (int, NumPy integer) >= minimum, or None when ``optional``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"expected {name} as {allowed}, got {value!r}")
    return int(value)


def flag(value, name: str) -> bool:
    """True or False (a NumPy bool too); 0, 1 and strings are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"expected {name} as True or False, got {value!r}")
    return bool(value)


def fraction(value, name: str) -> float:
    """An IoU threshold and the like: a number in (0, 1]."""
    return number(value, name, 0.0, 1.0, low_open=True)


# ---------------------------------------------------------------------------------------------
# Tensors


def tensor(value, name: str, shape: str) -> Tensor:
    """``value`` as a tensor (lists and arrays are converted), or a ValueError naming ``shape``."""
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"expected {name} as a tensor of shape {shape}, got {value!r}") from err


def floating(value, name: str, shape: str) -> Tensor:
    """A floating-point tensor: integers are converted to float32, complex numbers refused."""
    value = tensor(value, name, shape)
    if value.dtype.is_complex or value.dtype == torch.bool:
        raise ValueError(f"expected {name} as real numbers, got dtype {value.dtype}")
    return value if value.is_floating_point() else value.float()


def finite(value: Tensor, name: str, hint: str = DIVERGED) -> Tensor:
    """Raise if ``value`` holds NaN or inf; ``hint`` says what probably went wrong."""
    # One sum is NaN or inf if any element is; only then look closer (a huge sum may overflow).
    total = value.sum(dtype=torch.float64 if value.dtype == torch.float64 else torch.float32)
    if not torch.isfinite(total) and not torch.isfinite(value).all():
        raise ValueError(f"expected finite {name}, got NaN or inf; {hint}")
    return value


def shape(value: Tensor, name: str, expected: tuple, why: str = "") -> Tensor:
    """Raise unless ``value.shape == expected`` (None in ``expected`` matches any size)."""
    got = tuple(value.shape)
    if len(got) != len(expected) or any(
        e is not None and e != g for e, g in zip(expected, got, strict=False)
    ):
        want = str(tuple("*" if e is None else e for e in expected)).replace("'", "")
        raise ValueError(f"expected {name} of shape {want}{why}, got {got}")
    return value


def integer_labels(
    value, name: str, count: int | None = None, low: int = 1, high: int | None = None
) -> Tensor:
    """Class labels (int64, 1-D): one per box when ``count`` is given, each in low..high."""
    value = tensor(value, name, "(N,)")
    if value.numel() == 0:
        value = value.reshape(0).long()  # no objects, however it was written
    if value.is_floating_point() or value.dtype.is_complex or value.dtype == torch.bool:
        raise ValueError(f"expected integer {name}, got dtype {value.dtype}")
    if value.ndim != 1 or (count is not None and value.shape[0] != count):
        want = f"({count},), one per box" if count is not None else "(N,)"
        raise ValueError(f"expected {name} of shape {want}, got {tuple(value.shape)}")
    if value.numel() and (value.min() < low or (high is not None and value.max() > high)):
        classes = f"{low}..{high if high is not None else 'C'}"
        got = (
            value.tolist() if value.numel() <= 10 else f"values from {value.min()} to {value.max()}"
        )
        hint = (
            "0 is background: if your classes start at 0, add 1" if low == 1 else "0 = background"
        )
        raise ValueError(f"expected {name} in {classes}, got {got}; {hint}")
    return value.long()


# ---------------------------------------------------------------------------------------------
# Boxes


def boxes(
    value,
    name: str = "boxes",
    *,
    fractions: bool = True,
    positive_area: bool = False,
    margin: float = FRACTION_MARGIN,
) -> Tensor:
    """Boxes in xyxy format as a float tensor (N, 4), checked.

    fractions: coordinates are fractions of the image, at most ``margin`` outside [0, 1]
    (``FRACTION_MARGIN`` for anchors, which may stick out; ``GROUND_TRUTH_MARGIN`` for objects).
    positive_area: every box has a width and a height above zero.
    """
    value = floating(value, name, "(N, 4)")
    if value.numel() == 0:
        value = value.reshape(0, 4)  # "no boxes", however it was written: [], (0,), (0, 4)
    shape(value, name, (None, 4), " in xyxy format")
    if value.numel() == 0:
        return value
    # One cheap reduction decides whether anything is wrong; only then find the row to blame.
    lowest, highest, min_side = torch.stack(
        (value.amin(), value.amax(), (value[:, 2:] - value[:, :2]).amin())
    ).tolist()
    fine = all(math.isfinite(v) for v in (lowest, highest, min_side))
    fine = fine and (min_side > 0 if positive_area else min_side >= 0)
    if fractions:
        fine = fine and lowest >= -margin and highest <= 1 + margin
    if not fine:
        _blame_row(value, name, fractions, positive_area, margin)
    return value


def ground_truth(value, name: str = "gt_boxes") -> Tensor:
    """Objects: xyxy fractions inside the image (up to rounding), positive width and height."""
    return boxes(value, name, positive_area=True, margin=GROUND_TRUTH_MARGIN)


def anchors(value, name: str = "anchors") -> Tensor:
    """Anchors: at least one, xyxy fractions (they may stick out of the image), positive area."""
    value = boxes(value, name, positive_area=True)
    if value.shape[0] == 0:
        raise ValueError(f"expected at least one anchor, got {name} of shape (0, 4)")
    return value


def _blame_row(value: Tensor, name: str, fractions: bool, positive_area: bool, margin) -> None:
    bad = ~torch.isfinite(value).all(dim=1)
    if bad.any():
        row = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"expected finite {name}, got NaN or inf in row {row} = {_row(value, row)}"
        )
    sides = value[:, 2:] - value[:, :2]
    for wrong, problem in (
        ((sides < 0).any(dim=1), "in xyxy format with x2 >= x1 and y2 >= y1"),
        ((sides <= 0).any(dim=1) & positive_area, "with positive width and height"),
    ):
        if wrong.any():
            row = int(torch.nonzero(wrong)[0])
            hint = "is it in cxcywh format, or are two corners swapped?"
            raise ValueError(
                f"expected {name} {problem}, got row {row} = {_row(value, row)}; "
                f"{hint if 'xyxy' in problem else 'it has zero area'}"
            )
    if fractions:
        too_far = ((value < -margin) | (value > 1 + margin)).any(dim=1)
        row = int(torch.nonzero(too_far)[0])
        if value[row].abs().max() > 2:
            hint = "these look like pixels: divide by the image width and height"
        else:
            hint = f"coordinates may lie at most {margin} outside [0, 1]: clip them to the image"
        raise ValueError(
            f"expected {name} as fractions of the image (0..1), got row {row} = "
            f"{_row(value, row)}; {hint}"
        )


def cxcywh(value, name: str = "boxes_cxcywh") -> Tensor:
    """Boxes in cxcywh format as a float tensor (N, 4): finite, width and height >= 0."""
    value = floating(value, name, "(N, 4)")
    if value.numel() == 0:
        value = value.reshape(0, 4)
    shape(value, name, (None, 4), " in cxcywh format")
    finite(value, name, "a box needs four real numbers")
    if (value[:, 2:] < 0).any():
        row = int(torch.nonzero((value[:, 2:] < 0).any(dim=1))[0])
        raise ValueError(
            f"expected {name} with width and height >= 0, got row {row} = "
            f"{_row(value, row)}; is it in xyxy format?"
        )
    return value


def iou_inputs(boxes1, boxes2) -> tuple[Tensor, Tensor]:
    """Two sets of xyxy boxes in one unit (fractions or pixels), in one floating dtype."""
    boxes1 = boxes(boxes1, "boxes1", fractions=False)
    boxes2 = boxes(boxes2, "boxes2", fractions=False)
    dtype = torch.promote_types(boxes1.dtype, boxes2.dtype)
    return boxes1.to(dtype), boxes2.to(dtype)


# ---------------------------------------------------------------------------------------------
# Anchor layouts


def paper_scales_inputs(num_maps, s_min, s_max) -> tuple[int, float, float]:
    num_maps = integer(num_maps, "num_maps", 1)
    s_min = number(s_min, "s_min", 0.0, 10.0, low_open=True)
    s_max = number(s_max, "s_max", s_min, 10.0)
    return num_maps, s_min, s_max


def anchor_layout(feature_map_sizes, scales, ratios, clip, steps=None) -> tuple[list, ...]:
    """make_anchors' inputs -> (sizes as (rows, cols) pairs, scales, ratios, steps or Nones)."""
    flag(clip, "clip")
    sizes = feature_map_sizes_list(feature_map_sizes)
    ratios = aspect_ratios(ratios)
    if len(ratios) != len(sizes):
        raise ValueError(
            f"expected one list of aspect ratios per feature map ({len(sizes)}), got {len(ratios)}"
        )
    return sizes, scale_list(scales, len(sizes)), ratios, anchor_steps(steps, sizes)


def feature_map_sizes_list(feature_map_sizes) -> list[tuple[int, int]]:
    example = "such as [38, 19] or [(38, 38), (19, 19)]"
    if isinstance(feature_map_sizes, (str, bytes)) or not _is_sequence(feature_map_sizes):
        raise ValueError(
            f"expected a list of feature map sizes {example}, got {feature_map_sizes!r}"
        )
    if len(feature_map_sizes) == 0:
        raise ValueError(f"expected at least one feature map size {example}, got none")
    sizes = []
    for size in feature_map_sizes:
        pair = (size, size) if isinstance(size, numbers.Integral) else size
        if (
            not _is_sequence(pair)
            or len(pair) != 2
            or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in pair
            )
        ):
            raise ValueError(
                f"expected each feature map size as an integer >= 1 or (rows, cols), got {size!r}"
            )
        sizes.append((int(pair[0]), int(pair[1])))
    return sizes


def scale_list(scales, num_maps: int) -> list[float]:
    if isinstance(scales, (str, bytes)) or not _is_sequence(scales):
        raise ValueError(
            f"expected scales as a list of {num_maps + 1} numbers (fractions of the "
            f"image side), got {scales!r}"
        )
    if len(scales) != num_maps + 1:
        raise ValueError(
            f"expected {num_maps + 1} scales for {num_maps} feature maps (one extra for the last "
            f"map's extra square box), got {len(scales)}"
        )
    scales = [number(s, "each scale", 0.0, math.inf, low_open=True, high_open=True) for s in scales]
    if max(scales) > 10:
        raise ValueError(
            f"expected scales as fractions of the image side (around 0.1..1), got {scales}; "
            "are these pixels?"
        )
    return scales


def aspect_ratios(value) -> list[list[float]]:
    if isinstance(value, (str, bytes)) or not _is_sequence(value):
        raise ValueError(
            f"expected one list of extra aspect ratios per feature map, such as [[2], [2, 3]], "
            f"got {value!r}"
        )
    checked = []
    for k, ratios in enumerate(value):
        if isinstance(ratios, (str, bytes)) or not _is_sequence(ratios):
            raise ValueError(
                f"expected a list of extra aspect ratios per feature map, got {ratios!r} for map "
                f"{k}; write [[2], [2, 3]] rather than [2, 3]"
            )
        ratios = [
            number(r, f"aspect ratios of map {k}", 0, math.inf, low_open=True, high_open=True)
            for r in ratios
        ]
        if any(math.isclose(r, 1.0) for r in ratios):
            raise ValueError(
                f"expected extra aspect ratios other than 1 (the squares are always "
                f"included), got {ratios} for map {k}"
            )
        # r and 1/r give the same pair of boxes, so either repeat would duplicate anchors.
        keys = [round(max(r, 1 / r), 9) for r in ratios]
        if len(set(keys)) != len(keys):
            raise ValueError(
                f"expected each aspect ratio once per map (r already brings 1/r), got {ratios} "
                f"for map {k}: that would make duplicate anchors"
            )
        checked.append(ratios)
    return checked


def _is_sequence(value) -> bool:
    try:
        len(value)
        iter(value)
    except TypeError:
        return False
    return not isinstance(value, Tensor) or value.ndim > 0


# ---------------------------------------------------------------------------------------------
# Matching and encoding


def match_inputs(anchors_, gt_boxes, iou_threshold) -> tuple[Tensor, Tensor, float]:
    """match_anchors' inputs: anchors, ground truth on the anchors' device, the threshold."""
    iou_threshold = fraction(iou_threshold, "iou_threshold")
    anchors_ = anchors(anchors_)
    return anchors_, ground_truth(gt_boxes).to(anchors_), iou_threshold


def variances(value) -> tuple[float, float]:
    """Two divisors (centre, size) in (0, 1], such as (0.1, 0.2)."""
    # torchvision's BoxCoder weights (10, 10, 5, 5) are their inverses. Far above 1, decode
    # would overflow to NaN.
    message = (
        f"expected variances as two numbers (centre, size) in (0, 1], such as (0.1, 0.2), got "
        f"{value!r}; torchvision's BoxCoder weights (10, 10, 5, 5) are 1 / variances"
    )
    if isinstance(value, (str, bytes)) or not _is_sequence(value) or len(value) != 2:
        raise ValueError(message)
    try:
        return tuple(fraction(v, "variances") for v in value)
    except ValueError as err:
        raise ValueError(message) from err


def encode_inputs(anchors_, gt_boxes, variances_) -> tuple[Tensor, Tensor, tuple[float, float]]:
    anchors_ = boxes(anchors_, "anchors", positive_area=True)
    gt = ground_truth(gt_boxes).to(anchors_.device)
    if gt.shape != anchors_.shape:
        raise ValueError(
            f"expected one ground-truth box per anchor, got anchors of shape "
            f"{tuple(anchors_.shape)} and gt_boxes of shape {tuple(gt.shape)}"
        )
    dtype = torch.promote_types(anchors_.dtype, gt.dtype)
    return anchors_.to(dtype), gt.to(dtype), variances(variances_)


def decode_inputs(anchors_, offsets, variances_) -> tuple[Tensor, Tensor, tuple[float, float]]:
    anchors_ = boxes(anchors_, "anchors", positive_area=True)
    offsets = floating(offsets, "offsets", "(A, 4)")
    if offsets.ndim not in (2, 3) or offsets.shape[-2:] != (len(anchors_), 4):
        raise ValueError(
            f"expected offsets of shape ({len(anchors_)}, 4) or (B, {len(anchors_)}, 4), one row "
            f"per anchor, got {tuple(offsets.shape)}"
        )
    finite(offsets, "offsets", "if they come from the network, " + DIVERGED)
    return anchors_.to(offsets), offsets, variances(variances_)


def per_image(value, name: str) -> list:
    """A list with one entry per image (a tuple or any sequence will do), as a list."""
    if isinstance(value, (str, bytes)) or not _is_sequence(value):
        raise ValueError(
            f"expected {name} as a list with one tensor per image, got {type(value).__name__}"
        )
    return list(value)


def batch_targets_inputs(anchors_, gt_boxes_list, gt_labels_list) -> tuple[Tensor, list, list]:
    """A batch's anchors, boxes and labels: lists of one (G_i, 4) and one (G_i,) per image."""
    anchors_ = anchors(anchors_)
    gt_boxes_list = per_image(gt_boxes_list, "gt_boxes_list")
    gt_labels_list = per_image(gt_labels_list, "gt_labels_list")
    if len(gt_boxes_list) != len(gt_labels_list):
        raise ValueError(
            f"expected one labels tensor per image, got {len(gt_boxes_list)} box tensors and "
            f"{len(gt_labels_list)} label tensors"
        )
    gt_boxes_list = [ground_truth(b).to(anchors_) for b in gt_boxes_list]
    gt_labels_list = [
        integer_labels(lab, "gt_labels", count=len(b))
        for b, lab in zip(gt_boxes_list, gt_labels_list, strict=True)
    ]
    return anchors_, gt_boxes_list, gt_labels_list


def padded_match_inputs(anchors_, gt_boxes, gt_mask, iou_threshold):
    iou_threshold = fraction(iou_threshold, "iou_threshold")
    anchors_ = anchors(anchors_)
    gt_boxes = floating(gt_boxes, "gt_boxes", "(B, G, 4)").to(anchors_)
    gt_mask = tensor(gt_mask, "gt_mask", "(B, G)").to(anchors_.device)
    shape(gt_boxes, "gt_boxes", (None, None, 4))
    if gt_mask.dtype != torch.bool or gt_mask.shape != gt_boxes.shape[:2]:
        raise ValueError(
            f"expected gt_mask as a bool tensor of shape {tuple(gt_boxes.shape[:2])}, "
            f"got {gt_mask.dtype} of shape {tuple(gt_mask.shape)}"
        )
    ground_truth(gt_boxes[gt_mask])
    # Padding may hold anything (the mask hides it): make it harmless zero-area boxes.
    gt_boxes = gt_boxes.masked_fill(~gt_mask[..., None], 0.0)
    return anchors_, gt_boxes, gt_mask, iou_threshold


# ---------------------------------------------------------------------------------------------
# The loss


def loss_inputs(class_logits, box_offsets, target_labels, target_offsets) -> None:
    """ssd_loss's four tensors: shapes that agree, labels in range, everything finite."""
    for name, value in (
        ("class_logits", class_logits),
        ("box_offsets", box_offsets),
        ("target_labels", target_labels),
        ("target_offsets", target_offsets),
    ):
        if not isinstance(value, Tensor):
            raise ValueError(f"expected {name} as a tensor, got {type(value).__name__}")
    if class_logits.ndim != 3 or class_logits.shape[-1] < 2:
        raise ValueError(
            f"expected class_logits of shape (B, A, C+1) with C+1 >= 2 (background + classes), "
            f"got {tuple(class_logits.shape)}"
        )
    batch, num_anchors, num_scores = class_logits.shape
    why = f" to match class_logits {tuple(class_logits.shape)}"
    shape(box_offsets, "box_offsets", (batch, num_anchors, 4), why)
    shape(target_offsets, "target_offsets", (batch, num_anchors, 4), why)
    integer_labels(target_labels.reshape(-1), "target_labels", low=0, high=num_scores - 1)
    shape(target_labels, "target_labels", (batch, num_anchors), why)
    for name, value in (
        ("class_logits", class_logits),
        ("box_offsets", box_offsets),
        ("target_offsets", target_offsets),
    ):
        if not value.is_floating_point():
            raise ValueError(f"expected floating-point {name}, got dtype {value.dtype}")
    if target_offsets.requires_grad:
        raise ValueError(
            "expected target_offsets without gradient: targets are fixed answers, not "
            "predictions; build them with build_targets or call .detach()"
        )
    finite(class_logits, "class_logits")
    finite(box_offsets, "box_offsets")
    finite(
        target_offsets,
        "target_offsets",
        "is a ground-truth box degenerate (zero width or height, or x1 > x2)?",
    )


def mining_inputs(anchor_loss, positives, neg_pos_ratio, min_negatives) -> tuple[float, int]:
    """hard_negatives' inputs: (B, A) losses and positives; the ratio and the minimum."""
    for name, value in (("anchor_loss", anchor_loss), ("positives", positives)):
        if not isinstance(value, Tensor) or value.ndim != 2:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"expected {name} as a tensor of shape (B, A), got {got}")
    if positives.dtype != torch.bool or positives.shape != anchor_loss.shape:
        raise ValueError(
            f"expected positives as a bool tensor of shape "
            f"{tuple(anchor_loss.shape)}, like anchor_loss, got {positives.dtype} "
            f"of shape {tuple(positives.shape)}"
        )
    if not anchor_loss.is_floating_point():
        raise ValueError(f"expected floating-point anchor_loss, got dtype {anchor_loss.dtype}")
    finite(anchor_loss, "anchor_loss")
    ratio = number(neg_pos_ratio, "neg_pos_ratio", 0.0, math.inf, high_open=True)
    return ratio, integer(min_negatives, "min_negatives", 0)


# ---------------------------------------------------------------------------------------------
# Inference


def nms_inputs(boxes_, scores, iou_threshold) -> tuple[Tensor, Tensor, float]:
    """Boxes (N, 4) xyxy in any unit, one finite score per box, a threshold in [0, 1]."""
    boxes_ = boxes(boxes_, "boxes", fractions=False)
    scores = floating(scores, "scores", "(N,)")
    if scores.numel() == 0:
        scores = scores.reshape(0)
    shape(scores, "scores", (len(boxes_),), ", one per box")
    finite(scores, "scores", "a score must be a real number")
    return boxes_, scores.to(boxes_.device), number(iou_threshold, "iou_threshold", 0.0, 1.0)


def batched_nms_inputs(boxes_, scores, class_ids, iou_threshold):
    boxes_, scores, iou_threshold = nms_inputs(boxes_, scores, iou_threshold)
    class_ids = integer_labels(class_ids, "class_ids", count=len(boxes_), low=-(2**62))
    return boxes_, scores, class_ids.to(boxes_.device), iou_threshold


def _outputs(class_logits, box_offsets, batch: bool) -> tuple[Tensor, Tensor]:
    dims, logits_shape, offsets_shape = (
        (3, "(B, A, C+1)", "(B, A, 4)") if batch else (2, "(A, C+1)", "(A, 4)")
    )
    for name, value, want in (
        ("class_logits", class_logits, logits_shape),
        ("box_offsets", box_offsets, offsets_shape),
    ):
        if not isinstance(value, Tensor) or value.ndim != dims:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            hint = "" if batch else "; for a batch use detect"
            raise ValueError(f"expected {name} of shape {want}, got {got}{hint}")
        if not value.is_floating_point():
            raise ValueError(f"expected floating-point {name}, got dtype {value.dtype}")
    if class_logits.shape[-1] < 2:
        raise ValueError(
            f"expected class_logits of shape {logits_shape} with C+1 >= 2 "
            f"(background + classes), got {tuple(class_logits.shape)}"
        )
    shape(
        box_offsets,
        "box_offsets",
        (*class_logits.shape[:-1], 4),
        f" to match class_logits {tuple(class_logits.shape)}",
    )
    finite(class_logits, "class_logits")
    finite(box_offsets, "box_offsets")
    # Half precision is fine on a GPU, but the CPU's NMS works in float32 and up.
    if class_logits.dtype in (torch.float16, torch.bfloat16):
        class_logits, box_offsets = class_logits.float(), box_offsets.float()
    return class_logits, box_offsets


def batch_outputs(class_logits, box_offsets) -> tuple[Tensor, Tensor]:
    """A network's outputs for a batch: class_logits (B, A, C+1), box_offsets (B, A, 4)."""
    return _outputs(class_logits, box_offsets, batch=True)


def image_outputs(
    class_logits,
    box_offsets,
    score_threshold,
    iou_threshold,
    top_k,
    class_agnostic,
    fast,
    candidates_per_class,
) -> tuple[Tensor, Tensor]:
    """One image's outputs, (A, C+1) and (A, 4), and detect's settings."""
    # score_threshold = 1 would drop everything: no probability is above 1.
    number(score_threshold, "score_threshold", 0.0, 1.0, high_open=True)
    number(iou_threshold, "iou_threshold", 0.0, 1.0)
    integer(top_k, "top_k", 1)
    integer(candidates_per_class, "candidates_per_class", 1, optional=True)
    flag(class_agnostic, "class_agnostic")
    flag(fast, "fast")
    class_logits, box_offsets = _outputs(class_logits, box_offsets, batch=False)
    return class_logits, box_offsets.to(class_logits.dtype)


# --- training, model, checkpoints, data
# Images are fractions of full brightness; a little outside [0, 1] is rounding or augmentation,
# beyond this margin they are in another unit (0..255) or normalised.
IMAGE_MARGIN = 0.5


def images(value, size: int, dtype: torch.dtype = torch.float32, name: str = "images") -> Tensor:
    """A batch (B, 3, size, size) of ``dtype`` with values in [0, 1], checked with one reduction."""
    if not isinstance(value, Tensor):
        raise ValueError(
            f"expected {name} as a tensor (B, 3, {size}, {size}), got {type(value).__name__}"
        )
    if value.ndim != 4 or value.shape[1] != 3 or tuple(value.shape[-2:]) != (size, size):
        raise ValueError(
            f"expected {name} of shape (B, 3, {size}, {size}), got {tuple(value.shape)}"
        )
    if value.dtype != dtype:
        hint = "divide by 255" if not value.is_floating_point() else f"use .to({dtype})"
        raise ValueError(
            f"expected {name} as {dtype} in [0, 1] (the model's dtype), got {value.dtype}; {hint}"
        )
    if value.numel():
        low, high = torch.stack(torch.aminmax(value.detach())).tolist()
        if not (-IMAGE_MARGIN <= low and high <= 1 + IMAGE_MARGIN):  # NaN fails too
            hint = "divide by 255" if high > 1 + IMAGE_MARGIN else "do not normalise them"
            raise ValueError(
                f"expected {name} in [0, 1], got values from {low:g} to {high:g}; {hint}"
            )
    return value


def dataset(value, name: str) -> object:
    """A map-style dataset with at least one item: it has ``len`` and ``[index]``."""
    if not (hasattr(value, "__len__") and hasattr(value, "__getitem__")) or isinstance(value, str):
        raise ValueError(
            f"expected {name} as a dataset of (image, target) items, got {type(value).__name__}"
        )
    if len(value) == 0:
        raise ValueError(f"expected {name} with at least one image, got 0")
    return value


# ---------------------------------------------------------------------------------------------
# Metrics


def vector(value, name: str, length: int | None = None) -> Tensor:
    """A 1-D tensor, of ``length`` entries when given."""
    value = tensor(value, name, "(D,)")
    if value.numel() == 0:
        value = value.reshape(0)
    if value.ndim != 1 or (length is not None and len(value) != length):
        want = "(D,)" if length is None else f"({length},)"
        raise ValueError(f"expected {name} of shape {want}, got {tuple(value.shape)}")
    return value


def curve(value, name: str) -> Tensor:
    """Precision or recall values: 1-D, float64, each in [0, 1]."""
    value = floating(vector(value, name), name, "(D,)").to(torch.float64)
    if len(value) and not (value.isfinite().all() and value.min() >= 0 and value.max() <= 1):
        raise ValueError(
            f"expected {name} in [0, 1], got values from {value.min()} to {value.max()}"
        )
    return value


def pr_inputs(scores, is_true_positive, num_ground_truth) -> tuple[Tensor, Tensor]:
    scores = floating(vector(scores, "scores"), "scores", "(D,)")
    finite(scores, "scores", "a score must be a real number")
    flags = vector(is_true_positive, "is_true_positive", len(scores))
    if flags.dtype != torch.bool:
        if flags.is_floating_point() or not ((flags == 0) | (flags == 1)).all():
            raise ValueError("expected is_true_positive as booleans (or 0 and 1)")
        flags = flags.bool()
    found = int(flags.sum())
    if integer(num_ground_truth, "num_ground_truth", 1) < found:
        raise ValueError(
            f"expected num_ground_truth >= the {found} true positives (each finds a different "
            f"object), got {num_ground_truth}"
        )
    return scores, flags


def interpolation(value) -> str:
    """How AP reads the PR curve: at "all" its points, or at VOC2007's "11" or COCO's "101"."""
    if not isinstance(value, str) or value not in ("all", "11", "101"):
        raise ValueError(f"expected interpolation as 'all', '11' or '101', got {value!r}")
    return value


def pr_curve(precision, recall, interpolation_="all") -> tuple[Tensor, Tensor, str]:
    interpolation_ = interpolation(interpolation_)
    precision = curve(precision, "precision")
    recall = curve(recall, "recall")
    shape(recall, "recall", (len(precision),), ", like precision")
    if (torch.diff(recall) < 0).any():
        raise ValueError("expected recall in order of decreasing score: it never goes down")
    return precision, recall, interpolation_


def detections(boxes_, scores, where: str = "detections") -> tuple[Tensor, Tensor]:
    """Detected boxes (xyxy, any unit) and their finite scores, on the CPU."""
    boxes_ = boxes(boxes_, f"{where} boxes", fractions=False).cpu()
    scores = floating(vector(scores, f"{where} scores", len(boxes_)), f"{where} scores", "(D,)")
    finite(scores, f"{where} scores", "a score must be a real number")
    return boxes_, scores.cpu()


def match_detections_inputs(boxes_, scores, gt_boxes, iou_threshold):
    iou_threshold = fraction(iou_threshold, "iou_threshold")
    boxes_, scores = detections(boxes_, scores)
    gt_boxes = boxes(gt_boxes, "gt_boxes", fractions=False, positive_area=True)
    return boxes_, scores, gt_boxes.cpu().to(boxes_.dtype), iou_threshold


def iou_thresholds(values) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not _is_sequence(values):
        raise ValueError(f"expected iou_thresholds as a list of numbers, got {values!r}")
    if len(values) == 0:
        raise ValueError("expected at least one IoU threshold, got none")
    values = tuple(fraction(v, "each of iou_thresholds") for v in values)
    if len(set(values)) != len(values):
        raise ValueError(f"expected distinct IoU thresholds, got {list(values)}")
    return values


def ap_settings(iou_threshold, interpolation_) -> tuple[float, str]:
    return fraction(iou_threshold, "iou_threshold"), interpolation(interpolation_)


def coco_settings(iou_thresholds_, interpolation_) -> tuple[tuple[float, ...], str]:
    return iou_thresholds(iou_thresholds_), interpolation(interpolation_)


def detection_data(detections_, ground_truths, num_classes) -> list[tuple]:
    """One (boxes, scores, labels, gt_boxes, gt_labels) tuple of checked tensors per image."""
    integer(num_classes, "num_classes (object classes, background not counted)", 1)
    for name, value in (("detections", detections_), ("ground_truths", ground_truths)):
        single = isinstance(value, (dict, str, bytes, Tensor)) or hasattr(value, "boxes")
        if single or not _is_sequence(value):
            raise ValueError(f"expected {name} as a list with one entry per image, got {value!r}")
    if len(detections_) != len(ground_truths):
        raise ValueError(
            f"expected one entry of detections per entry of ground_truths, got "
            f"{len(detections_)} and {len(ground_truths)}"
        )
    images = []
    for i, (found, truth) in enumerate(zip(detections_, ground_truths, strict=True)):
        boxes_, scores, labels = _fields(found, ("boxes", "scores", "labels"), f"detections[{i}]")
        boxes_, scores = detections(boxes_, scores, f"detections[{i}]")
        labels = integer_labels(labels, f"detections[{i}] labels", len(scores), 1, num_classes)
        gt_boxes, gt_labels = _fields(truth, ("boxes", "labels"), f"ground_truths[{i}]")
        gt_boxes = boxes(gt_boxes, f"ground_truths[{i}] boxes", fractions=False, positive_area=True)
        gt_labels = integer_labels(
            gt_labels, f"ground_truths[{i}] labels", len(gt_boxes), 1, num_classes
        )
        images.append(
            (boxes_, scores, labels.cpu(), gt_boxes.cpu().to(boxes_.dtype), gt_labels.cpu())
        )
    if not any(len(image[4]) for image in images):
        raise ValueError(
            "expected at least one ground-truth box in the data set, got none: AP measures how "
            "many objects are found, so it is undefined without objects"
        )
    return images


def _fields(entry, names: tuple[str, ...], where: str) -> tuple:
    """(boxes, scores, labels) of a Detections-like entry, or (boxes, labels) of ground truth."""
    if isinstance(entry, dict):
        if all(name in entry for name in names):
            return tuple(entry[name] for name in names)
    elif all(hasattr(entry, name) for name in names):
        return tuple(getattr(entry, name) for name in names)
    elif len(names) == 2 and isinstance(entry, (tuple, list)) and len(entry) == 2:
        return tuple(entry)
    expected = ", ".join(names)
    raise ValueError(f"expected {where} with {expected} (attributes or dict keys), got {entry!r}")


def _row(value: Tensor, row: int) -> list[float]:
    """A row of numbers as a reader wrote them: float32's 0.20000000298 shown as 0.2."""
    return [round(v, 6) for v in value[row].tolist()]


# --- SSD300


def anchor_steps(steps, sizes: list[tuple[int, int]]) -> list[float | None]:
    """make_anchors' ``steps``: one fraction of the image side per map, or None (-> 1 / f)."""
    if steps is None:
        return [None] * len(sizes)
    if isinstance(steps, (str, bytes)) or not _is_sequence(steps) or len(steps) != len(sizes):
        raise ValueError(
            f"expected steps as one number per feature map ({len(sizes)}), fractions of the "
            f"image side such as [8 / 300, 16 / 300], or None, got {steps!r}"
        )
    steps = [number(s, "each step", 0.0, math.inf, low_open=True, high_open=True) for s in steps]
    if max(steps) > 1:
        raise ValueError(
            f"expected steps as fractions of the image side (0 < step <= 1), got {steps}; are "
            "these pixels? divide them by the image size"
        )
    for k, ((rows, cols), step) in enumerate(zip(sizes, steps, strict=True)):
        # torchvision's SSD300 puts the last centre of its 10 x 10 map at 9.5 * 32 / 300 = 1.013,
        # a little past the border: allow half a step, refuse a grid far off the image.
        last_centre = (max(rows, cols) - 0.5) * step
        if last_centre > 1 + step / 2 + 1e-6:
            raise ValueError(
                f"expected steps that keep the cell centres on the image (at most half a step "
                f"outside), got step {step:g} for map {k} of {rows} x {cols} cells: its last "
                f"centre is at {last_centre:g}"
            )
    return steps


SSD300_PRESETS = ("paper", "torchvision")


def ssd300_config_inputs(num_classes, preset) -> tuple[int, str]:
    num_classes = integer(num_classes, "num_classes (object classes, background not counted)", 1)
    if not isinstance(preset, str) or preset not in SSD300_PRESETS:
        raise ValueError(f"expected preset as 'paper' or 'torchvision', got {preset!r}")
    return num_classes, preset


def weights_file(value, name: str):
    """A path to an existing file, or None; FileNotFoundError names a missing one."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"expected {name} as a file path or None, got {type(value).__name__}")
    if not Path(value).is_file():
        raise FileNotFoundError(f"no weights file at {value} ({name})")
    return Path(value)


def ssd300_inputs(config, weights_path, backbone_weights_path) -> tuple:
    """ssd300_vgg16's inputs: an SSD300 config and at most one weights file, which exists."""
    if getattr(config, "backbone", None) != "ssd300_vgg16":
        got = getattr(config, "backbone", type(config).__name__)
        raise ValueError(
            f"expected an SSD300 config (ssd300_config(num_classes)), got backbone {got!r}"
        )
    if weights_path is not None and backbone_weights_path is not None:
        raise ValueError(
            "expected weights_path or backbone_weights_path, not both: the whole model's "
            "weights include the backbone's"
        )
    weights_path = weights_file(weights_path, "weights_path")
    return config, weights_path, weights_file(backbone_weights_path, "backbone_weights_path")


def file_name(value, name: str = "file") -> str:
    """A bare file name such as "ssd300_vgg16_coco-b556d3b4.pth": no folder in it."""
    if not isinstance(value, str) or not value or Path(value).name != value:
        raise ValueError(f"expected {name} as a file name without folders, got {value!r}")
    return value


# --- VOC training


class PathNotFound(FileNotFoundError, ValueError):
    """A file or folder given as input is missing: both a FileNotFoundError and a ValueError."""


def path(value, name: str, must_exist: str | None = None):
    """A file system path (str or os.PathLike) as a ``pathlib.Path``; ``must_exist`` "file" or
    "folder" also requires it to be one (else ``PathNotFound``)."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)) or value == "":
        raise ValueError(f"expected {name} as a path, got {value!r}")
    result = Path(value)
    if must_exist == "file" and not result.is_file():
        raise PathNotFound(f"expected {name} as an existing file, got {result} (not found)")
    if must_exist == "folder" and not result.is_dir():
        what = "a file" if result.exists() else "not found"
        raise PathNotFound(f"expected {name} as an existing folder, got {result} ({what})")
    return result


def lr_steps(value) -> tuple[int, ...]:
    """Learning-rate steps: increasing integers >= 1 (none at all is allowed)."""
    if isinstance(value, (str, bytes)) or not _is_sequence(value):
        raise ValueError(f"expected lr_steps as a list of increasing step numbers, got {value!r}")
    steps = tuple(integer(s, "each of lr_steps", 1) for s in value)
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ValueError(f"expected lr_steps in increasing order, got {list(steps)}")
    return steps


def voc_years(value) -> tuple[str, ...]:
    """VOC years such as ("2007", "2012"): four-digit strings or integers, no repeats."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, bytes) or not _is_sequence(value) or len(value) == 0:
        raise ValueError(f"expected years as a list such as ['2007', '2012'], got {value!r}")
    years = tuple(str(y) for y in value)
    bad = [y for y in years if not (len(y) == 4 and y.isdigit())]
    if bad or len(set(years)) < len(years):
        raise ValueError(f"expected years as different four-digit years, got {list(value)!r}")
    return years


def voc_devkit(root, years) -> list:
    """The year folders ``root/VOC<year>`` of a VOCdevkit folder, each checked to exist; the
    message says what ``root`` holds instead."""
    root = path(root, "root", must_exist="folder")
    missing = [year for year in years if not (root / f"VOC{year}").is_dir()]
    if missing:
        found = sorted(p.name for p in root.glob("VOC20[0-9][0-9]") if p.is_dir())
        if (root / "ImageSets").is_dir():
            hint = f"; {root} is a year folder itself: pass its parent, {root.parent}"
        elif (root / "VOCdevkit").is_dir():
            hint = f"; did you mean {root / 'VOCdevkit'}?"
        else:
            hint = f"; it holds {found}" if found else "; it holds no VOC year folder"
        raise PathNotFound(
            f"expected root as the VOCdevkit folder holding "
            f"{', '.join(f'VOC{y}' for y in years)}, got {root}: no "
            f"{', '.join(f'VOC{y}' for y in missing)} in it{hint}"
        )
    return [root / f"VOC{year}" for year in years]


def batch_fits(batch_size: int, num_images: int) -> None:
    """Training drops the last partial batch: at least one full batch is needed."""
    if batch_size > num_images:
        raise ValueError(
            f"expected batch_size at most the number of training images ({num_images}), got "
            f"{batch_size}"
        )


# ---------------------------------------------------------------------------------------------
# Lesson 08: design choices (ssd_lesson.alternatives, ssd_lesson.ablations, fit's hooks)


def optional_callable(value, name: str) -> None:
    """None or something callable, such as fit's ``targets_fn`` and ``loss_fn``."""
    if value is not None and not callable(value):
        raise ValueError(f"expected {name} as a function or None, got {value!r}")


def matcher(value) -> None:
    """A matching rule: ``matcher(anchors, gt_boxes, iou_threshold) -> (A,)``."""
    if not callable(value):
        raise ValueError(
            f"expected matcher as a function (anchors, gt_boxes, iou_threshold) -> (A,) "
            f"matches, such as match_anchors, got {value!r}"
        )


def focal_inputs(class_logits, box_offsets, target_labels, target_offsets, gamma, alpha):
    """softmax_focal_loss's inputs: ssd_loss's four tensors, gamma >= 0, alpha in [0, 1] or None."""
    loss_inputs(class_logits, box_offsets, target_labels, target_offsets)
    gamma = number(gamma, "gamma", 0.0, math.inf, high_open=True)
    alpha = None if alpha is None else number(alpha, "alpha (or None)", 0.0, 1.0)
    return gamma, alpha


def loss_result(value) -> None:
    """A LossResult from ssd_loss or one of the alternative losses."""
    names = ("localization", "num_positives", "positives", "mined_negatives", "anchor_class_loss")
    if not all(hasattr(value, name) for name in names):
        raise ValueError(f"expected a LossResult (from ssd_loss), got {type(value).__name__}")


def recall_by_size_inputs(detections_, ground_truths, num_classes, image_size, score, buckets):
    """recall_by_size's inputs -> (checked images, image_size, score, buckets)."""
    images = detection_data(detections_, ground_truths, num_classes)
    image_size = integer(image_size, "image_size (pixels)", 1)
    score = number(score, "score", 0.0, 1.0)
    message = (
        f"expected buckets as a dict name -> (from, below) pixels, from < below, got {buckets!r}"
    )
    if not isinstance(buckets, dict) or not buckets:
        raise ValueError(message)
    checked = {}
    for name, bounds in buckets.items():
        if not _is_sequence(bounds) or len(bounds) != 2:
            raise ValueError(message)
        low = number(bounds[0], f"buckets[{name!r}] from", 0.0)
        high = number(bounds[1], f"buckets[{name!r}] below", 0.0)
        if not low < high:
            raise ValueError(message)
        checked[name] = (low, high)
    return images, image_size, score, checked


def choice(value, name: str, options: tuple) -> object:
    """One of a few named options."""
    if isinstance(value, Tensor) or value not in options:
        raise ValueError(f"expected {name} as one of {options}, got {value!r}")
    return value


def variant(value, maps, data, augmentations, losses, matchers) -> None:
    """An ablations.Variant whose every setting is one the experiments know."""
    names = ("maps", "ratios", "data", "augment", "loss", "matcher", "iou_threshold")
    if not all(hasattr(value, name) for name in names):
        raise ValueError(f"expected an ablations.Variant, got {value!r}")
    for name, options in (
        ("maps", tuple(maps)),
        ("data", tuple(data)),
        ("augment", tuple(augmentations)),
        ("loss", tuple(losses)),
        ("matcher", tuple(matchers)),
    ):
        choice(getattr(value, name), f"the variant's {name}", options)
    ratios = value.ratios
    if not isinstance(ratios, tuple) or not all(
        isinstance(r, (int, float)) and not isinstance(r, bool) and r > 1 for r in ratios
    ):
        raise ValueError(f"expected the variant's ratios as a tuple of numbers > 1, got {ratios!r}")
    fraction(value.iou_threshold, "the variant's iou_threshold")


def experiment(value, cls) -> None:
    """An ablations.Experiment."""
    if not isinstance(value, cls):
        raise ValueError(f"expected an ablations.Experiment, got {type(value).__name__}")


def seed_values(values) -> list[float]:
    """One number per seed: a non-empty list of real numbers (NaN allowed: an empty bucket)."""
    if isinstance(values, (str, bytes, dict)) or not _is_sequence(values) or not len(values):
        raise ValueError(f"expected one number per seed (a non-empty list), got {values!r}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise ValueError(f"expected one number per seed, got {values!r}")
    return [float(v) for v in values]


def experiment_runs(experiment, runs) -> None:
    """The runs of one experiment: a dict variant name -> a list of metric dicts, one per seed."""
    names = [variant.name for variant in experiment.variants]
    if not isinstance(runs, dict) or names[0] not in runs or not set(runs) <= set(names):
        got = sorted(runs) if isinstance(runs, dict) else type(runs).__name__
        raise ValueError(f"expected the runs of {names[0]!r} and others of {names}, got {got}")
    for name, seeds in runs.items():
        missing = [
            c for c in (*experiment.columns, "seconds") if not all(c in m for m in seeds or [{}])
        ]
        if not isinstance(seeds, list) or not seeds or missing:
            raise ValueError(
                f"expected for {name!r} one dict of metrics per seed with "
                f"{list(experiment.columns)}, got {seeds!r}"
            )


def ablation_results(value) -> None:
    """What run_ablations returns (or load_results reads)."""
    keys = ("command", "seeds", "size", "settings", "torch", "date", "seconds", "runs")
    if not isinstance(value, dict) or any(key not in value for key in keys):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"expected ablation results with keys {list(keys)}, got {got}")


def variant_names(value, names: list) -> list:
    """Some of an experiment's variant names."""
    if isinstance(value, (str, bytes)) or not _is_sequence(value):
        raise ValueError(f"expected a list of variant names from {names}, got {value!r}")
    unknown = [v for v in value if v not in names]
    if unknown:
        raise ValueError(f"expected variant names from {names}, got {unknown}")
    return list(value)
