"""How fast is anchor matching, compared with torchvision, and how does it grow?

Run with ``.venv/bin/python benchmarks/bench_matching.py`` (or ``make benchmark``).

What is measured, all in one run, on the same inputs:

1. Matching SSD300's 8732 anchors to a batch of 32 images x 10 objects, four ways:
   torchvision's ``SSDMatcher`` (the reference, one image at a time); ``ssd_lesson.fast``'s
   ``match_anchors_batch`` (what training uses), and ``match_anchors_padded`` (its form for
   accelerators: ``pad_boxes`` + one padded call); and, for information, the lesson's readable
   ``matching.match_anchors`` in a loop over images. First we check that all four give exactly
   the same assignment; only then do we time them.
2. How the time grows with the number of anchors A and of objects G. Matching computes the IoU of
   every (object, anchor) pair, so once fixed per-call costs are amortised the time should grow
   roughly linearly in A x G; the table prints the time per pair to make that visible.
3. How long the matching explorer widget takes from "control changed" to "figure ready", if
   ``ssd_lesson.widgets`` exists.

Why both a per-image and a batched form? On a CPU one image's IoU matrix (10 x 8732 floats,
about 350 kB) fits in the cache, so looping over images is cheap, while the batched form builds
one big (32, 10, 8732) matrix (11 MB) that does not fit and pays for memory traffic. On a GPU
the opposite should hold: one big kernel beats 32 small launches. ``match_anchors_batch`` loops
on the CPU and pads elsewhere; the benchmark says whether that is the faster form here.

House rule: timings are only ever printed as ratios measured side by side in one run, never
asserted in tests. The methods are timed in interleaved rounds (every round times every method
once, in a rotating order), and the median over rounds is reported, so that a slow spell of the
machine hits all methods alike.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torchvision
from torchvision.models.detection._utils import SSDMatcher
from torchvision.ops import box_iou

from ssd_lesson import fast, matching
from ssd_lesson.anchors import SSD300_ASPECT_RATIOS, make_anchors, paper_scales, ssd300_anchors

NUM_IMAGES = 32
NUM_OBJECTS = 10
IOU_THRESHOLD = 0.5
SEED = 0
# Each timed sample repeats a call until it lasts about this long, so the timer's resolution and
# Python's overhead do not dominate short calls.
TARGET_SAMPLE_MS = 20.0
MAX_CALLS_PER_SAMPLE = 50
# Section 2: object counts, and anchor sets from the coarse end of SSD300 to all of it.
OBJECT_COUNTS = (1, 10, 50)
ANCHOR_CONFIGS = {
    "maps [10,5,3,1]": (10, 5, 3, 1),
    "maps [19,10,5,3,1]": (19, 10, 5, 3, 1),
    "SSD300 (6 maps)": None,
}
# Section 3: the widget should feel instant; 100 ms is the usual limit for that.
WIDGET_REDRAWS = 20
WIDGET_BUDGET_MS = 100.0


# ---------------------------------------------------------------------------------------------
# Inputs


def anchors_xyxy(feature_map_sizes: tuple[int, ...] | None, device: torch.device) -> torch.Tensor:
    """SSD300's anchors (``None``) or those of its last few maps, as xyxy fractions."""
    if feature_map_sizes is None:
        anchors = ssd300_anchors()
    else:
        num_maps = len(feature_map_sizes)
        ratios = SSD300_ASPECT_RATIOS[-num_maps:]  # the ratios SSD300 uses on those maps
        anchors = make_anchors(feature_map_sizes, paper_scales(num_maps), ratios)
    return anchors.to(device)


def random_gt_boxes(
    num_images: int, num_objects: int, seed: int, device: torch.device
) -> list[torch.Tensor]:
    """Realistic ground truth: per image, ``num_objects`` xyxy boxes inside the image.

    Sizes are log-uniform from 3% to 90% of the image side (small and large objects are both
    common), aspect ratios log-uniform from 1:3 to 3:1, positions uniform where the box fits.
    """
    generator = torch.Generator().manual_seed(seed)

    def log_uniform(low: float, high: float, shape: tuple[int, ...]) -> torch.Tensor:
        u = torch.rand(shape, generator=generator)
        return torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))

    shape = (num_images, num_objects)
    size = log_uniform(0.03, 0.9, shape)
    ratio = log_uniform(1 / 3, 3.0, shape)  # width / height
    w = (size * ratio.sqrt()).clamp(max=1.0)
    h = (size / ratio.sqrt()).clamp(max=1.0)
    x1 = torch.rand(shape, generator=generator) * (1 - w)
    y1 = torch.rand(shape, generator=generator) * (1 - h)
    boxes = torch.stack((x1, y1, x1 + w, y1 + h), dim=-1)  # (B, G, 4)
    return [image_boxes.to(device) for image_boxes in boxes]


# ---------------------------------------------------------------------------------------------
# The matchers under test


def torchvision_match(anchors: torch.Tensor, gt_list: list[torch.Tensor]) -> torch.Tensor:
    """The reference: torchvision's SSD matcher, one image at a time, stacked to (B, A)."""
    matcher = SSDMatcher(IOU_THRESHOLD)
    return torch.stack([matcher(box_iou(gt, anchors)) for gt in gt_list])


def ours_batch(anchors: torch.Tensor, gt_list: list[torch.Tensor]) -> torch.Tensor:
    """``fast.match_anchors_batch``: what training uses."""
    return fast.match_anchors_batch(anchors, gt_list, IOU_THRESHOLD)


def ours_padded(anchors: torch.Tensor, gt_list: list[torch.Tensor]) -> torch.Tensor:
    """``fast.pad_boxes`` + ``fast.match_anchors_padded``: every image in one call."""
    padded, mask = fast.pad_boxes(gt_list)
    return fast.match_anchors_padded(anchors, padded.to(anchors), mask.to(anchors.device))


def ours_readable(anchors: torch.Tensor, gt_list: list[torch.Tensor]) -> torch.Tensor:
    """The lesson's ``matching.match_anchors``, one image at a time."""
    return torch.stack([matching.match_anchors(anchors, gt, IOU_THRESHOLD) for gt in gt_list])


def batch_uses(device: torch.device) -> str:
    """Which form ``match_anchors_batch`` runs on this device (see its docstring)."""
    return "per_image" if device.type == "cpu" else "padded"


def check_same_as_torchvision(
    matchers: dict[str, Callable], anchors: torch.Tensor, gt_list: list[torch.Tensor], what: str
) -> None:
    """Exit with a message unless every matcher gives exactly torchvision's assignment."""
    expected = torchvision_match(anchors, gt_list)
    for name, match in matchers.items():
        got = match(anchors, gt_list)
        if got.shape != expected.shape or not torch.equal(got, expected):
            if got.shape != expected.shape:
                detail = f"shape {tuple(got.shape)} instead of {tuple(expected.shape)}"
            else:
                image, anchor = (got != expected).nonzero()[0].tolist()
                detail = (
                    f"{int((got != expected).sum())} anchors differ, the first in image {image}, "
                    f"anchor {anchor}: {int(got[image, anchor])} instead of "
                    f"{int(expected[image, anchor])}"
                )
            sys.exit(f"MISMATCH ({what}): {name} disagrees with torchvision: {detail}")


# ---------------------------------------------------------------------------------------------
# Timing


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that the clock measures the work and not just its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def ms_per_call(fn: Callable[[], object], calls: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3 / calls


def calls_per_sample(fn: Callable[[], object], device: torch.device) -> int:
    """Warm up ``fn``, then choose how many calls make one sample of about TARGET_SAMPLE_MS."""
    fn()
    one_call_ms = ms_per_call(fn, 1, device)
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(TARGET_SAMPLE_MS / max(one_call_ms, 1e-3))))


def time_side_by_side(
    fns: dict[str, Callable[[], object]], rounds: int, device: torch.device
) -> dict[str, list[float]]:
    """ms per call of each function, one sample per round, timed in interleaved rounds."""
    calls = {name: calls_per_sample(fn, device) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        # Rotate the order, so no method is always the one that runs right after another.
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(ms_per_call(fns[name], calls[name], device))
    return samples


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


# ---------------------------------------------------------------------------------------------
# The three sections


def print_header(device: torch.device, rounds: int) -> None:
    print("Anchor matching benchmark (ssd_lesson vs torchvision SSDMatcher)")
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"Python {platform.python_version()}"
    )
    print(
        f"device {device}, torch threads {torch.get_num_threads()}, CPU cores {os.cpu_count()}, "
        f"{rounds} interleaved rounds, median per call"
    )
    if hasattr(os, "getloadavg"):  # other programs running distort the absolute times
        print(f"load average before the run (1 min): {os.getloadavg()[0]:.2f}")


def bench_ssd300_batch(device: torch.device, rounds: int) -> None:
    anchors = anchors_xyxy(None, device)
    gt_list = random_gt_boxes(NUM_IMAGES, NUM_OBJECTS, SEED, device)
    matchers = {
        "torchvision SSDMatcher": torchvision_match,
        "ours match_anchors_batch": ours_batch,
        "ours match_anchors_padded": ours_padded,
        "readable match_anchors loop": ours_readable,
    }
    print()
    print(
        f"1. SSD300: {anchors.shape[0]} anchors, {NUM_IMAGES} images x {NUM_OBJECTS} objects "
        f"-> ({NUM_IMAGES}, {anchors.shape[0]}) assignment"
    )
    check_same_as_torchvision(matchers, anchors, gt_list, "SSD300 batch")
    print("   check: all four give exactly torchvision's assignment")

    fns = {name: (lambda m=match: m(anchors, gt_list)) for name, match in matchers.items()}
    samples = time_side_by_side(fns, rounds, device)
    ms = medians(samples)
    reference = ms["torchvision SSDMatcher"]
    # The range over rounds shows how steady the machine was; the median ignores outliers.
    print(f"   {'method':<30}{'ms/call':>9}{'(min..max)':>17}{'time / torchvision':>21}")
    for name, value in ms.items():
        spread = f"({min(samples[name]):.1f}..{max(samples[name]):.1f})"
        print(f"   {name:<30}{value:>9.2f}{spread:>17}{value / reference:>20.2f}x")

    print_verdict(ms, samples, device)


def print_verdict(ms: dict[str, float], samples: dict[str, list[float]], device: torch.device):
    """Which of the per-image loop / padded form is faster here; does the batch function use it?"""
    batch, padded = ms["ours match_anchors_batch"], ms["ours match_anchors_padded"]
    picked = batch_uses(device)
    # On the CPU match_anchors_batch is the per-image loop; elsewhere it is the padded form.
    per_image = batch if picked == "per_image" else None
    if per_image is not None:
        faster = "per_image" if per_image <= padded else "padded"
        ratio = max(per_image, padded) / min(per_image, padded)
        close = " (too close to call)" if ratio < 1.1 else ""
        print(f"   On {device.type}, {faster} is {ratio:.2f}x faster than the other form{close}.")
        print(
            f"   match_anchors_batch runs {picked}: the faster one? "
            f"{'yes' if picked == faster else 'no'}"
        )
    else:
        print(f"   On {device.type}, match_anchors_batch runs the padded form.")
    ratio = batch / ms["torchvision SSDMatcher"]
    print(f"   match_anchors_batch takes {ratio:.2f}x torchvision's time (goal: <= 1.0x).")
    if any(max(values) > 1.5 * min(values) for values in samples.values()):
        print("   WARNING: some rounds took 1.5x longer than others: the machine was busy, rerun.")


def bench_growth(device: torch.device, rounds: int) -> None:
    print()
    print(
        f"2. Growth with anchors A x objects G ({NUM_IMAGES} images per call; "
        "ns/pair = time / (images x A x G))"
    )
    print(
        f"   {'anchors':<20}{'A':>6}{'G':>4}{'A x G':>9}"
        f"{'ours ms':>10}{'tv ms':>9}{'ours ns/pair':>14}{'tv ns/pair':>12}"
    )
    pairs_list, ours_ms, tv_ms = [], [], []
    for label, sizes in ANCHOR_CONFIGS.items():
        anchors = anchors_xyxy(sizes, device)
        num_anchors = anchors.shape[0]
        for num_objects in OBJECT_COUNTS:
            gt_list = random_gt_boxes(NUM_IMAGES, num_objects, SEED + num_objects, device)
            check_same_as_torchvision(
                {"ours match_anchors_batch": ours_batch},
                anchors,
                gt_list,
                f"{label}, G={num_objects}",
            )
            fns = {
                "ours": lambda a=anchors, g=gt_list: ours_batch(a, g),
                "tv": lambda a=anchors, g=gt_list: torchvision_match(a, g),
            }
            ms = medians(time_side_by_side(fns, rounds, device))
            pairs = NUM_IMAGES * num_anchors * num_objects
            pairs_list.append(pairs)
            ours_ms.append(ms["ours"])
            tv_ms.append(ms["tv"])
            print(
                f"   {label:<20}{num_anchors:>6}{num_objects:>4}{num_anchors * num_objects:>9}"
                f"{ms['ours']:>10.2f}{ms['tv']:>9.2f}"
                f"{ms['ours'] * 1e6 / pairs:>14.2f}{ms['tv'] * 1e6 / pairs:>12.2f}"
            )
    print("   All cells were checked equal to torchvision. At small A x G fixed per-call costs")
    print("   dominate, so ns/pair falls until the IoU work takes over. A straight line")
    print("   time = fixed + slope x (images x A x G), fitted by least squares:")
    for name, times in (("ours", ours_ms), ("tv", tv_ms)):
        fit = statistics.linear_regression(pairs_list, times)
        print(
            f"   {name:<5} {fit.intercept:6.2f} ms + {fit.slope * 1e6:5.2f} ns per pair "
            f"(worst cell off the line by {worst_relative_residual(fit, pairs_list, times):.0%})"
        )


def worst_relative_residual(fit, xs: list[float], ys: list[float]) -> float:
    """How far the worst point lies from the fitted line, relative to its own value."""
    return max(abs(fit.intercept + fit.slope * x - y) / y for x, y in zip(xs, ys, strict=True))


def matching_explorer_redraw_ms(n: int) -> list[float]:
    """Time ``n`` redraws of the matching explorer (control change -> PNG ready), in ms."""
    from ssd_lesson.widgets import matching_explorer

    explorer, times = matching_explorer(), []
    for i in range(n):
        start = time.perf_counter()
        explorer.controls["cx"].value = (0.3, 0.7)[i % 2]  # a new value: the control fires
        times.append((time.perf_counter() - start) * 1000)
    return times


def bench_widget_redraw() -> None:
    print()
    try:
        import ssd_lesson.widgets  # noqa: F401
    except ImportError as err:
        if err.name in ("ssd_lesson.widgets", None):
            print("3. widget redraw: skipped (ssd_lesson.widgets not available)")
        else:  # the module exists but something it imports is missing: say what
            print(f"3. widget redraw: skipped ({err})")
        return
    redraws_ms = matching_explorer_redraw_ms(WIDGET_REDRAWS)
    median = statistics.median(redraws_ms)
    verdict = "yes" if median <= WIDGET_BUDGET_MS else "NO"
    print(
        f"3. widget redraw (matching explorer, control change -> figure ready): median "
        f"{median:.1f} ms over {len(redraws_ms)} redraws; <= {WIDGET_BUDGET_MS:.0f} ms? {verdict}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds", type=int, default=7, help="interleaved timing rounds (default 7)"
    )
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu (default) or cuda")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.device = torch.device(args.device)
    except RuntimeError as err:
        parser.error(f"--device: {err}")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but torch.cuda.is_available() is False")
    if args.device.type == "mps" and not torch.backends.mps.is_available():
        parser.error("--device mps was asked for, but torch.backends.mps.is_available() is False")
    return args


def main() -> None:
    args = parse_args()
    # The widget draws with matplotlib; without a display, draw off-screen.
    os.environ.setdefault("MPLBACKEND", "Agg")
    print_header(args.device, args.rounds)
    bench_ssd300_batch(args.device, args.rounds)
    bench_growth(args.device, args.rounds)
    bench_widget_redraw()


if __name__ == "__main__":
    main()
