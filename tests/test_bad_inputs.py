"""An adversarial sweep over the whole public API: what a new user would try.

Each BAD case must raise ValueError (FileNotFoundError where a file is missing) with a key phrase
naming the argument; each GOOD case is an unusual but legal input (NumPy scalars and arrays,
integer and float64 tensors, empty inputs) and must give the correct value, not just no error.
"""

from __future__ import annotations

import functools
import math

import matplotlib
import numpy as np
import pytest
import torch
import torchvision
from torch.testing import assert_close

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssd_lesson import encoding, fast, inference, metrics  # noqa: E402
from ssd_lesson.anchors import (  # noqa: E402
    anchors_per_location,
    make_anchors,
    paper_scales,
    ssd300_anchors,
)
from ssd_lesson.boxes import box_area, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh  # noqa: E402
from ssd_lesson.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from ssd_lesson.data import ShapesDataset, VOCDetectionFolder, detection_collate  # noqa: E402
from ssd_lesson.encoding import decode, encode  # noqa: E402
from ssd_lesson.loss import hard_negatives, ssd_loss  # noqa: E402
from ssd_lesson.matching import explain_matches, match_anchors, match_targets  # noqa: E402
from ssd_lesson.model import SSD, SSDConfig, small_config  # noqa: E402
from ssd_lesson.plotting import draw_boxes, show_image  # noqa: E402
from ssd_lesson.train import fit  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

QUADRANTS = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.5, 0.0, 1.0, 0.5], [0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0]]
)
GT = torch.tensor([[0.0, 0.0, 0.5, 0.4], [0.6, 0.5, 1.0, 1.0]])  # IoU 0.8 with quadrants 0, 3
LABELS = torch.tensor([3, 7])
ANCHORS = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])  # (140, 4)
NMS_BOXES = torch.tensor(
    [[0.0, 0.0, 0.5, 0.5], [0.05, 0.0, 0.55, 0.5], [0.5, 0.5, 1.0, 1.0], [0.52, 0.5, 1.0, 1.0]]
)
NMS_SCORES = torch.tensor([0.9, 0.8, 0.7, 0.95])


@functools.cache
def model() -> SSD:
    torch.manual_seed(0)
    return SSD(small_config()).eval()


def outputs(dtype=torch.float32, seed=0):
    """Random network outputs for ANCHORS: class_logits (2, A, 4), box_offsets (2, A, 4)."""
    gen = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(2, len(ANCHORS), 4, generator=gen)
    offsets = 0.5 * torch.randn(2, len(ANCHORS), 4, generator=gen)
    return logits.to(dtype), offsets.to(dtype)


def loss_inputs():
    targets = encoding.build_targets(QUADRANTS, [GT], [LABELS])
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 4, 8, generator=gen)
    offsets = torch.randn(1, 4, 4, generator=gen)
    return logits, offsets, targets.labels, targets.offsets


def detections_and_truths():
    detections = [
        {
            "boxes": torch.tensor(
                [[0.0, 0.0, 0.5, 0.4], [0.5, 0.5, 1.0, 1.0], [0.2, 0.2, 0.3, 0.3]]
            ),
            "scores": torch.tensor([0.9, 0.8, 0.7]),
            "labels": torch.tensor([1, 2, 1]),
        }
    ]
    truths = [(GT, torch.tensor([1, 2]))]
    return detections, truths


def shapes_item(index=0):
    return ShapesDataset(2, seed=3, min_objects=1)[index]


def voc_root(tmp, missing_image=False):
    """A one-image VOC2007 folder under tmp; optionally without its JPEG."""
    from torchvision.io import write_jpeg

    root = tmp / "VOCdevkit" / "VOC2007"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    if not missing_image:
        pixels = torch.full((3, 30, 40), 120, dtype=torch.uint8)
        write_jpeg(pixels, str(root / "JPEGImages" / "000001.jpg"))
    (root / "Annotations" / "000001.xml").write_text(
        "<annotation><filename>000001.jpg</filename><size><width>40</width>"
        "<height>30</height><depth>3</depth></size><object><name>cat</name>"
        "<difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax>"
        "<ymax>20</ymax></bndbox></object></annotation>"
    )
    (root / "ImageSets/Main/train.txt").write_text("000001\n")
    return root


def checkpoint_file(tmp, **changes):
    """A saved small model's checkpoint with some entries replaced (None deletes one)."""
    path = tmp / "model.pt"
    save_checkpoint(path, model())
    checkpoint = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del checkpoint[key]
        else:
            checkpoint[key] = value
    torch.save(checkpoint, path)
    return path


def axes():
    figure, ax = plt.subplots()
    return ax


# ---------------------------------------------------------------------------------------------
# BAD cases: (call(tmp), exception, key phrase)

BAD = {}


def bad(name, match, call, exception=ValueError):
    assert name not in BAD, name
    BAD[name] = (call, exception, match)


# boxes
bad("box_iou_row_of_3", "boxes1", lambda t: box_iou([[0.0, 0.0, 1.0]], QUADRANTS))
bad("box_iou_numpy_bad_shape", "boxes2", lambda t: box_iou(QUADRANTS, np.zeros((2, 3))))
bad("box_iou_nan", "NaN or inf", lambda t: box_iou([[0.0, 0.0, math.nan, 1.0]], QUADRANTS))
bad("box_iou_inf", "NaN or inf", lambda t: box_iou(QUADRANTS, [[0.0, 0.0, math.inf, 1.0]]))
bad("box_iou_string", "boxes1", lambda t: box_iou("boxes", QUADRANTS))
bad("box_iou_none", "boxes2", lambda t: box_iou(QUADRANTS, None))
bad("box_iou_swapped", "x2 >= x1", lambda t: box_iou([[0.5, 0.5, 0.0, 0.0]], QUADRANTS))
bad("box_iou_bool", "boxes1", lambda t: box_iou(torch.ones(1, 4, dtype=torch.bool), QUADRANTS))
bad("box_iou_1d", "boxes1", lambda t: box_iou(torch.tensor([0.0, 0.0, 1.0, 1.0]), QUADRANTS))
bad("box_area_pixels", "look like pixels", lambda t: box_area([[10.0, 10.0, 200.0, 100.0]]))
bad("box_area_cxcywh", "cxcywh", lambda t: box_area(xyxy_to_cxcywh(ANCHORS)))
bad("xyxy_to_cxcywh_1d", "boxes_xyxy", lambda t: xyxy_to_cxcywh(torch.zeros(3)))
bad("cxcywh_negative_size", "boxes_cxcywh", lambda t: cxcywh_to_xyxy([[0.5, 0.5, -0.1, 0.2]]))
bad("cxcywh_nan", "boxes_cxcywh", lambda t: cxcywh_to_xyxy([[0.5, math.nan, 0.1, 0.2]]))

# anchors
bad("make_anchors_scales_none", "scales", lambda t: make_anchors([4, 2], None, [[2], [2]]))
bad("make_anchors_scales_string", "scales", lambda t: make_anchors([4], "0.2 0.5", [[2]]))
bad("make_anchors_pixel_scales", "pixels", lambda t: make_anchors([4], [30.0, 60.0], [[2]]))
bad("make_anchors_flat_ratios", "aspect ratio", lambda t: make_anchors([4], [0.2, 0.5], [2]))
bad("make_anchors_ratio_nan", "aspect ratio", lambda t: make_anchors([4], [0.2, 0.5], [[math.nan]]))
bad("make_anchors_float_size", "feature map size", lambda t: make_anchors([4.0], [0.2, 0.5], [[2]]))
bad("make_anchors_sizes_none", "feature map size", lambda t: make_anchors(None, [0.2, 0.5], [[2]]))
bad("make_anchors_clip_string", "clip", lambda t: make_anchors([4], [0.2, 0.5], [[2]], clip="no"))
bad("make_anchors_clip_int", "clip", lambda t: make_anchors([4], [0.2, 0.5], [[2]], clip=1))
bad("make_anchors_scale_inf", "scale", lambda t: make_anchors([4], [0.2, math.inf], [[2]]))
bad("paper_scales_s_max_inf", "s_max", lambda t: paper_scales(6, s_max=float("inf")))
bad("paper_scales_s_max_nan", "s_max", lambda t: paper_scales(6, s_max=math.nan))
bad("paper_scales_s_min_negative", "s_min", lambda t: paper_scales(6, s_min=-0.1))
bad("paper_scales_float_maps", "num_maps", lambda t: paper_scales(6.0))
bad("paper_scales_bool_maps", "num_maps", lambda t: paper_scales(True))
bad("paper_scales_s_min_string", "s_min", lambda t: paper_scales(6, s_min="0.2"))
bad("anchors_per_location_none", "aspect ratios", lambda t: anchors_per_location(None))
bad("ssd300_anchors_scales_string", "scales", lambda t: ssd300_anchors(scales="abc"))
bad("ssd300_anchors_clip_none", "clip", lambda t: ssd300_anchors(clip=None))

# matching
for value in ("0.5", True, None, 0, 1.5, math.nan, -0.5, [0.5]):
    bad(
        f"match_anchors_threshold_{value!r}",
        "iou_threshold",
        lambda t, v=value: match_anchors(QUADRANTS, GT, iou_threshold=v),
    )
bad("match_anchors_gt_cxcywh", "cxcywh", lambda t: match_anchors(QUADRANTS, [[0.7, 0.7, 0.2, 0.2]]))
bad("match_anchors_gt_pixels", "look like pixels", lambda t: match_anchors(QUADRANTS, GT * 300))
bad("match_anchors_gt_none", "gt_boxes", lambda t: match_anchors(QUADRANTS, None))
bad("match_anchors_anchors_none", "anchors", lambda t: match_anchors(None, GT))
bad("match_anchors_no_anchors", "anchor", lambda t: match_anchors(torch.zeros(0, 4), GT))
bad("match_anchors_gt_3d", "gt_boxes", lambda t: match_anchors(QUADRANTS, GT[None]))
bad("match_anchors_swapped_order", "gt_boxes", lambda t: match_anchors(GT, QUADRANTS * 2 - 0.5))
bad("explain_matches_threshold_str", "iou_threshold", lambda t: explain_matches(QUADRANTS, GT, "a"))
bad(
    "match_targets_float_labels",
    "integer gt_labels",
    lambda t: match_targets(QUADRANTS, GT, [1.5, 2.0]),
)
bad("match_targets_zero_label", "0 is background", lambda t: match_targets(QUADRANTS, GT, [0, 1]))
bad("match_targets_label_count", "gt_labels", lambda t: match_targets(QUADRANTS, GT, [1]))
bad("match_targets_labels_none", "gt_labels", lambda t: match_targets(QUADRANTS, GT, None))

# encoding
bad("encode_count_mismatch", "one ground-truth box per anchor", lambda t: encode(QUADRANTS, GT))
bad("encode_variances_scalar", "variances", lambda t: encode(GT, GT, variances=0.1))
bad("encode_variances_weights", "variances", lambda t: encode(GT, GT, variances=(10, 5)))
bad("encode_gt_zero_area", "gt_boxes", lambda t: encode(GT[:1], [[0.1, 0.1, 0.1, 0.3]]))
bad("decode_offsets_nan", "offsets", lambda t: decode(QUADRANTS, torch.full((4, 4), math.nan)))
bad("decode_offsets_string", "offsets", lambda t: decode(QUADRANTS, "abc"))
bad("decode_offsets_count", "offsets", lambda t: decode(QUADRANTS, torch.zeros(3, 4)))
bad("decode_variances_none", "variances", lambda t: decode(QUADRANTS, torch.zeros(4, 4), None))
bad("decode_anchors_pixels", "pixels", lambda t: decode(QUADRANTS * 300, torch.zeros(4, 4)))
bad(
    "build_targets_lists_none",
    "gt_boxes_list",
    lambda t: encoding.build_targets(QUADRANTS, None, None),
)
bad("build_targets_one_tensor", "gt_boxes", lambda t: encoding.build_targets(QUADRANTS, GT, LABELS))
bad(
    "build_targets_label_lists",
    "one labels tensor per image",
    lambda t: encoding.build_targets(QUADRANTS, [GT, GT], [LABELS]),
)
bad(
    "build_targets_threshold",
    "iou_threshold",
    lambda t: encoding.build_targets(QUADRANTS, [GT], [LABELS], iou_threshold=2),
)

# loss
bad(
    "ssd_loss_ratio_negative", "neg_pos_ratio", lambda t: ssd_loss(*loss_inputs(), neg_pos_ratio=-1)
)
bad(
    "ssd_loss_ratio_nan",
    "neg_pos_ratio",
    lambda t: ssd_loss(*loss_inputs(), neg_pos_ratio=math.nan),
)
bad("ssd_loss_ratio_string", "neg_pos_ratio", lambda t: ssd_loss(*loss_inputs(), neg_pos_ratio="3"))
bad(
    "ssd_loss_min_negatives_float",
    "min_negatives",
    lambda t: ssd_loss(*loss_inputs(), min_negatives=1.5),
)
bad(
    "ssd_loss_min_negatives_negative",
    "min_negatives",
    lambda t: ssd_loss(*loss_inputs(), min_negatives=-1),
)
bad(
    "ssd_loss_numpy_logits",
    "class_logits",
    lambda t: ssd_loss(loss_inputs()[0].numpy(), *loss_inputs()[1:]),
)
bad(
    "ssd_loss_logits_2d",
    "class_logits",
    lambda t: ssd_loss(loss_inputs()[0][0], *loss_inputs()[1:]),
)
bad(
    "ssd_loss_labels_float",
    "target_labels",
    lambda t: ssd_loss(*loss_inputs()[:2], loss_inputs()[2].float(), loss_inputs()[3]),
)
bad(
    "ssd_loss_label_too_big",
    "target_labels",
    lambda t: ssd_loss(*loss_inputs()[:2], loss_inputs()[2] + 8, loss_inputs()[3]),
)
bad(
    "ssd_loss_offsets_nan",
    "box_offsets",
    lambda t: ssd_loss(loss_inputs()[0], torch.full((1, 4, 4), math.nan), *loss_inputs()[2:]),
)
bad(
    "hard_negatives_1d",
    "anchor_loss",
    lambda t: hard_negatives(torch.rand(5), torch.zeros(5, dtype=torch.bool)),
)
bad(
    "hard_negatives_shape_mismatch",
    "positives",
    lambda t: hard_negatives(torch.rand(2, 5), torch.zeros(2, 4, dtype=torch.bool)),
)
bad(
    "hard_negatives_int_positives",
    "positives",
    lambda t: hard_negatives(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.long)),
)
bad(
    "hard_negatives_ratio_negative",
    "neg_pos_ratio",
    lambda t: hard_negatives(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool), -1),
)
bad(
    "hard_negatives_ratio_nan",
    "neg_pos_ratio",
    lambda t: hard_negatives(torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool), math.nan),
)
bad(
    "hard_negatives_loss_nan",
    "anchor_loss",
    lambda t: hard_negatives(torch.tensor([[0.1, math.nan]]), torch.zeros(1, 2, dtype=torch.bool)),
)
bad("hard_negatives_list", "anchor_loss", lambda t: hard_negatives([[0.1, 0.2]], [[False, True]]))

# fast
bad("fast_batch_none", "gt_boxes", lambda t: fast.match_anchors_batch(QUADRANTS, None))
bad("fast_batch_one_tensor", "gt_boxes", lambda t: fast.match_anchors_batch(QUADRANTS, GT))
bad(
    "fast_batch_threshold",
    "iou_threshold",
    lambda t: fast.match_anchors_batch(QUADRANTS, [GT], "0.5"),
)
bad(
    "fast_batch_pixels",
    "look like pixels",
    lambda t: fast.match_anchors_batch(QUADRANTS, [GT * 300]),
)
bad(
    "fast_padded_float_mask",
    "gt_mask",
    lambda t: fast.match_anchors_padded(QUADRANTS, GT[None], torch.ones(1, 2)),
)
bad(
    "fast_padded_2d_gt",
    "gt_boxes",
    lambda t: fast.match_anchors_padded(QUADRANTS, GT, torch.ones(1, 2, dtype=torch.bool)),
)
bad("fast_pad_boxes_none", "gt_boxes", lambda t: fast.pad_boxes(None))
bad("fast_pad_boxes_row", "gt_boxes", lambda t: fast.pad_boxes([[0.1, 0.1, 0.2]]))
bad(
    "fast_targets_zero_label",
    "0 is background",
    lambda t: fast.build_targets(QUADRANTS, [GT], [[0, 1]]),
)
bad("fast_targets_none", "gt_boxes_list", lambda t: fast.build_targets(QUADRANTS, None, None))

# inference
bad("nms_threshold_string", "iou_threshold", lambda t: inference.nms(NMS_BOXES, NMS_SCORES, "0.5"))
bad("nms_threshold_big", "iou_threshold", lambda t: inference.nms(NMS_BOXES, NMS_SCORES, 1.5))
bad(
    "nms_threshold_missing_none",
    "iou_threshold",
    lambda t: inference.nms(NMS_BOXES, NMS_SCORES, None),
)
bad(
    "nms_scores_nan",
    "scores",
    lambda t: inference.nms(NMS_BOXES, torch.tensor([0.9, math.nan, 0.1, 0.2]), 0.5),
)
bad("nms_scores_count", "scores", lambda t: inference.nms(NMS_BOXES, NMS_SCORES[:3], 0.5))
bad("nms_scores_2d", "scores", lambda t: inference.nms(NMS_BOXES, NMS_SCORES[None], 0.5))
bad("nms_boxes_cxcywh", "x2 >= x1", lambda t: inference.nms([[0.5, 0.5, 0.2, 0.2]], [0.9], 0.5))
bad("nms_boxes_shape", "boxes", lambda t: inference.nms(torch.zeros(4, 5), NMS_SCORES, 0.5))
bad(
    "batched_nms_float_ids",
    "class_ids",
    lambda t: inference.batched_nms(NMS_BOXES, NMS_SCORES, [1.0, 1.0, 2.0, 2.0], 0.5),
)
bad(
    "batched_nms_ids_count",
    "class_ids",
    lambda t: inference.batched_nms(NMS_BOXES, NMS_SCORES, [1, 2], 0.5),
)
bad(
    "batched_nms_threshold",
    "iou_threshold",
    lambda t: inference.batched_nms(NMS_BOXES, NMS_SCORES, [1, 1, 2, 2], -0.1),
)
bad(
    "detect_logits_2d",
    "class_logits",
    lambda t: inference.detect(ANCHORS, outputs()[0][0], outputs()[1]),
)
bad(
    "detect_offsets_count",
    "box_offsets",
    lambda t: inference.detect(ANCHORS, outputs()[0], outputs()[1][:, :-1]),
)
bad("detect_wrong_anchors", "anchor", lambda t: inference.detect(QUADRANTS, *outputs()))
bad(
    "detect_logits_nan",
    "class_logits",
    lambda t: inference.detect(ANCHORS, outputs()[0] * math.nan, outputs()[1]),
)
bad(
    "detect_score_threshold_one",
    "score_threshold",
    lambda t: inference.detect(ANCHORS, *outputs(), score_threshold=1.0),
)
bad(
    "detect_score_threshold_str",
    "score_threshold",
    lambda t: inference.detect(ANCHORS, *outputs(), score_threshold="0.5"),
)
bad("detect_top_k_float", "top_k", lambda t: inference.detect(ANCHORS, *outputs(), top_k=1.5))
bad("detect_top_k_zero", "top_k", lambda t: inference.detect(ANCHORS, *outputs(), top_k=0))
bad("detect_fast_string", "fast", lambda t: inference.detect(ANCHORS, *outputs(), fast="yes"))
bad(
    "detect_class_agnostic_int",
    "class_agnostic",
    lambda t: inference.detect(ANCHORS, *outputs(), class_agnostic=1),
)
bad(
    "detect_variances",
    "variances",
    lambda t: inference.detect(ANCHORS, *outputs(), variances=(10, 5)),
)
bad(
    "detect_int_logits",
    "class_logits",
    lambda t: inference.detect(ANCHORS, outputs()[0].long(), outputs()[1]),
)
bad("detect_steps_batch", "class_logits", lambda t: inference.detect_steps(ANCHORS, *outputs()))
bad(
    "detect_steps_iou_threshold",
    "iou_threshold",
    lambda t: inference.detect_steps(ANCHORS, outputs()[0][0], outputs()[1][0], iou_threshold=2),
)

# metrics
bad("envelope_nan", "precision", lambda t: metrics.precision_envelope([0.5, math.nan, 0.2]))
bad("envelope_2d", "precision", lambda t: metrics.precision_envelope([[0.5, 0.2]]))
bad("envelope_above_one", "precision", lambda t: metrics.precision_envelope([1.5, 0.2]))
bad("envelope_string", "precision", lambda t: metrics.precision_envelope("high"))
bad("auc_length_mismatch", "recall", lambda t: metrics.area_under_pr_curve([1.0, 0.5], [0.5]))
bad(
    "auc_recall_decreasing", "recall", lambda t: metrics.area_under_pr_curve([1.0, 0.5], [0.5, 0.2])
)
bad("auc_recall_above_one", "recall", lambda t: metrics.area_under_pr_curve([1.0, 0.5], [0.5, 1.5]))
bad("auc_precision_nan", "precision", lambda t: metrics.area_under_pr_curve([math.nan], [0.5]))
bad(
    "pr_zero_ground_truth", "num_ground_truth", lambda t: metrics.precision_recall([0.9], [True], 0)
)
bad(
    "pr_float_ground_truth",
    "num_ground_truth",
    lambda t: metrics.precision_recall([0.9], [True], 1.5),
)
bad("pr_flags_count", "is_true_positive", lambda t: metrics.precision_recall([0.9, 0.5], [True], 2))
bad("pr_scores_nan", "scores", lambda t: metrics.precision_recall([math.nan], [True], 1))
bad(
    "match_detections_threshold",
    "iou_threshold",
    lambda t: metrics.match_detections(GT, [0.9, 0.8], GT, 0),
)
bad("match_detections_scores_count", "scores", lambda t: metrics.match_detections(GT, [0.9], GT))
bad(
    "match_detections_gt_shape",
    "gt_boxes",
    lambda t: metrics.match_detections(GT, [0.9, 0.8], GT[:, :3]),
)
bad(
    "ap_num_classes_zero",
    "num_classes",
    lambda t: metrics.average_precision(*detections_and_truths(), num_classes=0),
)
bad(
    "ap_num_classes_bool",
    "num_classes",
    lambda t: metrics.average_precision(*detections_and_truths(), num_classes=True),
)
bad(
    "ap_threshold",
    "iou_threshold",
    lambda t: metrics.average_precision(*detections_and_truths(), 2, iou_threshold=1.5),
)
bad("ap_none", "detections", lambda t: metrics.average_precision(None, None, 2))
bad(
    "ap_image_count",
    "ground_truths|detections|image",
    lambda t: metrics.average_precision(
        detections_and_truths()[0] * 2, detections_and_truths()[1], 2
    ),
)
bad(
    "ap_label_zero",
    "labels",
    lambda t: metrics.average_precision(
        detections_and_truths()[0], [(GT, torch.tensor([0, 1]))], 2
    ),
)
bad(
    "coco_map_no_thresholds",
    "(?i)iou.threshold",
    lambda t: metrics.coco_map(*detections_and_truths(), 2, iou_thresholds=[]),
)
bad(
    "coco_map_threshold_big",
    "iou_thresholds",
    lambda t: metrics.coco_map(*detections_and_truths(), 2, iou_thresholds=[0.5, 1.5]),
)

# model
bad("config_image_size_string", "image_size", lambda t: SSDConfig(image_size="64"))
bad("config_num_classes_zero", "num_classes", lambda t: SSDConfig(num_classes=0))
bad("config_scales_none", "scales", lambda t: SSDConfig(scales=None))
bad("config_widths_zero", "widths", lambda t: SSDConfig(widths=(16, 0, 64, 96, 96, 96, 96)))
bad("small_config_float_classes", "num_classes", lambda t: small_config(num_classes=1.5))
bad("small_config_negative_size", "image_size", lambda t: small_config(image_size=-1))
bad("ssd_without_config", "SSDConfig", lambda t: SSD(None))
bad("forward_uint8", "images", lambda t: model()(torch.zeros(1, 3, 64, 64, dtype=torch.uint8)))
bad("forward_float64", "images", lambda t: model()(torch.zeros(1, 3, 64, 64, dtype=torch.float64)))
bad("forward_0_255", "images", lambda t: model()(torch.full((1, 3, 64, 64), 200.0)))
bad("forward_wrong_size", "images", lambda t: model()(torch.zeros(1, 3, 32, 32)))
bad("forward_no_batch", "images", lambda t: model()(torch.zeros(3, 64, 64)))
bad("forward_list", "images", lambda t: model()([torch.zeros(3, 64, 64)]))
bad("forward_nan", "images", lambda t: model()(torch.full((1, 3, 64, 64), math.nan)))

# checkpoints
bad(
    "load_missing_file",
    "no checkpoint",
    lambda t: load_checkpoint(t / "nothing.pt"),
    FileNotFoundError,
)
bad(
    "load_no_state_dict",
    "state_dict",
    lambda t: load_checkpoint(checkpoint_file(t, state_dict=None)),
)
bad(
    "load_config_ill_typed",
    "config",
    lambda t: load_checkpoint(
        checkpoint_file(t, config={**small_config().to_dict(), "image_size": "64"})
    ),
)
bad(
    "load_config_not_a_dict",
    "config",
    lambda t: load_checkpoint(checkpoint_file(t, config="small")),
)
bad(
    "load_weights_of_another_config",
    "do not fit",
    lambda t: load_checkpoint(checkpoint_file(t, config=small_config(num_classes=7).to_dict())),
)
bad(
    "load_random_bytes",
    "model.pt",
    lambda t: (t / "model.pt").write_bytes(b"not a checkpoint") and load_checkpoint(t / "model.pt"),
)
bad("load_config_argument", "config", lambda t: load_checkpoint(checkpoint_file(t), config="small"))
bad(
    "load_other_config_argument",
    "different config",
    lambda t: load_checkpoint(checkpoint_file(t), config=small_config(num_classes=2)),
)

# data
bad("shapes_min_size_string", "min_size", lambda t: ShapesDataset(4, min_size="a"))
bad("shapes_negative_count", "num_images", lambda t: ShapesDataset(-1))
bad("shapes_float_count", "num_images", lambda t: ShapesDataset(4.0))
bad("shapes_small_images", "image_size", lambda t: ShapesDataset(4, image_size=16))
bad(
    "shapes_max_below_min_objects",
    "max_objects",
    lambda t: ShapesDataset(4, min_objects=3, max_objects=1),
)
bad("shapes_sizes_swapped", "min_size", lambda t: ShapesDataset(4, min_size=0.9, max_size=0.5))
bad("shapes_transform_not_callable", "transform", lambda t: ShapesDataset(4, transform=5))
bad("shapes_index_string", "index", lambda t: ShapesDataset(4)["0"])
bad("collate_empty", "non-empty", lambda t: detection_collate([]))
bad("collate_none", "non-empty", lambda t: detection_collate(None))
bad(
    "collate_label_zero",
    "0 is background",
    lambda t: detection_collate(
        [
            (
                shapes_item()[0],
                {"boxes": torch.tensor([[1.0, 1.0, 9.0, 9.0]]), "labels": torch.tensor([0])},
            )
        ]
    ),
)
bad("voc_root_none", "root", lambda t: VOCDetectionFolder(None))
bad("voc_missing_folder", "VOC", lambda t: VOCDetectionFolder(t / "nowhere"), FileNotFoundError)
bad(
    "voc_missing_image", "000001.jpg", lambda t: VOCDetectionFolder(voc_root(t, missing_image=True))
)
bad("voc_image_set_empty", "image_set", lambda t: VOCDetectionFolder(voc_root(t), image_set=""))
bad("voc_classes_string", "classes", lambda t: VOCDetectionFolder(voc_root(t), classes="cat"))
bad(
    "voc_keep_difficult_int",
    "keep_difficult",
    lambda t: VOCDetectionFolder(voc_root(t), keep_difficult=1),
)

# plotting
bad("show_image_batch", "one image", lambda t: show_image(axes(), torch.zeros(2, 3, 8, 8)))
bad("show_image_string", "image", lambda t: show_image(axes(), "photo.jpg"))
bad("draw_boxes_cxcywh", "x2 >= x1", lambda t: draw_boxes(axes(), [[0.5, 0.5, 0.2, 0.2]]))
bad("draw_boxes_shape", "boxes_xyxy", lambda t: draw_boxes(axes(), torch.zeros(2, 3)))
bad("draw_boxes_too_few_labels", "labels", lambda t: draw_boxes(axes(), GT, labels=["one"]))

# train
bad("fit_no_train_data", "train_data", lambda t: fit(model(), train_data=None, progress=False))
bad("fit_no_model", "model", lambda t: fit(None, ShapesDataset(2), progress=False))
bad("fit_epochs_zero", "epochs", lambda t: fit(model(), ShapesDataset(2), epochs=0, progress=False))
bad(
    "fit_epochs_float",
    "epochs",
    lambda t: fit(model(), ShapesDataset(2), epochs=1.5, progress=False),
)
bad(
    "fit_batch_size_zero",
    "batch_size",
    lambda t: fit(model(), ShapesDataset(2), batch_size=0, progress=False),
)
bad("fit_lr_negative", "lr", lambda t: fit(model(), ShapesDataset(2), lr=-1, progress=False))
bad("fit_lr_string", "lr", lambda t: fit(model(), ShapesDataset(2), lr="1e-3", progress=False))
bad("fit_empty_data", "train_data", lambda t: fit(model(), ShapesDataset(0), progress=False))
bad(
    "fit_val_data_string",
    "val_data",
    lambda t: fit(model(), ShapesDataset(2), val_data="val", progress=False),
)


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input_is_rejected(case, tmp_path):
    call, exception, match = BAD[case]
    try:
        with pytest.raises(exception, match=match):
            call(tmp_path)
    finally:
        plt.close("all")


# ---------------------------------------------------------------------------------------------
# GOOD cases: unusual but legal inputs, checked for the right value

GOOD = {}


def good(function):
    GOOD[function.__name__] = function
    return function


@good
def box_iou_numpy_arrays(tmp):
    iou = box_iou(GT.numpy(), QUADRANTS.numpy())
    assert_close(iou, torchvision.ops.box_iou(GT, QUADRANTS))


@good
def box_iou_uint8_pixels(tmp):
    iou = box_iou(torch.tensor([[0, 0, 100, 100]], dtype=torch.uint8), [[50, 0, 150, 100]])
    assert iou.is_floating_point()
    assert_close(iou, torch.tensor([[1 / 3]]))


@good
def box_iou_float16(tmp):
    iou = box_iou(torch.tensor([[0.0, 0.0, 0.5, 0.5]], dtype=torch.float16), [[0.0, 0.0, 1.0, 1.0]])
    assert_close(iou.float(), torch.tensor([[0.25]]))


@good
def box_iou_float64(tmp):
    iou = box_iou(GT.double(), QUADRANTS.double())
    assert iou.dtype == torch.float64
    assert_close(iou, torchvision.ops.box_iou(GT.double(), QUADRANTS.double()))


@good
def box_iou_empty_lists(tmp):
    assert box_iou([], []).shape == (0, 0)
    assert box_iou([], QUADRANTS).shape == (0, 4)


@good
def box_iou_zero_area(tmp):
    assert_close(box_iou([[0.2, 0.2, 0.2, 0.2]], QUADRANTS), torch.zeros(1, 4))


@good
def box_area_int_tensor(tmp):
    assert_close(box_area(torch.tensor([[0, 0, 1, 1]])), torch.tensor([1.0]))


@good
def conversions_numpy(tmp):
    assert_close(
        xyxy_to_cxcywh(np.array([[0.0, 0.0, 0.5, 1.0]])),
        torch.tensor([[0.25, 0.5, 0.5, 1.0]], dtype=torch.float64),
    )


@good
def paper_scales_numpy_scalars(tmp):
    scales = paper_scales(np.int64(6), s_min=np.float32(0.2), s_max=np.float64(0.9))
    assert scales == pytest.approx(paper_scales(6))


@good
def make_anchors_numpy_scales(tmp):
    assert_close(
        make_anchors([4, (2, 3)], np.array([0.2, 0.5, 0.8]), [[2], np.array([3.0])]),
        make_anchors([4, (2, 3)], [0.2, 0.5, 0.8], [[2], [3]]),
    )


@good
def make_anchors_numpy_int_sizes(tmp):
    assert_close(
        make_anchors([np.int64(4)], [0.2, 0.5], [[2]]), make_anchors([4], [0.2, 0.5], [[2]])
    )


@good
def match_anchors_numpy_float_threshold(tmp):
    for threshold in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5)):
        assert match_anchors(QUADRANTS, GT, threshold).tolist() == [0, -1, -1, 1]


@good
def match_anchors_int_threshold_one(tmp):
    assert match_anchors(QUADRANTS, QUADRANTS[:1], 1).tolist() == [0, -1, -1, -1]


@good
def match_anchors_float64_and_float16(tmp):
    assert match_anchors(QUADRANTS.double(), GT).tolist() == [0, -1, -1, 1]
    assert match_anchors(QUADRANTS, GT.double()).tolist() == [0, -1, -1, 1]
    assert match_anchors(QUADRANTS, GT.half()).tolist() == [0, -1, -1, 1]


@good
def match_anchors_numpy_and_lists(tmp):
    assert match_anchors(QUADRANTS.numpy(), GT.tolist()).tolist() == [0, -1, -1, 1]


@good
def match_anchors_int_anchors(tmp):
    assert match_anchors(torch.tensor([[0, 0, 1, 1]]), GT).tolist() == [1]


@good
def match_anchors_empty_gt_forms(tmp):
    for empty in ([], torch.zeros(0), np.zeros((0, 4)), torch.zeros(0, 4, dtype=torch.float64)):
        assert match_anchors(QUADRANTS, empty).tolist() == [-1] * 4


@good
def explain_matches_no_objects(tmp):
    explanation = explain_matches(QUADRANTS, [])
    assert explanation.matched_gt.tolist() == [-1] * 4
    assert_close(explanation.best_iou_for_each_anchor, torch.zeros(4))


@good
def match_targets_numpy_int_labels(tmp):
    for labels in (np.array([3, 7]), torch.tensor([3, 7], dtype=torch.int32), (np.int64(3), 7)):
        assert match_targets(QUADRANTS, GT, labels).labels.tolist() == [3, 0, 0, 7]


@good
def encode_numpy_variances(tmp):
    assert_close(
        encode(QUADRANTS, QUADRANTS, (np.float32(0.1), np.float64(0.2))), torch.zeros(4, 4)
    )
    assert_close(encode(GT, GT[[1, 0]], [0.1, 0.2]), encode(GT, GT[[1, 0]]))


@good
def decode_float64_and_int_offsets(tmp):
    out = decode(QUADRANTS, torch.zeros(4, 4, dtype=torch.float64))
    assert out.dtype == torch.float64
    assert_close(out, QUADRANTS.double())
    assert_close(
        decode(QUADRANTS, torch.zeros(2, 4, 4, dtype=torch.long)), QUADRANTS.expand(2, 4, 4)
    )


@good
def decode_float16_offsets(tmp):
    offsets = encode(QUADRANTS, GT[[0, 0, 1, 1]])
    assert_close(decode(QUADRANTS, offsets.half()).float(), GT[[0, 0, 1, 1]], atol=2e-3, rtol=0)


@good
def encode_decode_round_trip_float64(tmp):
    offsets = encode(QUADRANTS.double(), GT[[0, 1, 0, 1]].double())
    assert_close(decode(QUADRANTS.double(), offsets), GT[[0, 1, 0, 1]].double())


@good
def build_targets_numpy_threshold_and_float64(tmp):
    expected = encoding.build_targets(QUADRANTS, [GT], [LABELS])
    targets = encoding.build_targets(
        QUADRANTS.double(), [GT.numpy()], [LABELS.numpy()], np.float32(0.5)
    )
    assert targets.labels.tolist() == expected.labels.tolist() == [[3, 0, 0, 7]]
    assert targets.offsets.dtype == torch.float64
    assert_close(targets.offsets.float(), expected.offsets)


@good
def build_targets_empty_batch(tmp):
    for build in (encoding.build_targets, fast.build_targets):
        targets = build(QUADRANTS, [], [])
        assert targets.labels.shape == (0, 4) and targets.offsets.shape == (0, 4, 4)


@good
def ssd_loss_numpy_ratio_and_int_labels(tmp):
    logits, offsets, labels, target_offsets = loss_inputs()
    expected = ssd_loss(logits, offsets, labels, target_offsets)
    for ratio in (np.float32(3.0), np.int64(3), 3):
        result = ssd_loss(logits, offsets, labels.to(torch.int32), target_offsets, ratio)
        assert_close(result.total, expected.total)
    result = ssd_loss(
        logits, offsets, labels.to(torch.uint8), target_offsets, min_negatives=np.int64(0)
    )
    assert_close(result.total, expected.total)


@good
def ssd_loss_float64(tmp):
    logits, offsets, labels, target_offsets = loss_inputs()
    expected = ssd_loss(logits, offsets, labels, target_offsets)
    result = ssd_loss(logits.double(), offsets.double(), labels, target_offsets.double())
    assert result.total.dtype == torch.float64
    assert_close(result.total.float(), expected.total)


@good
def ssd_loss_no_objects_is_zero(tmp):
    logits, offsets, labels, target_offsets = loss_inputs()
    result = ssd_loss(logits, offsets, torch.zeros_like(labels), torch.zeros_like(target_offsets))
    assert result.total.item() == 0.0 and result.num_positives == 0


@good
def hard_negatives_numpy_ratio_and_empty(tmp):
    loss = torch.tensor([[0.1, 0.9, 0.5, 0.3, 0.7]])
    positives = torch.tensor([[True, False, False, False, False]])
    mined = hard_negatives(loss, positives, np.float32(2.0), np.int64(0))
    assert mined.tolist() == [[False, True, False, False, True]]
    assert hard_negatives(torch.zeros(0, 5), torch.zeros(0, 5, dtype=torch.bool)).shape == (0, 5)


@good
def fast_match_numpy_threshold_and_empty_batch(tmp):
    assert fast.match_anchors_batch(QUADRANTS, [GT.numpy()], np.float32(0.5)).tolist() == [
        [0, -1, -1, 1]
    ]
    empty = fast.match_anchors_batch(QUADRANTS, [])
    assert empty.shape == (0, 4) and empty.dtype == torch.int64


@good
def fast_padded_float64(tmp):
    padded, mask = fast.pad_boxes([GT.double(), []])
    matched = fast.match_anchors_padded(QUADRANTS, padded, mask, np.float64(0.5))
    assert matched.tolist() == [[0, -1, -1, 1], [-1, -1, -1, -1]]


@good
def fast_build_targets_equals_readable_on_float64(tmp):
    images, labels = [GT.double(), torch.zeros(0, 4, dtype=torch.float64)], [LABELS, []]
    targets = fast.build_targets(QUADRANTS.double(), images, labels)
    expected = encoding.build_targets(QUADRANTS.double(), images, labels)
    assert torch.equal(targets.labels, expected.labels)
    assert torch.equal(targets.offsets, expected.offsets)


@good
def nms_empty(tmp):
    for keep in (inference.nms([], [], 0.5), inference.batched_nms([], [], [], 0.5)):
        assert keep.dtype == torch.int64 and keep.shape == (0,)


@good
def nms_numpy_threshold_pixels_float64(tmp):
    expected = torchvision.ops.nms(NMS_BOXES, NMS_SCORES, 0.5)
    assert torch.equal(inference.nms(NMS_BOXES, NMS_SCORES, np.float32(0.5)), expected)
    assert torch.equal(inference.nms(NMS_BOXES * 300, NMS_SCORES, 0.5), expected)
    assert torch.equal(inference.nms(NMS_BOXES.double(), NMS_SCORES.double(), 0.5), expected)
    assert torch.equal(inference.nms(NMS_BOXES.numpy(), NMS_SCORES.tolist(), 0.5), expected)


@good
def batched_nms_numpy_ids(tmp):
    ids = np.array([1, 2, 1, 2])
    expected = torchvision.ops.batched_nms(NMS_BOXES, NMS_SCORES, torch.as_tensor(ids), 0.5)
    assert torch.equal(inference.batched_nms(NMS_BOXES, NMS_SCORES, ids, np.float64(0.5)), expected)


def assert_same_detections(got, expected, atol=0.0):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(g.labels, e.labels)
        assert g.boxes.dtype == e.boxes.dtype == torch.float32
        assert_close(g.scores, e.scores, atol=atol, rtol=0)
        assert_close(g.boxes, e.boxes, atol=atol, rtol=0)


@good
def detect_float16_outputs_on_cpu(tmp):
    logits, offsets = outputs()
    logits, offsets = logits.half().float(), offsets.half().float()  # the same numbers
    for fast_nms in (True, False):
        expected = inference.detect(ANCHORS, logits, offsets, score_threshold=0.3, fast=fast_nms)
        got = inference.detect(
            ANCHORS, logits.half(), offsets.half(), score_threshold=0.3, fast=fast_nms
        )
        assert sum(len(d.labels) for d in got) > 0
        assert_same_detections(got, expected, atol=1e-5)


@good
def detect_float64_and_numpy_settings(tmp):
    logits, offsets = outputs()
    expected = inference.detect(ANCHORS, logits, offsets, score_threshold=0.3, top_k=5)
    got = inference.detect(
        ANCHORS,
        logits,
        offsets,
        score_threshold=np.float32(0.3),
        top_k=np.int64(5),
        iou_threshold=np.float64(0.45),
    )
    assert_same_detections(got, expected)
    got64 = inference.detect(
        ANCHORS.double(), logits.double(), offsets.double(), score_threshold=0.3, top_k=5
    )
    for g, e in zip(got64, expected, strict=True):
        assert torch.equal(g.labels, e.labels)
        assert_close(g.boxes.float(), e.boxes)


@good
def detect_steps_equals_detect(tmp):
    logits, offsets = outputs()
    steps = inference.detect_steps(ANCHORS, logits[0], offsets[0], score_threshold=0.3)
    final = inference.detect(ANCHORS, logits, offsets, score_threshold=0.3)[0]
    assert torch.equal(steps.final.labels, final.labels)
    assert_close(steps.final.boxes, final.boxes)


@good
def detect_empty_batch(tmp):
    assert (
        inference.detect(ANCHORS, torch.zeros(0, len(ANCHORS), 4), torch.zeros(0, len(ANCHORS), 4))
        == []
    )


@good
def envelope_numpy_and_empty(tmp):
    assert_close(
        metrics.precision_envelope(np.array([0.2, 0.5, 0.1])),
        torch.tensor([0.5, 0.5, 0.1], dtype=torch.float64),
    )
    assert metrics.precision_envelope([]).shape == (0,)


@good
def area_under_curve_empty_and_numpy(tmp):
    assert metrics.area_under_pr_curve([], []) == 0.0
    assert metrics.area_under_pr_curve(np.array([1.0, 0.5]), np.array([0.5, 0.5])) == pytest.approx(
        0.5
    )


@good
def precision_recall_numpy(tmp):
    precision, recall = metrics.precision_recall(
        np.array([0.2, 0.9], dtype=np.float32), np.array([False, True]), np.int64(2)
    )
    assert_close(precision, torch.tensor([1.0, 0.5], dtype=torch.float64))
    assert_close(recall, torch.tensor([0.5, 0.5], dtype=torch.float64))


@good
def match_detections_numpy_threshold_and_empty(tmp):
    flags = metrics.match_detections(GT, [0.9, 0.8], GT, np.float32(0.5))
    assert flags.tolist() == [True, True]
    assert metrics.match_detections([], [], GT).tolist() == []
    assert metrics.match_detections(GT, [0.9, 0.8], []).tolist() == [False, False]


@good
def average_precision_numpy_threshold(tmp):
    expected = metrics.average_precision(*detections_and_truths(), 2)
    result = metrics.average_precision(
        *detections_and_truths(), np.int64(2), iou_threshold=np.float32(0.5)
    )
    assert result.mean == pytest.approx(expected.mean)
    assert result.mean == pytest.approx(1.0)


@good
def coco_map_numpy_thresholds(tmp):
    result = metrics.coco_map(*detections_and_truths(), 2, iou_thresholds=np.array([0.5, 0.75]))
    assert result.mean == pytest.approx(1.0)


@good
def config_from_lists(tmp):
    config = SSDConfig(scales=[0.12, 0.22, 0.36, 0.5, 0.65, 0.82, 1.0], aspect_ratios=[[2]] * 6)
    assert config == SSDConfig()


@good
def forward_good_batch(tmp):
    with torch.no_grad():
        logits, offsets = model()(torch.rand(2, 3, 64, 64))
    assert logits.shape == (2, model().num_anchors, 5) and offsets.shape == (
        2,
        model().num_anchors,
        4,
    )
    assert torch.isfinite(logits).all()


@good
def checkpoint_round_trip(tmp):
    loaded, config = load_checkpoint(save_checkpoint(tmp / "m.pt", model()), config=small_config())
    assert config == small_config()
    for name, tensor in model().state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)


@good
def shapes_numpy_arguments(tmp):
    data = ShapesDataset(np.int64(3), min_size=np.float32(0.2), seed=np.int64(1))
    assert len(data) == 3
    image, target = data[np.int64(2)]
    assert image.shape == (3, 64, 64)
    batch = detection_collate([data[0], data[1]])
    assert batch.images.shape == (2, 3, 64, 64)


@good
def voc_folder_reads_the_image(tmp):
    data = VOCDetectionFolder(voc_root(tmp))
    image, target = data[0]
    assert image.shape == (3, 30, 40)
    assert_close(target["boxes"], torch.tensor([[0.0, 0.0, 10.0, 20.0]]))
    assert target["labels"].tolist() == [8]  # cat


@good
def show_image_tensor_and_array(tmp):
    try:
        ax = show_image(axes(), torch.rand(3, 8, 16))
        assert ax.get_images()[0].get_array().shape == (8, 16, 3)
        ax = show_image(axes(), np.zeros((8, 8, 3)))
        assert len(ax.get_images()) == 1
        ax = draw_boxes(axes(), GT.numpy(), labels=["a", "b"])
        assert len(ax.collections) == 1 and len(ax.texts) == 2
        assert len(draw_boxes(axes(), []).collections) == 0
    finally:
        plt.close("all")


@good
def fit_numpy_settings(tmp):
    torch.manual_seed(0)
    net = SSD(small_config())
    history = fit(
        net,
        ShapesDataset(4, seed=2, min_objects=1),
        epochs=np.int64(1),
        batch_size=np.int64(4),
        lr=np.float32(1e-3),
        progress=False,
    )
    assert len(history.train_loss) == 1 and math.isfinite(history.train_loss[0])


@pytest.mark.parametrize("case", GOOD, ids=list(GOOD))
def test_unusual_but_legal_input_gives_the_right_value(case, tmp_path):
    GOOD[case](tmp_path)


def test_the_sweep_is_wide():
    assert len(BAD) + len(GOOD) >= 150
