"""Lesson 08's runs: build, train and measure each variant of ``ssd_lesson.ablations``.

``train_variant`` is one run: the variant's data (``build_data``) and model (``build_model``),
``fit`` with its matching rule and loss, then ``measure`` on the held-out images: mAP@0.5,
recall by object size, the share of objects left without an anchor, and the share of the class
loss that comes from background anchors. ``run_experiment`` trains every variant of one
experiment for a few seeds; ``run_ablations`` every experiment, as ``make ablations`` does.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

import torch
from torch import nn

from ssd_lesson import checks
from ssd_lesson.ablations import (
    AUGMENTATIONS,
    DATA,
    EXPERIMENTS,
    LARGER_MIN_SIZE,
    LOSSES,
    MAPS,
    SIZES,
    TRAIN_SEED,
    Experiment,
    Variant,
)
from ssd_lesson.alternatives import (
    MATCHERS,
    loss_split,
    objects_without_anchor,
    recall_by_size,
    targets_with,
)
from ssd_lesson.data.augment import ssd_augmentation
from ssd_lesson.data.shapes import ELONGATED_STRETCH, ShapesDataset
from ssd_lesson.fast import build_targets
from ssd_lesson.inference import detect
from ssd_lesson.model import SSD, SmallBackbone, SSDConfig
from ssd_lesson.recipe import LESSON_VAL_SEED
from ssd_lesson.train import cpu_threads, fit


@dataclass
class Trained:
    """One finished run: the model, its validation images and what was measured."""

    variant: Variant
    model: SSD
    val_data: ShapesDataset
    metrics: dict


class OneMapBackbone(nn.Module):
    """The small backbone, but every head reads the same one of its maps (``index``)."""

    def __init__(self, index: int, copies: int) -> None:
        super().__init__()
        base = SSDConfig()
        self.full = SmallBackbone(base.widths, base.feature_map_sizes, base.image_size)
        self.index, self.copies = index, copies

    def forward(self, images):
        return [self.full(images)[self.index]] * self.copies


def build_model(variant: Variant) -> SSD:
    """The variant's SSD: six maps, or one map carrying all six maps' anchor scales."""
    checks.variant(variant, MAPS, DATA, AUGMENTATIONS, LOSSES, MATCHERS)
    base = SSDConfig()
    ratios = (variant.ratios,) * len(base.feature_map_sizes)
    index = MAPS[variant.maps]
    if index is None:
        return SSD(SSDConfig(aspect_ratios=ratios))
    # The same seven scales as the six-map model, all on one map: the same anchor sizes, from
    # one place. Each copy of the map gets its own heads, as each map does in the full model.
    size = base.feature_map_sizes[index]
    config = SSDConfig(feature_map_sizes=(size,) * 6, aspect_ratios=ratios)
    return SSD(config, backbone=OneMapBackbone(index, 6))


def build_data(variant: Variant, seed: int = 0, size: str = "full"):
    """(train_data, val_data, epochs) for the variant; the same held-out images for every seed."""
    checks.variant(variant, MAPS, DATA, AUGMENTATIONS, LOSSES, MATCHERS)
    seed = checks.integer(seed, "seed", 0)
    plan = SIZES[checks.choice(size, "size", tuple(SIZES))]
    train, val = {"seed": TRAIN_SEED + seed}, {"seed": LESSON_VAL_SEED}
    count, epochs = plan["train_images"], plan["epochs"]
    if variant.data == "elongated":
        long_thin = {"max_stretch": ELONGATED_STRETCH, "min_size": LARGER_MIN_SIZE}
        train, val = {**train, **long_thin}, {**val, **long_thin}
    elif variant.data == "few, no small":
        train["min_size"] = LARGER_MIN_SIZE
        count, epochs = plan["few_images"], plan["few_epochs"]
    train_data = ShapesDataset(count, precompute=True, **train)
    val_data = ShapesDataset(plan["val_images"], precompute=True, **val)
    if variant.augment != "none":
        zoom = 0.5 if variant.augment.endswith("zoom-out") else 0.0
        train_data.transform = ssd_augmentation(64, photometric_p=0.0, zoom_out_p=zoom)
    return train_data, val_data, epochs


def train_variant(variant: Variant, seed: int = 0, size: str = "full") -> Trained:
    """Train the variant once with ``fit`` and measure it on the held-out images."""
    start = time.perf_counter()
    with cpu_threads() as threads:
        train_data, val_data, epochs = build_data(variant, seed, size)
        torch.manual_seed(seed)
        model = build_model(variant)
        if variant.matcher == "forced best":  # the package's rule, batch-fast
            targets_fn = functools.partial(build_targets, iou_threshold=variant.iou_threshold)
        else:
            targets_fn = targets_with(MATCHERS[variant.matcher], variant.iou_threshold)
        loss_fn = LOSSES[variant.loss]
        plan = SIZES[size]
        history = fit(model, train_data, val_data, epochs=epochs, batch_size=plan["batch_size"],
                      lr=plan["lr"], seed=seed, progress=False, threads=threads,
                      targets_fn=targets_fn, loss_fn=loss_fn)  # fmt: skip
        metrics = measure(model, val_data, variant, targets_fn, loss_fn)
    metrics["mAP"] = history.val_map[-1]
    metrics["seconds"] = time.perf_counter() - start
    return Trained(variant, model.cpu().eval(), val_data, metrics)


@torch.no_grad()
def measure(model: SSD, val_data, variant: Variant, targets_fn, loss_fn) -> dict:
    """Recall by size, objects without an anchor and the negatives' share of the class loss."""
    model = model.cpu().eval()
    anchors = model.config.anchors()
    images = torch.stack([image for image, _ in val_data])
    size = val_data.image_size
    truths = [{"boxes": t["boxes"] / size, "labels": t["labels"]} for _, t in val_data]
    class_logits, box_offsets = model(images)
    found = detect(anchors, class_logits, box_offsets)
    recall = recall_by_size(found, truths, model.config.num_classes, size)
    matcher = MATCHERS[variant.matcher]
    boxes = [t["boxes"] for t in truths]
    left_out, total = objects_without_anchor(matcher, anchors, boxes, variant.iou_threshold)
    targets = targets_fn(anchors, boxes, [t["labels"] for t in truths])
    split = loss_split(loss_fn(class_logits, box_offsets, targets.labels, targets.offsets))
    return {
        **{name: bucket.recall for name, bucket in recall.items()},
        "no anchor": left_out / total,
        "negatives' share": split["negatives"] / (split["negatives"] + split["positives"]),
    }


def run_experiment(
    experiment: Experiment, seeds=(0,), size="full", cache=None, log=None, only=None
) -> dict:
    """Train every variant of ``experiment`` for every seed -> {variant name: [metrics]}.

    ``cache`` (a dict) keeps finished ``Trained`` runs by (settings, seed, size), so a variant
    that two experiments share trains once. ``log``: a function called with one line per
    finished run. ``only``: names of the variants to train besides the first (default: all).
    """
    checks.experiment(experiment, Experiment)
    seeds = [checks.integer(seed, "seed", 0) for seed in checks.per_image(seeds, "seeds")]
    checks.choice(size, "size", tuple(SIZES))
    names = [variant.name for variant in experiment.variants]
    only = names if only is None else [names[0], *checks.variant_names(only, names)]
    cache = {} if cache is None else cache
    results = {}
    for variant in (v for v in experiment.variants if v.name in only):
        results[variant.name] = []
        for seed in seeds:
            key = (variant.settings(), seed, size)
            if key not in cache:
                cache[key] = train_variant(variant, seed, size)
                if log is not None:
                    metrics = cache[key].metrics
                    log(f"{experiment.name} · {variant.name} · seed {seed}: mAP "
                        f"{metrics['mAP']:.3f} in {metrics['seconds']:.0f} s")  # fmt: skip
            results[variant.name].append(cache[key].metrics)
    return results


def run_ablations(seeds=(0, 1, 2), size="full", log=print) -> dict:
    """Every experiment for every seed, with what is needed to repeat it (saved as JSON)."""
    start, cache = time.perf_counter(), {}
    runs = {e.name: run_experiment(e, seeds, size, cache, log) for e in EXPERIMENTS}
    return {
        "command": "make ablations",
        "seeds": list(seeds),
        "size": size,
        "settings": SIZES[size],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "seconds": round(time.perf_counter() - start, 1),
        "runs": runs,
    }


def main(argv=None) -> None:
    """``make ablations``: every experiment, 3 seeds, full size; print the table, save JSON."""
    import argparse
    import sys

    from ssd_lesson.ablation_table import ablation_table, save_results

    parser = argparse.ArgumentParser(prog="python -m ssd_lesson.ablation_runs", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--out", default="notebooks/ablations/results.json")
    args = parser.parse_args(argv)
    results = run_ablations(args.seeds, args.size, log=lambda line: print(line, flush=True))
    words = sys.argv[1:] if argv is None else list(argv)
    results["command"] = " ".join(["python -m ssd_lesson.ablation_runs", *words])
    print()
    print(ablation_table(results, EXPERIMENTS))
    print(f"\nsaved to {save_results(results, args.out)}")


if __name__ == "__main__":
    main()
