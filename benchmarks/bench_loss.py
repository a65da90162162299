"""How fast are the SSD loss and its targets, compared with torchvision?

Run with ``.venv/bin/python benchmarks/bench_loss.py`` (or ``make benchmark``).

What is measured, all in one run, on the same inputs (SSD300's 8732 anchors, 32 images x 10
objects, 21 class scores: background + the 20 PASCAL VOC classes):

1. The loss: ``ssd_loss`` from ``ssd_lesson.loss`` against torchvision's ``SSD.compute_loss``
   (called on a stand-in for the model, which needs only ``box_coder`` and ``neg_to_pos_ratio``),
   forward alone and forward + backward. First we check that both give the same two loss terms
   and the same gradients; only then do we time them.

   The two calls do not do the same work: torchvision's ``compute_loss`` encodes the matched
   boxes into offsets inside the call, ours receives them from ``build_targets``. So a third
   line times the whole pipeline from ground truth to gradients: ``fast.build_targets`` (what
   training uses) + ``ssd_loss`` against torchvision's per-image ``SSDMatcher`` +
   ``compute_loss``.
2. The targets: ``fast.build_targets`` against torchvision's pieces in a per-image loop
   (``box_iou``, ``SSDMatcher``, ``BoxCoder.encode_single`` of the positives, and filling an (A,)
   label tensor and an (A, 4) offsets tensor), checked equal first. The lesson's readable
   ``encoding.build_targets`` (a loop over images) is printed too, for information.

House rule: timings are only ever printed as ratios measured side by side in one run, never
asserted in tests. The timing helpers are the ones of ``bench_matching.py``: interleaved rounds
in a rotating order, the median over rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import types

import torch
import torchvision
from bench_matching import medians, random_gt_boxes, time_side_by_side
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder, SSDMatcher
from torchvision.models.detection.ssd import SSD
from torchvision.ops import box_iou

from ssd_lesson import encoding, fast
from ssd_lesson.anchors import ssd300_anchors
from ssd_lesson.encoding import VARIANCES
from ssd_lesson.loss import NEG_POS_RATIO, ssd_loss

NUM_IMAGES = 32
NUM_OBJECTS = 10
NUM_CLASSES = 21  # C + 1
IOU_THRESHOLD = 0.5
SEED = 0
DEVICE = torch.device("cpu")  # torchvision's matching and loss loop over images: a CPU story
# torchvision's BoxCoder weights are 1 / our variances: (10, 10, 5, 5).
WEIGHTS = tuple(1 / v for v in (VARIANCES[0], VARIANCES[0], VARIANCES[1], VARIANCES[1]))
# What compute_loss reads from the model; the rest of an SSD is not needed.
TORCHVISION_SSD = types.SimpleNamespace(box_coder=BoxCoder(WEIGHTS), neg_to_pos_ratio=NEG_POS_RATIO)


# ---------------------------------------------------------------------------------------------
# Inputs and the torchvision side


class Batch(types.SimpleNamespace):
    """Anchors, ground truth and the network's outputs, shared by every timed function."""


def make_batch() -> Batch:
    anchors = ssd300_anchors()  # (A, 4)
    gt_list = random_gt_boxes(NUM_IMAGES, NUM_OBJECTS, SEED, DEVICE)
    gen = torch.Generator().manual_seed(SEED)
    labels_list = [torch.randint(1, NUM_CLASSES, (NUM_OBJECTS,), generator=gen) for _ in gt_list]
    shape = (NUM_IMAGES, anchors.shape[0])
    logits = torch.randn(*shape, NUM_CLASSES, generator=gen).requires_grad_()  # (B, A, C+1)
    offsets = torch.randn(*shape, 4, generator=gen).requires_grad_()  # (B, A, 4)
    return Batch(
        anchors=anchors,
        gt_list=gt_list,
        labels_list=labels_list,
        logits=logits,
        offsets=offsets,
        targets=[{"boxes": g, "labels": lab} for g, lab in zip(gt_list, labels_list, strict=True)],
    )


def torchvision_matches(batch: Batch) -> list[torch.Tensor]:
    """What torchvision's SSD.forward does before compute_loss: one SSDMatcher call per image."""
    matcher = SSDMatcher(IOU_THRESHOLD)
    return [matcher(box_iou(gt, batch.anchors)) for gt in batch.gt_list]


def torchvision_loss(batch: Batch, matched_idxs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    head_outputs = {"bbox_regression": batch.offsets, "cls_logits": batch.logits}
    anchors = [batch.anchors] * NUM_IMAGES
    return SSD.compute_loss(TORCHVISION_SSD, batch.targets, head_outputs, anchors, matched_idxs)


def torchvision_targets(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, A) labels, (B, A, 4) offsets, (B, A) matches from torchvision's pieces, per image."""
    labels, offsets = [], []
    matches = torchvision_matches(batch)
    for gt, gt_labels, matched in zip(batch.gt_list, batch.labels_list, matches, strict=True):
        positive = torch.where(matched >= 0)[0]
        image_labels = torch.zeros(matched.shape[0], dtype=torch.int64)
        image_labels[positive] = gt_labels[matched[positive]]
        image_offsets = torch.zeros(matched.shape[0], 4)
        image_offsets[positive] = TORCHVISION_SSD.box_coder.encode_single(
            gt[matched[positive]], batch.anchors[positive]
        )
        labels.append(image_labels)
        offsets.append(image_offsets)
    return torch.stack(labels), torch.stack(offsets), torch.stack(matches)


def ours_targets(batch: Batch):
    """What training uses: ``fast.build_targets``."""
    return fast.build_targets(batch.anchors, batch.gt_list, batch.labels_list, IOU_THRESHOLD)


def readable_targets(batch: Batch):
    """The lesson's ``encoding.build_targets``, one image at a time."""
    return encoding.build_targets(batch.anchors, batch.gt_list, batch.labels_list, IOU_THRESHOLD)


def backward(total: torch.Tensor, batch: Batch) -> None:
    batch.logits.grad = batch.offsets.grad = None  # both sides start from no gradient
    total.backward()


# ---------------------------------------------------------------------------------------------
# Checks: exit with a message unless ours equals torchvision's


def check(what: str, check_fn) -> None:
    try:
        check_fn()
    except AssertionError as err:
        sys.exit(f"MISMATCH ({what}): ours disagrees with torchvision:\n{err}")


def check_loss(batch: Batch) -> None:
    targets = ours_targets(batch)
    result = ssd_loss(batch.logits, batch.offsets, targets.labels, targets.offsets)
    expected = torchvision_loss(batch, torchvision_matches(batch))

    def same() -> None:
        assert_close(result.localization, expected["bbox_regression"])
        assert_close(result.classification, expected["classification"])
        ours_grads = torch.autograd.grad(result.total, (batch.logits, batch.offsets))
        their_grads = torch.autograd.grad(sum(expected.values()), (batch.logits, batch.offsets))
        for ours, theirs in zip(ours_grads, their_grads, strict=True):
            assert_close(ours, theirs)

    check("loss", same)
    print(
        f"   check: localization {result.localization.item():.4f}, classification "
        f"{result.classification.item():.4f} and both gradients equal torchvision's"
    )


def check_targets(batch: Batch) -> None:
    labels, offsets, matches = torchvision_targets(batch)
    for name, targets in (("fast", ours_targets(batch)), ("readable", readable_targets(batch))):

        def same(targets=targets) -> None:
            assert torch.equal(targets.matched_gt, matches), "matches differ"
            assert torch.equal(targets.labels, labels), "labels differ"
            assert_close(targets.offsets, offsets)

        check(f"targets ({name})", same)
    positives = int((matches >= 0).sum())
    print(f"   check: labels, matches and offsets of all {positives} positives equal (both forms)")


# ---------------------------------------------------------------------------------------------
# Timing and printing


def print_header(rounds: int) -> None:
    print("SSD loss and targets benchmark (ssd_lesson vs torchvision)")
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"device {DEVICE}, torch threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}, "
        f"{rounds} interleaved rounds, median per call"
    )
    if hasattr(os, "getloadavg"):  # other programs running distort the absolute times
        print(f"load average before the run (1 min): {os.getloadavg()[0]:.2f}")


def print_rows(rows: dict[str, dict[str, list[float]]]) -> None:
    """One line per comparison: medians, the range over rounds, and ours / torchvision."""
    print(f"   {'what':<36}{'ours ms':>9}{'tv ms':>9}{'ours/tv':>9}   range over rounds (ms)")
    for what, samples in rows.items():
        ms = medians(samples)
        spread = (
            f"ours {min(samples['ours']):.0f}..{max(samples['ours']):.0f}, "
            f"tv {min(samples['tv']):.0f}..{max(samples['tv']):.0f}"
        )
        ratio = ms["ours"] / ms["tv"]
        print(f"   {what:<36}{ms['ours']:>9.1f}{ms['tv']:>9.1f}{ratio:>8.2f}x   {spread}")
    if any(max(v) > 1.5 * min(v) for samples in rows.values() for v in samples.values()):
        print("   WARNING: some rounds took 1.5x longer than others: the machine was busy, rerun.")


def bench_loss(batch: Batch, rounds: int) -> None:
    print()
    print(
        f"1. Loss: {NUM_IMAGES} images x {NUM_OBJECTS} objects, {batch.anchors.shape[0]} anchors, "
        f"{NUM_CLASSES} class scores (ssd_loss vs SSD.compute_loss)"
    )
    check_loss(batch)
    targets = ours_targets(batch)
    matches = torchvision_matches(batch)

    def ours_forward():
        return ssd_loss(batch.logits, batch.offsets, targets.labels, targets.offsets)

    def tv_forward():
        return torchvision_loss(batch, matches)

    def ours_pipeline():
        fresh = ours_targets(batch)
        result = ssd_loss(batch.logits, batch.offsets, fresh.labels, fresh.offsets)
        backward(result.total, batch)

    def tv_pipeline():
        backward(sum(torchvision_loss(batch, torchvision_matches(batch)).values()), batch)

    comparisons = {
        "forward": {"ours": ours_forward, "tv": tv_forward},
        "forward + backward": {
            "ours": lambda: backward(ours_forward().total, batch),
            "tv": lambda: backward(sum(tv_forward().values()), batch),
        },
        "targets + forward + backward (*)": {"ours": ours_pipeline, "tv": tv_pipeline},
    }
    print_rows({what: time_side_by_side(fns, rounds, DEVICE) for what, fns in comparisons.items()})
    print("   (*) torchvision's compute_loss encodes the matched boxes inside the call, so the")
    print("       first two lines leave our targets out; this line times both whole pipelines:")
    print("       fast.build_targets + ssd_loss vs per-image SSDMatcher + compute_loss.")


def bench_targets(batch: Batch, rounds: int) -> None:
    print()
    print(
        "2. Targets: fast.build_targets vs a per-image loop of box_iou + SSDMatcher + "
        "BoxCoder.encode_single"
    )
    check_targets(batch)
    fns = {
        "ours": lambda: ours_targets(batch),
        "readable": lambda: readable_targets(batch),
        "tv": lambda: torchvision_targets(batch),
    }
    samples = time_side_by_side(fns, rounds, DEVICE)
    print_rows(
        {
            "fast.build_targets": {"ours": samples["ours"], "tv": samples["tv"]},
            "readable encoding.build_targets": {
                "ours": samples["readable"],
                "tv": samples["tv"],
            },
        }
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved timing rounds (default 7)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main() -> None:
    args = parse_args()
    print_header(args.rounds)
    batch = make_batch()
    bench_loss(batch, args.rounds)
    bench_targets(batch, args.rounds)
    print()
    print(
        "Target: ours/tv <= 1.00x on every line but the readable one. "
        "Timings are never asserted, only printed."
    )


if __name__ == "__main__":
    main()
