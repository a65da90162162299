"""Lesson 07's detection explorer: hand-set network outputs, then a real (random) SSD."""

import base64
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from test_widgets import sweep_explorer  # noqa: E402  (tests/ is on sys.path)

from ssd_lesson.data.collate import detection_collate  # noqa: E402
from ssd_lesson.data.shapes import ShapesDataset  # noqa: E402
from ssd_lesson.inference import detect, detect_steps  # noqa: E402
from ssd_lesson.model import SSD, small_config  # noqa: E402
from ssd_lesson.plotting import GROUND_TRUTH_COLOR  # noqa: E402
from ssd_lesson.widgets import (  # noqa: E402
    DetectionView,
    describe_detection_view,
    detection_explorer,
    detection_view,
    draw_detection_view,
)
from ssd_lesson.widgets.inference import CLASS_COLORS, LABELLED_BOXES  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ("background", "cat", "dog")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The explorers' tensors are tiny: more threads only wait for each other (on a shared
    two-core machine the sweeps below take several times longer with torch's default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- a scene checked by hand
#
# Four anchors and zero offsets, so each anchor's box is the anchor itself:
#   a0 (0.0, 0.0, 0.4, 0.4) and a1 (0.1, 0.0, 0.5, 0.4): both "cat"; they share 0.3 x 0.4 = 0.12,
#      their union is 0.16 + 0.16 - 0.12 = 0.20: IoU 0.6.
#   a2 (0.6, 0.6, 1.0, 1.0) "cat" and a3 (0.6, 0.6, 1.0, 0.9) "dog": IoU 0.12 / 0.16 = 0.75.
# The logits are log-probabilities, so the softmax gives back these probabilities exactly:
#   (background, cat, dog) = a0 (0.09, 0.9, 0.01), a1 (0.19, 0.8, 0.01), a2 (0.29, 0.7, 0.01),
#   a3 (0.39, 0.01, 0.6).
# At the score threshold 0.5 the candidates are a0 cat 0.9, a1 cat 0.8, a2 cat 0.7, a3 dog 0.6.
ANCHORS = torch.tensor(
    [[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4], [0.6, 0.6, 1.0, 1.0], [0.6, 0.6, 1.0, 0.9]]
)
PROBABILITIES = torch.tensor(
    [[0.09, 0.9, 0.01], [0.19, 0.8, 0.01], [0.29, 0.7, 0.01], [0.39, 0.01, 0.6]]
)
# Objects: a cat on a0, a dog on a2's square (a3 overlaps it by 0.75, a2 too but is a "cat"), and
# a cat in the bottom-left corner that no anchor covers.
GT_XYXY = torch.tensor([[0.0, 0.0, 0.4, 0.4], [0.6, 0.6, 1.0, 1.0], [0.0, 0.6, 0.3, 1.0]])
GT_LABELS = torch.tensor([1, 2, 1])


def hand_view(**settings) -> DetectionView:
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    logits, offsets = PROBABILITIES.log(), torch.zeros(4, 4)
    return detection_view(image, logits, offsets, ANCHORS, GT_XYXY, GT_LABELS, **settings)


def kept_anchors(view: DetectionView) -> list[int]:
    """Which anchors the kept boxes are (each kept box is one anchor: the offsets are 0)."""
    same = torch.isclose(view.detections.boxes[:, None], ANCHORS[None], atol=1e-6).all(-1)
    return [int(row.nonzero()[0, 0]) for row in same]


def test_nms_iou_below_the_overlap_keeps_one_box_above_keeps_both():
    # a0 and a1 are both cats at IoU 0.6: NMS at 0.5 drops a1; at 0.65 it keeps both.
    below = hand_view(iou_threshold=0.5)
    assert kept_anchors(below) == [0, 2, 3]
    assert (below.num_candidates, below.num_suppressed, below.num_kept) == (4, 1, 3)
    above = hand_view(iou_threshold=0.65)
    assert kept_anchors(above) == [0, 1, 2, 3]
    assert (above.num_candidates, above.num_suppressed, above.num_kept) == (4, 0, 4)


def test_boxes_of_different_classes_survive_per_class_nms_not_class_agnostic():
    # a2 (cat 0.7) and a3 (dog 0.6) overlap by 0.75.
    per_class = hand_view(iou_threshold=0.5, class_agnostic=False)
    assert 2 in kept_anchors(per_class) and 3 in kept_anchors(per_class)
    agnostic = hand_view(iou_threshold=0.5, class_agnostic=True)
    assert kept_anchors(agnostic) == [0, 2]
    assert (agnostic.num_suppressed, agnostic.num_kept) == (2, 2)
    # ...unless the NMS IoU is above their overlap.
    assert kept_anchors(hand_view(iou_threshold=0.8, class_agnostic=True)) == [0, 1, 2, 3]


def test_the_score_threshold_drops_low_scores():
    scores = {t: hand_view(score_threshold=t, iou_threshold=1.0) for t in (0.65, 0.75, 0.85, 0.95)}
    assert [v.num_candidates for v in scores.values()] == [3, 2, 1, 0]
    assert kept_anchors(scores[0.75]) == [0, 1]
    torch.testing.assert_close(scores[0.75].detections.scores, torch.tensor([0.9, 0.8]))
    assert scores[0.75].detections.labels.tolist() == [1, 1]
    assert scores[0.95].num_kept == 0 and scores[0.95].detections.boxes.shape == (0, 4)
    # The dogs' 0.01 and the cats' 0.01 are candidates only at a threshold below them.
    assert hand_view(score_threshold=0.005).num_candidates == 8


def test_found_objects_by_hand():
    # Per class: the cat on a0 (IoU 1) and the dog (a3, IoU 0.75) are found; the corner cat
    # is not.
    view = hand_view(iou_threshold=0.5)
    assert view.found.tolist() == [True, True, False] and view.num_found == 2
    # Class-agnostic NMS drops the dog box a3; the cat box a2 on the dog does not count.
    agnostic = hand_view(iou_threshold=0.5, class_agnostic=True)
    assert agnostic.found.tolist() == [True, False, False] and agnostic.num_found == 1
    # At 0.75 only the cats a0 and a1 are left.
    assert hand_view(score_threshold=0.75).found.tolist() == [True, False, False]


def test_describe_detection_view_by_hand():
    assert describe_detection_view(hand_view(iou_threshold=0.5)) == (
        "kept: 3 boxes · 4 above the score threshold, 1 removed by NMS · "
        "found 2 of 3 objects (IoU ≥ 0.5)"
    )
    one = hand_view(score_threshold=0.85)
    assert describe_detection_view(one).startswith("kept: 1 box · 1 above the score threshold")
    alone = detection_view(
        torch.zeros(3, 4, 4),
        PROBABILITIES.log(),
        torch.zeros(4, 4),
        ANCHORS,
        GT_XYXY[:1],
        GT_LABELS[:1],
        score_threshold=0.95,
    )
    assert describe_detection_view(alone) == (
        "kept: 0 boxes · 0 above the score threshold, 0 removed by NMS · "
        "found 0 of 1 object (IoU ≥ 0.5)"
    )


def _random_outputs(num_classes=3, seed=0):
    """Network outputs for SSD(small_config())'s anchors: random, but confident in places."""
    generator = torch.Generator().manual_seed(seed)
    anchors = small_config(num_classes).anchors()
    logits = 3 * torch.randn(len(anchors), num_classes + 1, generator=generator)
    offsets = 0.5 * torch.randn(len(anchors), 4, generator=generator)
    return anchors, logits, offsets


@pytest.mark.parametrize(
    ("score_threshold", "iou_threshold", "class_agnostic"),
    [(0.5, 0.45, False), (0.9, 0.3, True), (0.2, 0.7, False), (0.01, 1.0, True)],
)
def test_view_keeps_what_detect_keeps(score_threshold, iou_threshold, class_agnostic):
    anchors, logits, offsets = _random_outputs()
    settings = {
        "score_threshold": score_threshold,
        "iou_threshold": iou_threshold,
        "class_agnostic": class_agnostic,
    }
    view = detection_view(
        torch.zeros(3, 8, 8), logits, offsets, anchors, GT_XYXY, GT_LABELS, **settings
    )
    for fast in (True, False):  # torchvision's NMS and the lesson's
        (expected,) = detect(anchors, logits[None], offsets[None], fast=fast, **settings)
        for got, want in zip(view.detections, expected, strict=True):
            torch.testing.assert_close(got, want)
    steps = detect_steps(anchors, logits, offsets, **settings)
    assert view.num_candidates == len(steps.candidates.scores) > 0
    assert view.num_suppressed == view.num_candidates - len(steps.kept)
    assert view.num_kept + view.num_beyond_top_k == len(steps.kept)


def test_view_counts_the_boxes_beyond_the_top_k():
    anchors, logits, offsets = _random_outputs()
    view = detection_view(
        torch.zeros(3, 8, 8), logits, offsets, anchors, GT_XYXY, GT_LABELS, 0.01, 1.0
    )
    # NMS at IoU 1.0 removes nothing; detect keeps the best 200 (the paper's top k).
    assert view.num_suppressed == 0 and view.num_kept == 200
    assert view.num_beyond_top_k == view.num_candidates - 200 > 0
    assert f", {view.num_beyond_top_k} beyond the top 200 · " in describe_detection_view(view)


def test_found_is_a_loop_over_objects_and_boxes():
    anchors, logits, offsets = _random_outputs(seed=1)
    (detections,) = detect(anchors, logits[None], offsets[None], 0.3, 0.45)
    large = (detections.boxes[:, 2:] - detections.boxes[:, :2]).amin(dim=1) > 0.2
    boxes, classes = detections.boxes[large], detections.labels[large]
    # Objects on a kept box, next to one, on one but of another class, and a tiny one.
    gt = torch.stack(
        [
            boxes[0],
            (boxes[1] + torch.tensor([0.08, 0.0, 0.08, 0.0])).clamp(0, 1),
            boxes[2],
            torch.tensor([0.0, 0.0, 0.02, 0.02]),
        ]
    )
    labels = torch.tensor([classes[0], classes[1], classes[2] % 3 + 1, 1])
    view = detection_view(torch.zeros(3, 8, 8), logits, offsets, anchors, gt, labels, 0.3, 0.45)
    boxes, _, box_labels = view.detections
    expected = []
    for g in range(len(gt)):
        x1, y1, x2, y2 = gt[g].tolist()
        found = False
        for k in range(len(boxes)):
            bx1, by1, bx2, by2 = boxes[k].tolist()
            w = max(0.0, min(x2, bx2) - max(x1, bx1))
            h = max(0.0, min(y2, by2) - max(y1, by1))
            union = (x2 - x1) * (y2 - y1) + (bx2 - bx1) * (by2 - by1) - w * h
            found |= bool(box_labels[k] == labels[g]) and w * h / union >= 0.5
        expected.append(found)
    assert view.found.tolist() == expected == [True, True, False, False]
    assert view.num_found == 2


def test_detection_view_rejects_bad_inputs():
    image, logits, offsets = torch.zeros(3, 8, 8), PROBABILITIES.log(), torch.zeros(4, 4)
    with pytest.raises(ValueError, match=r"image as a tensor of shape \(3, H, W\)"):
        detection_view(image[0], logits, offsets, ANCHORS, GT_XYXY, GT_LABELS)
    with pytest.raises(ValueError, match=r"gt_labels in 1\.\.2"):
        detection_view(image, logits, offsets, ANCHORS, GT_XYXY, torch.tensor([1, 3, 1]))
    with pytest.raises(ValueError, match=r"gt_labels of shape \(3,\)"):
        detection_view(image, logits, offsets, ANCHORS, GT_XYXY, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="gt_xyxy"):  # pixels, not fractions
        detection_view(image, logits, offsets, ANCHORS, 64 * GT_XYXY, GT_LABELS)
    with pytest.raises(ValueError, match="score_threshold"):
        detection_view(image, logits, offsets, ANCHORS, GT_XYXY, GT_LABELS, score_threshold=1.0)


def test_draw_detection_view_by_hand():
    view = hand_view(iou_threshold=0.5)
    ax = draw_detection_view(view, Figure().add_subplot(), NAMES, legend=False)
    assert len(ax.images) == 1
    boxes, ground_truth = ax.collections  # no unlabelled boxes: all three have a label
    assert len(ground_truth.get_paths()) == 3 and ground_truth.get_linestyle()[0][1] is not None
    assert matplotlib.colors.to_hex(ground_truth.get_edgecolor()[0]) == GROUND_TRUTH_COLOR.lower()
    # Kept boxes: a3 dog 0.6, a2 cat 0.7, a0 cat 0.9, worst first so that the best is on top.
    assert [t.get_text() for t in ax.texts] == ["dog 0.60", "cat 0.70", "cat 0.90"]
    colors = [matplotlib.colors.to_hex(c) for c in boxes.get_edgecolor()]
    assert colors == [CLASS_COLORS[1].lower(), CLASS_COLORS[0].lower(), CLASS_COLORS[0].lower()]
    assert "score > 0.50" in ax.get_title() and "IoU 0.50 (per class)" in ax.get_title()


def test_draw_detection_view_labels_only_the_best_boxes():
    anchors, logits, offsets = _random_outputs()
    view = detection_view(torch.zeros(3, 8, 8), logits, offsets, anchors, GT_XYXY, GT_LABELS, 0.5)
    assert view.num_kept > LABELLED_BOXES
    ax = draw_detection_view(view, Figure().add_subplot(), (*NAMES, "bird"))
    # Every kept box is drawn; the best LABELLED_BOXES have a label, the very best last.
    assert sum(len(c.get_paths()) for c in ax.collections[:-1]) == view.num_kept
    assert len(ax.texts) == LABELLED_BOXES
    best = view.detections
    name = (*NAMES, "bird")[int(best.labels[0])]
    assert ax.texts[-1].get_text() == f"{name} {best.scores[0]:.2f}"
    assert ax.get_legend() is not None


# ---------------------------------------------------------------- the explorer, on a real SSD

SHAPE_NAMES = ("background", "ellipse", "rectangle", "triangle", "cross")


@pytest.fixture(scope="module")
def data():
    return ShapesDataset(4, seed=0)


@pytest.fixture(scope="module")
def model(data):
    """A random SSD that is confident in places, so that thresholds matter: larger class-head
    weights, and batch norm's running statistics measured on the images (untrained, eval mode
    shrinks every score towards "background")."""
    torch.manual_seed(0)
    net = SSD(small_config())
    with torch.no_grad():
        for head in net.class_heads:
            torch.nn.init.normal_(head.weight, std=0.05)
            torch.nn.init.zeros_(head.bias)
        for layer in net.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.momentum = None  # the running statistics become plain averages
        net.train()
        net(detection_collate([data[i] for i in range(len(data))]).images)
    return net


def _outputs(net, item):
    """The network's outputs for one dataset item, in eval mode."""
    images, (gt,), (labels,) = detection_collate([item])
    net.eval()
    with torch.no_grad():
        logits, offsets = net(images)
    return images[0], logits[0], offsets[0], gt, labels


def test_explorer_shows_the_view_of_the_model_in_eval_mode(model, data):
    model.train()
    explorer = detection_explorer(model, data, index=2, score_threshold=0.7)
    assert model.training  # put back as it was
    image, logits, offsets, gt, labels = _outputs(model, data[2])
    model.train()
    expected = detection_view(image, logits, offsets, model.config.anchors(), gt, labels, 0.7)
    for got, want in zip(explorer.data.detections, expected.detections, strict=True):
        torch.testing.assert_close(got, want)
    assert explorer.data.num_kept > 0 and explorer.data.found.shape == (len(labels),)
    assert explorer.text == describe_detection_view(expected) == explorer.readout.value
    assert explorer.text.startswith("kept: ")
    model.eval()
    detection_explorer(model, data)
    assert not model.training


def test_explorer_controls(model, data):
    explorer = detection_explorer(model, data)
    controls = explorer.controls
    assert [c.description for c in controls.values()] == [
        "score threshold",
        "NMS IoU",
        "NMS",
        "image",
    ]
    score, iou, image = controls["score_threshold"], controls["iou_threshold"], controls["index"]
    assert (score.value, score.min, score.max, score.step) == (0.5, 0.01, 0.99, 0.01)
    assert (iou.value, iou.min, iou.max, iou.step) == (0.45, 0.05, 1.0, 0.05)
    assert (image.value, image.min, image.max) == (0, 0, 3)
    assert controls["class_agnostic"].options == (("per class", False), ("class-agnostic", True))
    assert controls["class_agnostic"].value is False


def test_explorer_follows_its_controls(model, data):
    explorer = detection_explorer(model, data, score_threshold=0.9)
    first_picture, first_text = explorer.png, explorer.text
    assert first_picture.startswith(PNG_SIGNATURE)
    explorer.controls["score_threshold"].value = 0.6  # as a learner dragging the slider
    lower = explorer.data
    assert lower.score_threshold == 0.6 and lower.num_kept > 0
    assert explorer.text != first_text and explorer.png != first_picture
    explorer.set(class_agnostic=True)
    assert explorer.data.class_agnostic and explorer.data.num_kept <= lower.num_kept
    explorer.set(index=3)
    assert len(explorer.data.gt_labels) == len(data[3][1]["labels"])
    assert explorer.readout.value == explorer.text == describe_detection_view(explorer.data)
    assert explorer.image.value == explorer.png


def test_explorer_set_equals_a_fresh_explorer(model, data):
    explorer = detection_explorer(model, data)
    explorer.set(score_threshold=0.65, iou_threshold=0.3, class_agnostic=True, index=1)
    fresh = detection_explorer(
        model, data, index=1, score_threshold=0.65, iou_threshold=0.3, class_agnostic=True
    )
    assert explorer.text == fresh.text
    assert explorer.png == fresh.png
    # ...and shows the view at those settings.
    image, logits, offsets, gt, labels = _outputs(model, data[1])
    anchors = model.config.anchors()
    expected = detection_view(image, logits, offsets, anchors, gt, labels, 0.65, 0.3, True)
    view = explorer.data
    assert (view.score_threshold, view.iou_threshold, view.class_agnostic) == (0.65, 0.3, True)
    for got, want in zip(view.detections, expected.detections, strict=True):
        torch.testing.assert_close(got, want)
    assert view.num_suppressed == expected.num_suppressed > 0


def test_explorer_runs_the_network_once_per_image(model, data):
    calls = []
    hook = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        explorer = detection_explorer(model, data)
        assert len(calls) == 1
        explorer.set(score_threshold=0.3, iou_threshold=0.6, class_agnostic=True)
        assert len(calls) == 1
        explorer.controls["index"].value = 1
        explorer.controls["score_threshold"].value = 0.8
        explorer.controls["index"].value = 0
        assert len(calls) == 2
    finally:
        hook.remove()


def test_explorer_static_fallback(model, data):
    explorer = detection_explorer(model, data, score_threshold=0.7)
    bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
    assert bundle["text/plain"] == explorer.text and "\n" not in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_every_control_value_computes_describes_and_draws(model, data):
    # Score threshold (11 values) x NMS IoU (all 20) x image (all 4), each with both NMS modes.
    assert sweep_explorer(detection_explorer(model, data)) == 2 * (1 + 11 + 20 + 4)


def test_the_view_does_not_share_the_explorers_cache(model, data):
    explorer = detection_explorer(model, data)
    for tensor in (explorer.data.image, explorer.data.gt_xyxy, explorer.data.gt_labels):
        tensor.fill_(0)
    explorer.set(score_threshold=0.3)
    image, _, _, gt, labels = _outputs(model, data[0])
    assert torch.equal(explorer.data.image, image) and torch.equal(explorer.data.gt_xyxy, gt)
    assert torch.equal(explorer.data.gt_labels, labels)


def test_untrained_ssd_smoke():
    torch.manual_seed(0)
    data = ShapesDataset(4, seed=0)
    explorer = detection_explorer(SSD(small_config()), data, score_threshold=0.01)
    # Fresh heads say "background" with probability 0.99: nothing passes even 0.01.
    objects = len(data[0][1]["labels"])
    assert explorer.text == (
        f"kept: 0 boxes · 0 above the score threshold, 0 removed by NMS · found 0 of {objects} "
        "objects (IoU ≥ 0.5)"
    )
    first = explorer.png
    explorer.set(index=1)
    assert explorer.png != first and explorer.png.startswith(PNG_SIGNATURE)


def test_explorer_class_names(model, data):
    explorer = detection_explorer(model, data, score_threshold=0.7)
    texts = [t.get_text() for t in explorer.axes.texts]
    assert texts and all(t.split()[0] in SHAPE_NAMES[1:] for t in texts)
    names = ("bg", "a", "b", "c", "d")
    renamed = detection_explorer(model, data, score_threshold=0.7, class_names=names)
    assert all(t.get_text().split()[0] in names[1:] for t in renamed.axes.texts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"index": 4}, r"index .* in \[0, 3\]"),
        ({"index": -1}, r"index as an integer >= 0"),
        ({"index": True}, r"index as an integer"),
        ({"score_threshold": 0.0}, r"score_threshold as a number in \[0\.01, 0\.99\]"),
        ({"score_threshold": 1.0}, r"score_threshold as a number in \[0\.01, 0\.99\]"),
        ({"score_threshold": "0.5"}, r"score_threshold as a number"),
        ({"iou_threshold": 0.0}, r"iou_threshold as a number in \[0\.05, 1\]"),
        ({"iou_threshold": 1.5}, r"iou_threshold as a number in \[0\.05, 1\]"),
        ({"class_agnostic": "yes"}, r"class_agnostic as True or False"),
        ({"class_names": ("a", "b")}, r"expected 5 class_names"),
    ],
)
def test_explorer_rejects_bad_arguments(model, data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        detection_explorer(model, data, **kwargs)


def test_explorer_rejects_what_is_not_an_ssd_or_an_empty_dataset(model, data):
    with pytest.raises(ValueError, match=r"model as an ssd_lesson\.model\.SSD"):
        detection_explorer(torch.nn.Linear(2, 2), data)
    with pytest.raises(ValueError, match="at least one image"):
        detection_explorer(model, ShapesDataset(0))


def test_hand_scene_iou_is_what_the_comments_say():
    # The numbers the tests above rely on.
    from ssd_lesson.boxes import box_iou

    iou = box_iou(ANCHORS, ANCHORS)
    assert math.isclose(iou[0, 1].item(), 0.6, rel_tol=1e-6)
    assert math.isclose(iou[2, 3].item(), 0.75, rel_tol=1e-6)
    assert iou[0, 2].item() == 0 and iou[1, 3].item() == 0
