"""How fast is the lesson's NMS, and the whole detect pipeline, compared with torchvision?

Run with ``.venv/bin/python benchmarks/bench_nms.py`` (or ``make benchmark``).

What is measured, all in one run, on the same inputs: one image, 5000 boxes x 20 object classes
(plus background). The boxes are realistic for NMS: most lie in clusters around 25 objects, as
anchors near an object all fire, and the rest are scattered background boxes. Each box's class
scores favour the class of the object it covers, the more the better it covers it.

1. ``batched_nms`` (the lesson's teaching version, ``ssd_lesson.inference``) against
   ``torchvision.ops.batched_nms``, on the (box, class) candidates the detect pipeline feeds it
   (probability > 0.01), and ``nms`` against ``torchvision.ops.nms`` on the largest class.
2. ``detect(fast=False)`` (teaching NMS) and ``detect(fast=True)`` (torchvision's NMS) against
   torchvision's ``SSD.postprocess_detections`` with ``topk_candidates`` = all anchors, which then
   follows the same steps as ``detect``: decode, softmax, threshold 0.01, NMS 0.45, top 200.

First we check that each pair keeps the same boxes (and print "same kept boxes: True"); only
then do we time them. House rule: timings are only ever printed as ratios measured side by side
in one run, never asserted in tests. The timing helpers are those of ``bench_matching.py``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import textwrap
import types

import torch
import torchvision
from bench_loss import check, print_rows
from bench_matching import time_side_by_side
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.ssd import SSD

from ssd_lesson.encoding import VARIANCES, encode
from ssd_lesson.inference import (
    NMS_IOU_THRESHOLD,
    SCORE_THRESHOLD,
    TOP_K,
    batched_nms,
    detect,
    detect_steps,
    nms,
)

NUM_BOXES = 5000
NUM_CLASSES = 20  # object classes; the network scores C + 1 = 21 with background
NUM_OBJECTS = 25
CLUSTERED = 0.8  # this share of the boxes lies around an object, the rest anywhere
SEED = 0
DEVICE = torch.device("cpu")  # torchvision's NMS loops over boxes in C++: a CPU story
CLOSING_NOTE = """
(*) postprocess_detections with topk_candidates = all anchors: the same steps as detect.
The teaching NMS loops in Python over the boxes in score order and keeps an N x N overlap table
per class; torchvision's loops in C++. Being slower is expected: it is there to be read.
detect(fast=True) is the one to use. Timings are never asserted, only printed."""
WEIGHTS = tuple(1 / v for v in (VARIANCES[0], VARIANCES[0], VARIANCES[1], VARIANCES[1]))


# ---------------------------------------------------------------------------------------------
# Inputs


class Scene(types.SimpleNamespace):
    """One image's anchors, the network's outputs for them, and the NMS candidates."""


def log_uniform(low: float, high: float, shape: tuple[int, ...], gen: torch.Generator):
    return torch.exp(math.log(low) + torch.rand(shape, generator=gen) * math.log(high / low))


def make_scene() -> Scene:
    gen = torch.Generator().manual_seed(SEED)
    # 1) Objects: sizes 5%..60% of the image, anywhere they fit, random classes.
    size = log_uniform(0.05, 0.6, (NUM_OBJECTS, 2), gen)
    corner = torch.rand(NUM_OBJECTS, 2, generator=gen) * (1 - size)
    objects = torch.cat((corner, corner + size), dim=1)  # (O, 4)
    object_class = torch.randint(1, NUM_CLASSES + 1, (NUM_OBJECTS,), generator=gen)
    # 2) Anchors: most are the objects, shifted and stretched a little; the rest anywhere.
    near = int(CLUSTERED * NUM_BOXES)
    owner = torch.randint(0, NUM_OBJECTS, (near,), generator=gen)
    centre = (objects[owner, :2] + objects[owner, 2:]) / 2
    side = (objects[owner, 2:] - objects[owner, :2]) * log_uniform(0.6, 1.6, (near, 2), gen)
    centre = centre + 0.15 * side * torch.randn(near, 2, generator=gen)
    scattered_side = log_uniform(0.03, 0.5, (NUM_BOXES - near, 2), gen)
    scattered_centre = torch.rand(NUM_BOXES - near, 2, generator=gen)
    centre, side = torch.cat((centre, scattered_centre)), torch.cat((side, scattered_side))
    anchors = torch.cat((centre - side / 2, centre + side / 2), dim=1).clamp(0, 1)  # (A, 4)
    anchors[:, 2:] = torch.maximum(anchors[:, 2:], anchors[:, :2] + 1e-3)  # keep some area
    # 3) The network's outputs: offsets that move each clustered anchor most of the way onto
    #    its object, and class scores that grow with how well the anchor covers the object.
    offsets = 0.5 * torch.randn(NUM_BOXES, 4, generator=gen)
    offsets[:near] += 0.7 * encode(anchors[:near], objects[owner])
    logits = torch.randn(NUM_BOXES, NUM_CLASSES + 1, generator=gen)
    logits[:, 0] += 7.0  # background is the likely answer...
    coverage = torchvision.ops.box_iou(anchors[:near], objects[owner]).diagonal()
    logits[torch.arange(near), object_class[owner]] += 12.0 * coverage  # ...unless on an object
    logits, offsets = logits[None], offsets[None]  # a batch of one image
    candidates = detect_steps(anchors, logits[0], offsets[0]).candidates
    return Scene(anchors=anchors, logits=logits, offsets=offsets, candidates=candidates)


# ---------------------------------------------------------------------------------------------
# The torchvision side


def torchvision_postprocess(scene: Scene) -> list[dict[str, torch.Tensor]]:
    """SSD.postprocess_detections on a stand-in for the model; image size (1, 1) = fractions."""
    fake_ssd = types.SimpleNamespace(
        box_coder=BoxCoder(WEIGHTS),
        score_thresh=SCORE_THRESHOLD,
        topk_candidates=NUM_BOXES,  # no cap before NMS, as in the paper and in detect
        nms_thresh=NMS_IOU_THRESHOLD,
        detections_per_img=TOP_K,
    )
    head_outputs = {"bbox_regression": scene.offsets, "cls_logits": scene.logits}
    return SSD.postprocess_detections(fake_ssd, head_outputs, [scene.anchors], [(1, 1)])


def largest_class(scene: Scene) -> tuple[torch.Tensor, torch.Tensor]:
    """The boxes and scores of the class with the most candidates."""
    labels = scene.candidates.labels
    members = labels == torch.bincount(labels).argmax()
    return scene.candidates.boxes[members], scene.candidates.scores[members]


# ---------------------------------------------------------------------------------------------
# Checks: exit with a message unless ours keeps the same boxes as torchvision


def check_nms(scene: Scene) -> None:
    boxes, scores, labels = scene.candidates
    class_boxes, class_scores = largest_class(scene)

    def same() -> None:
        ours = batched_nms(boxes, scores, labels, NMS_IOU_THRESHOLD)
        theirs = torchvision.ops.batched_nms(boxes, scores, labels, NMS_IOU_THRESHOLD)
        assert torch.equal(ours, theirs), "batched_nms keeps other boxes"
        ours = nms(class_boxes, class_scores, NMS_IOU_THRESHOLD)
        assert torch.equal(ours, torchvision.ops.nms(class_boxes, class_scores, NMS_IOU_THRESHOLD))

    check("NMS", same)
    kept = len(torchvision.ops.batched_nms(boxes, scores, labels, NMS_IOU_THRESHOLD))
    print(
        f"   {len(scores)} candidates (score > {SCORE_THRESHOLD}) in {len(labels.unique())} "
        f"classes, {kept} kept; largest class {len(class_scores)} candidates"
    )
    print("   same kept boxes: True (batched_nms and nms, same indices in the same order)")


def check_detect(scene: Scene) -> None:
    (expected,) = torchvision_postprocess(scene)

    def same() -> None:
        for fast in (False, True):
            (found,) = detect(scene.anchors, scene.logits, scene.offsets, fast=fast)
            assert torch.equal(found.labels, expected["labels"]), f"fast={fast}: labels differ"
            assert torch.equal(found.scores, expected["scores"]), f"fast={fast}: scores differ"
            # Our decode and torchvision's may round the last bit differently.
            assert_close(found.boxes, expected["boxes"], rtol=0, atol=1e-6)

    check("detect", same)
    print(
        f"   same kept boxes: True ({len(expected['scores'])} detections: equal labels and "
        "scores, boxes within 1e-6; fast=False and fast=True)"
    )


# ---------------------------------------------------------------------------------------------
# Timing and printing


def print_header(rounds: int) -> None:
    print("NMS and detect benchmark (ssd_lesson vs torchvision)")
    facts = [
        f"torch {torch.__version__}",
        f"torchvision {torchvision.__version__}",
        f"Python {platform.python_version()}",
        f"device {DEVICE}",
        f"torch threads {torch.get_num_threads()}",
        f"CPU cores {os.cpu_count()}",
        f"{rounds} interleaved rounds, median per call",
    ]
    if hasattr(os, "getloadavg"):  # other programs running distort the absolute times
        facts.append(f"load average before the run (1 min) {os.getloadavg()[0]:.2f}")
    print(textwrap.fill(", ".join(facts), width=100))


def bench_nms(scene: Scene, rounds: int) -> None:
    print()
    print(
        f"1. NMS: {NUM_BOXES} boxes x {NUM_CLASSES} classes around {NUM_OBJECTS} objects "
        "(teaching batched_nms / nms vs torchvision.ops)"
    )
    check_nms(scene)
    boxes, scores, labels = scene.candidates
    class_boxes, class_scores = largest_class(scene)
    comparisons = {
        "batched_nms, all classes": {
            "ours": lambda: batched_nms(boxes, scores, labels, NMS_IOU_THRESHOLD),
            "tv": lambda: torchvision.ops.batched_nms(boxes, scores, labels, NMS_IOU_THRESHOLD),
        },
        "nms, largest class": {
            "ours": lambda: nms(class_boxes, class_scores, NMS_IOU_THRESHOLD),
            "tv": lambda: torchvision.ops.nms(class_boxes, class_scores, NMS_IOU_THRESHOLD),
        },
    }
    print_rows({what: time_side_by_side(fns, rounds, DEVICE) for what, fns in comparisons.items()})


def bench_detect(scene: Scene, rounds: int) -> None:
    print()
    print("2. Whole pipeline: detect vs SSD.postprocess_detections (*) (decode ... top 200)")
    check_detect(scene)

    def ours(fast: bool):
        return lambda: detect(scene.anchors, scene.logits, scene.offsets, fast=fast)

    comparisons = {
        "detect(fast=False), teaching NMS": {
            "ours": ours(False),
            "tv": lambda: torchvision_postprocess(scene),
        },
        "detect(fast=True), torchvision NMS": {
            "ours": ours(True),
            "tv": lambda: torchvision_postprocess(scene),
        },
    }
    print_rows({what: time_side_by_side(fns, rounds, DEVICE) for what, fns in comparisons.items()})


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timing rounds (default 7)")
    # NMS is sequential: torchvision's kernel runs on one thread, and ours does many small tensor
    # operations that a second thread cannot speed up. On a shared machine a second thread only
    # waits for a busy core (we saw 20x slower, erratic rounds), so one thread is the default.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    for name in ("rounds", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    print_header(args.rounds)
    scene = make_scene()
    bench_nms(scene, args.rounds)
    bench_detect(scene, args.rounds)
    print(CLOSING_NOTE)


if __name__ == "__main__":
    sys.exit(main())
