"""Tests for ssd_lesson.inference: NMS by hand and against torchvision, the detect pipeline."""

import re
import types

import pytest
import torch
import torchvision
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.ssd import SSD

from ssd_lesson.anchors import make_anchors
from ssd_lesson.inference import (
    NMS_IOU_THRESHOLD,
    SCORE_THRESHOLD,
    TOP_K,
    Detections,
    DetectionSteps,
    batched_nms,
    detect,
    detect_steps,
    nms,
)

# A row of three boxes, each 0.4 wide, shifted right by 0.1: neighbours overlap by
# 0.3 / (0.4 + 0.4 - 0.3) = 0.6, boxes two apart by 0.2 / 0.6 = 1/3.
ROW = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4], [0.2, 0.0, 0.6, 0.4]])
# A few maps, sizes and shapes: 4*4*4 + 2*2*6 + 1*1*4 = 92 anchors, quick to test many times.
SMALL_ANCHORS = make_anchors([4, 2, 1], [0.2, 0.45, 0.7, 0.95], [[2], [2, 3], [2]])
NUM_CLASSES = 6  # C + 1


def clustered_boxes(n, gen, num_clusters=5, dtype=torch.float32):
    """n xyxy boxes jittered around a few objects, so that NMS has plenty to suppress."""
    centres = 0.2 + 0.6 * torch.rand(num_clusters, 2, generator=gen, dtype=dtype)
    sizes = 0.1 + 0.3 * torch.rand(num_clusters, 2, generator=gen, dtype=dtype)
    cluster = torch.randint(0, num_clusters, (n,), generator=gen)
    centre = centres[cluster] + 0.05 * torch.randn(n, 2, generator=gen, dtype=dtype)
    size = sizes[cluster] * (1 + 0.3 * torch.rand(n, 2, generator=gen, dtype=dtype))
    return torch.cat((centre - size / 2, centre + size / 2), dim=1)


def network_outputs(seed, batch=2, anchors=SMALL_ANCHORS, num_classes=NUM_CLASSES, scale=3.0):
    """Random class logits (B, A, C+1) and offsets (B, A, 4), without exactly equal scores."""
    gen = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(batch, anchors.shape[0], num_classes, generator=gen)
    offsets = torch.randn(batch, anchors.shape[0], 4, generator=gen)
    probabilities = torch.softmax(logits, dim=-1).flatten()
    assert probabilities.unique().numel() == probabilities.numel()  # ties tested separately
    return logits, offsets


def torchvision_postprocess(logits, offsets, anchors, topk_candidates=400):
    """torchvision's SSD.postprocess_detections on a stand-in for the model, boxes in [0, 1]."""
    fake_ssd = types.SimpleNamespace(
        box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0)),  # 1 / VARIANCES
        score_thresh=SCORE_THRESHOLD,
        topk_candidates=topk_candidates,
        nms_thresh=NMS_IOU_THRESHOLD,
        detections_per_img=TOP_K,
    )
    head_outputs = {"bbox_regression": offsets, "cls_logits": logits}
    batch = logits.shape[0]
    # Image size (1, 1): clipping to the image in "pixels" is clipping to [0, 1].
    return SSD.postprocess_detections(fake_ssd, head_outputs, [anchors] * batch, [(1, 1)] * batch)


def assert_same_detections(ours, theirs):
    assert torch.equal(ours.labels, theirs.labels)
    assert torch.equal(ours.scores, theirs.scores)
    assert torch.equal(ours.boxes, theirs.boxes)


# ---------------------------------------------------------------------------------------------
# nms by hand


def test_nms_by_hand_a_suppressed_box_suppresses_nothing():
    # The best box (0) suppresses its neighbour (1, IoU 0.6) but not box 2 (IoU 1/3). Box 1
    # overlaps box 2 by 0.6 too, but it is gone already: box 2 stays.
    keep = nms(ROW, torch.tensor([0.9, 0.8, 0.7]), 0.45)
    assert keep.tolist() == [0, 2]
    assert keep.dtype == torch.int64


def test_nms_by_hand_order_is_by_score_not_by_index():
    # Box 2 is the best: it suppresses box 1 (IoU 0.6), then box 0 (IoU 1/3 with box 2) stays.
    assert nms(ROW, torch.tensor([0.5, 0.8, 0.9]), 0.45).tolist() == [2, 0]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [(0.0, [0]), (0.3, [0]), (0.5, [0, 2]), (0.6, [0, 1, 2]), (1.0, [0, 1, 2])],
)
def test_nms_by_hand_thresholds(threshold, expected):
    # IoUs: 0-1 and 1-2 are 0.6, 0-2 is 1/3. A box is dropped when IoU > threshold, so at
    # exactly 0.6 box 1 survives. Threshold 0: any overlap at all is too much.
    assert nms(ROW, torch.tensor([0.9, 0.8, 0.7]), threshold).tolist() == expected


def test_nms_iou_equal_to_threshold_is_not_suppressed():
    # Box 1 is half of box 0: IoU exactly 0.5, which is not > 0.5.
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.25, 1.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert torchvision.ops.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.4999).tolist() == [0]


def test_nms_compares_like_torchvision_when_the_threshold_rounds_up_in_float32():
    # 0.1 is not a float32: it rounds up to 0.10000000149... Box 1 overlaps box 0 by exactly
    # that float32 number, which is > 0.1, so torchvision (comparing in float64) drops it.
    # Comparing with the threshold rounded to float32 would keep it.
    width = torch.tensor(0.1, dtype=torch.float32)
    assert width.item() > 0.1
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, width.item(), 1.0]])
    scores = torch.tensor([0.9, 0.8])
    assert torchvision.ops.nms(boxes, scores, 0.1).tolist() == [0]
    assert nms(boxes, scores, 0.1).tolist() == [0]


def test_nms_empty_and_single_box():
    empty = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.int64
    assert nms(ROW[:1], torch.tensor([0.3]), 0.5).tolist() == [0]
    no_ids = torch.zeros(0, dtype=torch.long)
    assert batched_nms(torch.zeros(0, 4), torch.zeros(0), no_ids, 0.5).shape == (0,)
    assert batched_nms(ROW[:1], torch.tensor([0.3]), torch.tensor([4]), 0.5).tolist() == [0]


def test_nms_identical_boxes_keep_only_the_best_unless_threshold_is_one():
    boxes = ROW[:1].repeat(3, 1)
    scores = torch.tensor([0.2, 0.9, 0.5])
    assert nms(boxes, scores, 0.99).tolist() == [1]
    assert nms(boxes, scores, 1.0).tolist() == [1, 2, 0]  # IoU 1 is not > 1: nothing dropped


def test_nms_exact_ties_lower_index_first_like_torchvision():
    # Two identical boxes with the same score: the lower index is kept. Disjoint boxes with equal
    # scores are listed lower index first.
    boxes = torch.cat((ROW[:1], ROW[:1], ROW[:1] + 0.5))
    scores = torch.tensor([0.7, 0.7, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    gen = torch.Generator().manual_seed(1)
    for n in (10, 300, 2000):
        boxes = clustered_boxes(n, gen)
        scores = torch.randint(0, 4, (n,), generator=gen).float()  # many exact ties
        assert torch.equal(nms(boxes, scores, 0.5), torchvision.ops.nms(boxes, scores, 0.5))


# ---------------------------------------------------------------------------------------------
# nms and batched_nms against torchvision


@pytest.mark.parametrize("seed", range(8))
def test_nms_equals_torchvision_on_random_clustered_boxes(seed):
    gen = torch.Generator().manual_seed(seed)
    n = [0, 1, 2, 7, 50, 400][seed % 6]
    dtype = torch.float64 if seed % 4 == 3 else torch.float32
    boxes = clustered_boxes(n, gen, dtype=dtype)
    scores = torch.rand(n, generator=gen, dtype=dtype)
    for threshold in (0.0, 0.1, 0.3, 0.45, 0.5, 0.7, 1.0, torch.rand(1, generator=gen).item()):
        assert torch.equal(
            nms(boxes, scores, threshold), torchvision.ops.nms(boxes, scores, threshold)
        )


def test_nms_equals_torchvision_with_pixels_and_zero_area_boxes():
    # Pixel coordinates are fine for NMS; zero-area boxes give 0/0 IoUs, which suppress nothing.
    gen = torch.Generator().manual_seed(3)
    boxes = clustered_boxes(200, gen) * 300
    boxes[::7, 2] = boxes[::7, 0]  # zero width
    boxes[::11] = boxes[3]  # several copies of one box
    scores = torch.rand(200, generator=gen)
    for threshold in (0.0, 0.45, 1.0):
        assert torch.equal(
            nms(boxes, scores, threshold), torchvision.ops.nms(boxes, scores, threshold)
        )


@pytest.mark.parametrize("seed", range(8))
def test_batched_nms_equals_torchvision(seed):
    # Up to 1000 boxes torchvision uses the coordinate trick, above it a loop over classes:
    # 1100 boxes checks the second path.
    gen = torch.Generator().manual_seed(seed)
    n = [0, 1, 30, 300, 1100][seed % 5]
    boxes = clustered_boxes(n, gen)
    scores = torch.rand(n, generator=gen)
    class_ids = torch.randint(0, 5, (n,), generator=gen) * 3  # ids need not be consecutive
    for threshold in (0.0, 0.45, 0.8, 1.0):
        ours = batched_nms(boxes, scores, class_ids, threshold)
        assert torch.equal(ours, torchvision.ops.batched_nms(boxes, scores, class_ids, threshold))


def test_batched_nms_never_suppresses_across_classes():
    # The same three boxes twice, once per class: each class keeps [best, third].
    boxes = torch.cat((ROW, ROW))
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95, 0.6, 0.5])
    class_ids = torch.tensor([1, 1, 1, 2, 2, 2])
    assert batched_nms(boxes, scores, class_ids, 0.45).tolist() == [3, 0, 2, 5]
    assert nms(boxes, scores, 0.45).tolist() == [3, 2]  # one class: box 2 hides its twin 5


def test_batched_nms_ties_between_classes_lower_index_first():
    # Small inputs: torchvision's coordinate trick sorts like its nms, equal scores by index.
    gen = torch.Generator().manual_seed(4)
    boxes = clustered_boxes(500, gen)
    scores = torch.randint(0, 3, (500,), generator=gen).float()
    class_ids = torch.randint(0, 4, (500,), generator=gen)
    ours = batched_nms(boxes, scores, class_ids, 0.5)
    assert torch.equal(ours, torchvision.ops.batched_nms(boxes, scores, class_ids, 0.5))


# ---------------------------------------------------------------------------------------------
# detect by hand


def hand_outputs():
    """Three anchors, two object classes; the offsets are 0, so each box is its anchor.

    Anchor 0: class 1 (logits 0, 4, 0 -> probabilities 0.0177, 0.9647, 0.0177).
    Anchor 1: overlaps anchor 0 by 0.6, class 1 as well, less sure (0.0453, 0.9094, 0.0453).
    Anchor 2: sticks out of the image (it is clipped), class 2 (e^5 / (1 + e^-9 + e^5) = 0.9933).
    """
    anchors = torch.cat((ROW[:2], torch.tensor([[0.7, 0.7, 1.1, 1.2]])))
    logits = torch.tensor([[[0.0, 4.0, 0.0], [0.0, 3.0, 0.0], [0.0, -9.0, 5.0]]])
    return logits, torch.zeros(1, 3, 4), anchors


def test_detect_by_hand_every_step():
    logits, offsets, anchors = hand_outputs()
    steps = detect_steps(anchors, logits[0], offsets[0])
    assert isinstance(steps, DetectionSteps)
    clipped = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4], [0.7, 0.7, 1.0, 1.0]])
    assert_close(steps.boxes, clipped)
    assert_close(steps.probabilities, torch.softmax(logits[0], dim=-1))
    # Candidates above 0.01, class by class: class 1 from anchors 0 and 1 (anchor 2's
    # probability e^-9 / ... is far below 0.01), class 2 from anchors 0, 1 (0.0177, 0.0453) and 2.
    assert steps.candidates.labels.tolist() == [1, 1, 2, 2, 2]
    assert steps.candidate_anchors.tolist() == [0, 1, 0, 1, 2]
    assert_close(steps.candidates.boxes, clipped[[0, 1, 0, 1, 2]])
    # NMS per class: anchor 1 loses class 1 to anchor 0 (IoU 0.6); in class 2, anchor 1 beats
    # anchor 0 (0.0453 > 0.0177) and suppresses it; anchor 2 overlaps nothing. By decreasing
    # score: (anchor 2, class 2) 0.9933, (anchor 0, class 1) 0.9647, (anchor 1, class 2) 0.0453.
    assert steps.kept.tolist() == [4, 0, 3]
    final = steps.final
    assert final.labels.tolist() == [2, 1, 2]
    assert_close(final.boxes, clipped[[2, 0, 1]])
    assert_close(final.scores, torch.tensor([0.9933, 0.9647, 0.0453]), atol=1e-4, rtol=0)
    assert_close(final.scores, steps.probabilities[[2, 0, 1], [2, 1, 2]])


def test_detect_by_hand_thresholds_top_k_and_class_agnostic():
    logits, offsets, anchors = hand_outputs()
    (found,) = detect(anchors, logits, offsets, score_threshold=0.5)
    assert found.labels.tolist() == [2, 1]  # the two confident ones only
    (found,) = detect(anchors, logits, offsets, top_k=1)
    assert found.labels.tolist() == [2]
    # Class-agnostic: anchor 0's class-1 box suppresses anchor 1's class-2 box (IoU 0.6).
    (found,) = detect(anchors, logits, offsets, class_agnostic=True)
    assert found.labels.tolist() == [2, 1]
    assert_close(found.boxes, torch.tensor([[0.7, 0.7, 1.0, 1.0], [0.0, 0.0, 0.4, 0.4]]))


def test_detect_score_threshold_is_strict():
    # Two classes (background + 1) with equal logits: probability exactly 0.5, not > 0.5.
    logits = torch.zeros(1, 1, 2)
    anchors = ROW[:1]
    assert len(detect(anchors, logits, torch.zeros(1, 1, 4), score_threshold=0.5)[0].scores) == 0
    assert len(detect(anchors, logits, torch.zeros(1, 1, 4), score_threshold=0.49)[0].scores) == 1


def test_detect_background_everywhere_gives_empty_detections_of_the_right_shape():
    logits = torch.zeros(2, SMALL_ANCHORS.shape[0], NUM_CLASSES)
    logits[..., 0] = 20.0  # sure it is background: every object probability ~ 2e-9
    for fast in (True, False):
        results = detect(
            SMALL_ANCHORS, logits, torch.zeros(2, SMALL_ANCHORS.shape[0], 4), fast=fast
        )
        assert len(results) == 2
        for found in results:
            assert isinstance(found, Detections)
            assert found.boxes.shape == (0, 4) and found.scores.shape == (0,)
            assert found.labels.shape == (0,) and found.labels.dtype == torch.int64


# ---------------------------------------------------------------------------------------------
# detect on random outputs: both NMS versions, torchvision's postprocessing


@pytest.mark.parametrize("seed", range(4))
def test_detect_fast_and_teaching_versions_agree(seed):
    logits, offsets = network_outputs(seed)
    for class_agnostic in (False, True):
        fast = detect(SMALL_ANCHORS, logits, offsets, class_agnostic=class_agnostic)
        slow = detect(SMALL_ANCHORS, logits, offsets, class_agnostic=class_agnostic, fast=False)
        for ours, theirs in zip(fast, slow, strict=True):
            assert len(ours.scores) > 10
            assert_same_detections(ours, theirs)


@pytest.mark.parametrize("seed", range(4))
def test_detect_equals_torchvision_postprocess_detections(seed):
    logits, offsets = network_outputs(seed)
    # With torchvision's 400 candidates per class, and with no cap on either side (here a class
    # has at most 92 candidates, so 400 caps nothing and a larger cap gives the same).
    for cap in (400, 30):
        expected = torchvision_postprocess(logits, offsets, SMALL_ANCHORS, topk_candidates=cap)
        for fast in (True, False):
            found = detect(SMALL_ANCHORS, logits, offsets, candidates_per_class=cap, fast=fast)
            for ours, theirs in zip(found, expected, strict=True):
                assert torch.equal(ours.labels, theirs["labels"])
                assert torch.equal(ours.scores, theirs["scores"])
                # Our decode and torchvision's round differently in the last bit.
                assert_close(ours.boxes, theirs["boxes"], rtol=0, atol=1e-6)
    uncapped = detect(SMALL_ANCHORS, logits, offsets)
    capped = detect(SMALL_ANCHORS, logits, offsets, candidates_per_class=400)
    for ours, theirs in zip(uncapped, capped, strict=True):
        assert_same_detections(ours, theirs)


def test_detect_output_format_and_steps_agree_with_detect():
    logits, offsets = network_outputs(7, batch=3)
    results = detect(SMALL_ANCHORS, logits, offsets, top_k=15)
    assert len(results) == 3
    for image, found in enumerate(results):
        assert len(found.scores) == 15  # top_k
        assert found.boxes.min() >= 0 and found.boxes.max() <= 1  # clipped
        assert found.labels.min() >= 1 and found.labels.max() <= NUM_CLASSES - 1
        assert torch.all(found.scores[:-1] >= found.scores[1:])
        steps = detect_steps(SMALL_ANCHORS, logits[image], offsets[image], top_k=15)
        assert_same_detections(steps.final, found)
        # Each candidate's score is its anchor's probability of its class.
        probabilities = steps.probabilities[steps.candidate_anchors, steps.candidates.labels]
        assert torch.equal(steps.candidates.scores, probabilities)
        assert torch.all(steps.candidates.scores > SCORE_THRESHOLD)


def test_detect_without_gradient():
    logits, offsets = network_outputs(0)
    logits.requires_grad_()
    offsets.requires_grad_()
    (found, _) = detect(SMALL_ANCHORS, logits, offsets)
    assert not found.boxes.requires_grad and not found.scores.requires_grad


def test_detect_exact_score_ties_same_for_both_versions():
    # Logits rounded to few values: many exactly equal probabilities, across classes too. With
    # more than 1000 candidates torchvision merges the classes with an unstable sort, so this
    # checks that detect puts ties in one order whichever NMS ran.
    anchors = make_anchors([8, 4, 2, 1], [0.1, 0.3, 0.5, 0.7, 0.9], [[2]] * 4)
    gen = torch.Generator().manual_seed(5)
    logits = torch.randint(-2, 3, (2, anchors.shape[0], NUM_CLASSES), generator=gen).float()
    offsets = torch.zeros(2, anchors.shape[0], 4)
    assert len(detect_steps(anchors, logits[0], offsets[0]).candidates.scores) > 1000
    fast = detect(anchors, logits, offsets, top_k=1000)
    slow = detect(anchors, logits, offsets, top_k=1000, fast=False)
    for ours, theirs in zip(fast, slow, strict=True):
        assert_same_detections(ours, theirs)


# ---------------------------------------------------------------------------------------------
# Bad input


def message(text):
    return re.escape(text)


@pytest.mark.parametrize(
    ("boxes", "scores", "threshold", "expected"),
    [
        (torch.zeros(3, 5), torch.zeros(3), 0.5, "boxes of shape (*, 4) in xyxy format"),
        (ROW, torch.zeros(2), 0.5, "scores of shape (3,), one per box"),
        (ROW, torch.tensor([0.1, float("nan"), 0.2]), 0.5, "expected finite scores"),
        (ROW[:, [2, 1, 0, 3]], torch.zeros(3), 0.5, "x2 >= x1"),
        (ROW, torch.zeros(3), 1.5, "iou_threshold as a number in [0, 1]"),
        (ROW, torch.zeros(3), -0.1, "iou_threshold as a number in [0, 1]"),
        (ROW, torch.zeros(3), "0.5", "iou_threshold as a number"),
        (ROW, torch.zeros(3), True, "iou_threshold as a number"),
    ],
)
def test_nms_rejects_bad_input(boxes, scores, threshold, expected):
    with pytest.raises(ValueError, match=message(expected)):
        nms(boxes, scores, threshold)
    with pytest.raises(ValueError, match=message(expected)):
        batched_nms(boxes, scores, torch.zeros(len(boxes), dtype=torch.long), threshold)


@pytest.mark.parametrize(
    ("class_ids", "expected"),
    [
        (torch.zeros(3), "integer class_ids"),
        (torch.zeros(2, dtype=torch.long), "class_ids of shape (3,)"),
        (torch.zeros(3, dtype=torch.bool), "integer class_ids"),
    ],
)
def test_batched_nms_rejects_bad_class_ids(class_ids, expected):
    with pytest.raises(ValueError, match=message(expected)):
        batched_nms(ROW, torch.zeros(3), class_ids, 0.5)


def good_outputs():
    logits, offsets, anchors = hand_outputs()
    return {"class_logits": logits, "box_offsets": offsets, "anchors": anchors}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"class_logits": torch.zeros(3, 3)}, "class_logits of shape (B, A, C+1)"),
        ({"class_logits": torch.zeros(1, 3, 1)}, "C+1 >= 2"),
        ({"class_logits": torch.zeros(1, 3, 3, dtype=torch.long)}, "floating-point class_logits"),
        ({"class_logits": torch.full((1, 3, 3), float("nan"))}, "expected finite class_logits"),
        ({"class_logits": [[[0.0, 1.0]]]}, "class_logits of shape (B, A, C+1)"),
        ({"box_offsets": torch.zeros(1, 2, 4)}, "box_offsets of shape (1, 3, 4)"),
        ({"box_offsets": torch.full((1, 3, 4), float("inf"))}, "finite box_offsets"),
        ({"anchors": ROW[:2]}, "offsets of shape (2, 4)"),
        ({"score_threshold": 1.0}, "score_threshold as a number in [0, 1)"),
        ({"score_threshold": -0.01}, "score_threshold as a number in [0, 1)"),
        ({"iou_threshold": 2}, "iou_threshold as a number in [0, 1]"),
        ({"top_k": 0}, "top_k as an integer >= 1"),
        ({"top_k": 2.5}, "top_k as an integer >= 1"),
        ({"top_k": True}, "top_k as an integer >= 1"),
        ({"candidates_per_class": 0}, "candidates_per_class as an integer >= 1"),
        ({"fast": "yes"}, "fast as True or False"),
        ({"class_agnostic": 1}, "class_agnostic as True or False"),
        ({"variances": (10.0, 5.0)}, "variances as two numbers"),
    ],
)
def test_detect_rejects_bad_input(change, expected):
    arguments = {**good_outputs(), **change}
    with pytest.raises(ValueError, match=message(expected)):
        detect(**arguments)


def test_detect_steps_wants_one_image():
    logits, offsets, anchors = hand_outputs()
    with pytest.raises(ValueError, match=message("class_logits of shape (A, C+1)")):
        detect_steps(anchors, logits, offsets)
    with pytest.raises(ValueError, match=message("box_offsets of shape (A, 4)")):
        detect_steps(anchors, logits[0], offsets)
    with pytest.raises(ValueError, match=message("top_k as an integer >= 1")):
        detect_steps(anchors, logits[0], offsets[0], top_k=0)
    with pytest.raises(TypeError, match="top_kk"):  # a misspelt setting is not ignored
        detect_steps(anchors, logits[0], offsets[0], top_kk=5)
