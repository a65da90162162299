"""Train SSD300 on Pascal VOC the paper's way, on one GPU, and measure it on VOC2007 test.

    python -m ssd_lesson.voc_train --root path/to/VOCdevkit \\
        --vgg-weights path/to/vgg16_features.pth --out runs/ssd300

What it does: SSD300 with a VGG16 backbone (ImageNet weights from a local file, nothing is
downloaded) is trained on VOC2007 trainval + VOC2012 trainval ("07+12", 16551 images) with SSD's
data augmentation, then evaluated on VOC2007 test (4952 images): mAP at IoU 0.5, with the
VOC2007 devkit's 11-point average precision as in the paper (and the all-point one of later VOC
years), printed and saved as JSON next to the checkpoint.

The paper's recipe (Liu et al., ECCV 2016, Sec. 3 and 3.1), which the defaults follow:

* SGD, momentum 0.9, weight decay 5e-4, batch size 32;
* learning rate 1e-3 for 40k iterations, then 1e-4 for 10k and 1e-5 for 10k (Sec. 3.1, the
  VOC2007 experiments: ``--iterations 60000 --lr-steps 40000 50000``). The paper's VOC2012 model
  (07++12, tested on VOC2012 test) used 1e-3 for 60k iterations, then 1e-4 for 20k
  (Sec. 3.3): ``--iterations 80000 --lr-steps 60000``;
* the random crops, photometric distortions and flips of ``ssd_augmentation``, without the
  "zoom out" (expansion) step: the 74.3 model was trained without it. Sec. 3.6 adds it (a canvas
  up to 4 times the image side) and doubles the iterations, for "SSD300*" (77.2 mAP):
  ``--max-zoom-out 4 --iterations 120000 --lr-steps 80000 100000``.

The paper reports **74.3 mAP@0.5 on VOC2007 test for SSD300 trained on 07+12** (Table 1). We have
not reproduced that number: this module has only been run end to end on a tiny synthetic VOC
folder (``tests/test_voc_train.py``). Expect some difference anyway: our mAP ignores VOC's
"difficult" objects by leaving them out of the ground truth, so a detection of one counts as a
false positive (the VOC devkit ignores such detections), and the model is torchvision's
``ssd300_vgg16`` layout (``ssd_lesson.ssd300``), not the paper's Caffe code.

What it takes (estimates, not measurements): one CUDA GPU; batches of 32 fit in about 10 GB
with mixed precision. The default 60k iterations push about two million images through VGG16 at
300 x 300, roughly 4e17 floating-point operations: a few GPU hours on a recent data-centre GPU
(A100, H100), several more on a consumer one, most of a day on a GPU of the paper's time. The
augmentation runs on the CPU and needs about 8 cores (``--workers``) to keep a fast GPU busy.
On disk: the three VOC archives (VOC2007 trainval and test, VOC2012 trainval) are about 2.8 GB
and take about as much again once extracted; the checkpoint is about 210 MB (weights and SGD
momentum). Without CUDA it runs on the CPU, which is only good for tests (seconds per step).

Every epoch (one pass over the training images) it writes ``OUT/checkpoint.pt``: the model,
optimizer, learning-rate schedule, gradient scaler, step and settings (``torch.save``; read back
with ``weights_only=True``). ``--resume`` continues from it, at the next epoch, with the same
settings; only ``--iterations`` may change. At the end it writes ``OUT/voc2007_test.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import ConcatDataset, DataLoader, Subset

from ssd_lesson import checks
from ssd_lesson.data import VOC_CLASSES, VOCDetectionFolder, detection_collate, ssd_augmentation
from ssd_lesson.fast import build_targets
from ssd_lesson.inference import detect
from ssd_lesson.loss import ssd_loss
from ssd_lesson.metrics import VOC_IOU_THRESHOLD, APResult, average_precision
from ssd_lesson.model import SSD
from ssd_lesson.ssd300 import ssd300_config, ssd300_vgg16
from ssd_lesson.train import TrainingDiverged, cpu_threads

# The paper's numbers and recipe (see the module docstring).
PAPER_MAP = 0.743  # SSD300, 07+12, VOC2007 test, mAP@0.5
YEARS = ("2007", "2012")
ITERATIONS = 60_000
LEARNING_RATE = 1e-3
LR_STEPS = (40_000, 50_000)  # the learning rate is multiplied by LR_GAMMA at each
LR_GAMMA = 0.1
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
BATCH_SIZE = 32
MAX_ZOOM_OUT = 1.0  # 1 = no expansion (the 74.3 model); 4 = the paper's SSD300*
PRESET = "paper"
WORKERS = min(8, os.cpu_count() or 1)
EVAL_BATCH_SIZE = 64
CHECKPOINT_NAME = "checkpoint.pt"
RESULTS_NAME = "voc2007_test.json"
CHECKPOINT_FORMAT = "ssd-lesson voc training 1"
# The loss and its parts are copied to the CPU (a GPU sync) once every this many steps.
LOG_EVERY = 10


@dataclass
class VOCTrainResult:
    """What ``train_voc`` did: the model, where training started and stopped, the mAP."""

    model: SSD
    start_step: int  # 0, or the step of the checkpoint it resumed from
    step: int  # training steps done in all, resumed ones included
    checkpoint: Path  # the last checkpoint written
    map_50: float | None = None  # VOC2007 test mAP@0.5, 11-point as the paper (None: no test)
    map_50_all_point: float | None = None  # the same, all-point interpolation (VOC from 2010)
    per_class: dict[str, float] = field(default_factory=dict)  # class name -> 11-point AP
    results: Path | None = None  # the JSON file with the mAP
    losses: list[float] = field(default_factory=list)  # mean loss every LOG_EVERY steps


def build_model(vgg_weights=None, preset: str = PRESET) -> SSD:
    """SSD300-VGG16 for the 20 VOC classes, with ImageNet VGG16 weights from ``vgg_weights``
    (a local state dict of torchvision's ``vgg16()`` or its ``features``) or random ones."""
    return ssd300_vgg16(ssd300_config(len(VOC_CLASSES), preset), backbone_weights_path=vgg_weights)


def train_voc(
    root,
    out,
    vgg_weights=None,
    *,
    years=None,
    iterations: int | None = None,
    lr: float | None = None,
    lr_steps=None,
    batch_size: int | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    max_zoom_out: float | None = None,
    preset: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    evaluate: bool = True,
    test_images: int | None = None,
    device=None,
    amp: bool = True,
    workers: int = WORKERS,
    threads: int | None = None,
    progress: bool = True,
) -> VOCTrainResult:
    """Train SSD300 on VOC ``years`` trainval under ``root``; evaluate on VOC2007 test.

    Args:
        root: the ``VOCdevkit`` folder, holding ``VOC2007`` and ``VOC2012``.
        out: folder for ``checkpoint.pt`` and ``voc2007_test.json`` (created if missing).
        vgg_weights: path to ImageNet VGG16 weights (a state dict saved with ``torch.save``,
            whole VGG16 or its ``features``). None: a randomly initialised backbone, which is
            fine for tests and hopeless for the paper's numbers. Not read when resuming.
        years: the trainval sets to train on, e.g. ("2007", "2012") (default) or ("2007",).
        iterations: stop after this many steps in all, resumed ones included (default: the
            paper's 60k, or the checkpoint's when resuming).
        lr, lr_steps, batch_size, momentum, weight_decay: SGD and its step schedule: the rate
            is multiplied by 0.1 at each of ``lr_steps``. Defaults: the paper's.
        max_zoom_out: the augmentation's expansion, 1 (default, off) to 4 (the paper's SSD300*).
        preset: ``ssd300_config``'s preset, "paper" (default) or "torchvision".
        seed: seeds the model, the order of the images and the augmentation (default 0).
        resume: continue from ``out/checkpoint.pt``. Settings left at None come from it; a
            different value is an error, except for ``iterations``.
        evaluate: measure VOC2007 test mAP@0.5 at the end.
        test_images: evaluate on the first this many test images only (default: all).
        device: "cuda", "cpu", ...; None picks CUDA when there is one.
        amp: mixed precision (``torch.autocast`` in float16 + ``GradScaler``) on CUDA.
        workers: DataLoader processes that read and augment images.
        threads: torch CPU threads on the CPU (None: see ``ssd_lesson.train.cpu_threads``).
        progress: tqdm progress bars.

    Returns:
        VOCTrainResult. Raises ValueError (``VOCFileNotFound`` for missing files) on bad input,
        ``TrainingDiverged`` if the loss becomes NaN or infinite.
    """
    root = checks.path(root, "root", must_exist="folder")
    out = checks.path(out, "out")
    if vgg_weights is not None:
        vgg_weights = checks.path(vgg_weights, "vgg_weights", must_exist="file")
    checkpoint_path = out / CHECKPOINT_NAME
    given = dict(
        iterations=iterations,
        years=years,
        lr=lr,
        lr_steps=lr_steps,
        batch_size=batch_size,
        momentum=momentum,
        weight_decay=weight_decay,
        max_zoom_out=max_zoom_out,
        preset=preset,
        seed=seed,
    )
    saved = _read_training_state(checkpoint_path) if resume else None
    settings = _settings(given, saved["settings"] if saved else None)
    iterations = settings["iterations"]
    settings["lr_steps"] = checks.lr_steps(settings["lr_steps"])
    settings["years"] = checks.voc_years(settings["years"])
    folders = checks.voc_devkit(root, settings["years"])
    evaluate = checks.flag(evaluate, "evaluate")
    test_images = checks.integer(test_images, "test_images", 1, optional=True)
    amp = checks.flag(amp, "amp")
    workers = checks.integer(workers, "workers", 0)
    progress = checks.flag(progress, "progress")
    device = torch.device(device if device is not None else _default_device())
    use_amp = amp and device.type == "cuda"

    torch.manual_seed(settings["seed"])
    model = build_model(None if saved else vgg_weights, settings["preset"])
    size = model.config.image_size
    augment = ssd_augmentation(size, max_zoom_out=settings["max_zoom_out"])
    train_data = ConcatDataset(
        [VOCDetectionFolder(folder, "trainval", transform=augment) for folder in folders]
    )
    # Read now, so that a missing test set is an error before training, not after it.
    test_data = None
    if evaluate:
        test_data = VOCDetectionFolder(
            checks.voc_devkit(root, ("2007",))[0],
            "test",
            transform=ssd_augmentation(size, enabled=False),
        )
        if test_images is not None:
            test_data = Subset(test_data, range(min(test_images, len(test_data))))
    checks.batch_fits(settings["batch_size"], len(train_data))

    model.to(device)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=settings["lr"],
        momentum=settings["momentum"],
        weight_decay=settings["weight_decay"],
    )
    schedule = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(settings["lr_steps"]), gamma=LR_GAMMA
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_step = 0
    if saved:
        start_step = _restore(saved, model, optimizer, schedule, scaler, checkpoint_path)
    out.mkdir(parents=True, exist_ok=True)
    settings["model"] = model.config.to_dict()

    with cpu_threads(threads) if device.type == "cpu" else nullcontext():
        loop = _Loop(model, optimizer, schedule, scaler, settings, device, use_amp)
        epoch = saved["epoch"] + 1 if saved else 0
        step, losses = loop.run(
            train_data, start_step, epoch, iterations, workers, progress, checkpoint_path
        )
        result = VOCTrainResult(model, start_step, step, checkpoint_path, losses=losses)
        if test_data is not None:
            ap = evaluate_voc(model, test_data, device, use_amp, workers, progress)
            result.map_50 = ap["11"].mean
            result.map_50_all_point = ap["all"].mean
            per_class = ap["11"].per_class.items()
            result.per_class = {VOC_CLASSES[c - 1]: float(v) for c, v in per_class}
            result.results = _save_results(out, result, len(test_data), settings)
            print(
                f"VOC2007 test mAP@0.5: {result.map_50:.4f} (11-point; all-point "
                f"{result.map_50_all_point:.4f}) on {len(test_data)} images after {step} steps; "
                f"the paper reports {PAPER_MAP} for SSD300 trained on 07+12. Saved in "
                f"{result.results}"
            )
    return result


class _Loop:
    """The training steps: SGD with a step schedule, mixed precision on CUDA, a checkpoint at
    the end of every epoch."""

    def __init__(self, model, optimizer, schedule, scaler, settings, device, use_amp) -> None:
        self.model, self.optimizer, self.schedule, self.scaler = model, optimizer, schedule, scaler
        self.settings, self.device, self.use_amp = settings, device, use_amp
        self.anchors = model.config.anchors().to(device)

    def run(self, train_data, step, epoch, iterations, workers, progress, checkpoint_path):
        """Train from ``step`` (epoch ``epoch``) to ``iterations`` -> (step, logged losses)."""
        from tqdm.auto import tqdm

        batch_size = self.settings["batch_size"]
        losses: list[float] = []
        bar = tqdm(total=iterations, initial=min(step, iterations), disable=not progress)
        bar.set_description("steps")
        while step < iterations:
            # The order and augmentation of an epoch depend on (seed, epoch) only, so a run
            # resumed after a checkpoint continues exactly as an uninterrupted one would.
            epoch_seed = self.settings["seed"] * 1_000_003 + epoch
            torch.manual_seed(epoch_seed)
            loader = DataLoader(
                train_data,
                batch_size=batch_size,
                shuffle=True,
                drop_last=True,
                collate_fn=detection_collate,
                num_workers=workers,
                generator=torch.Generator().manual_seed(epoch_seed),
                pin_memory=self.device.type == "cuda",
            )
            self.model.train()
            sums, count = torch.zeros(3, device=self.device), 0
            for images, boxes, labels in loader:
                sums += self.step(images, boxes, labels)
                step, count = step + 1, count + 1
                bar.update(1)
                if count == LOG_EVERY or step == iterations:
                    means = (sums / count).tolist()
                    sums, count = torch.zeros(3, device=self.device), 0
                    _check_finite(means[0], step, self.optimizer)
                    losses.append(means[0])
                    bar.set_postfix(
                        loss=f"{means[0]:.3f}",
                        loc=f"{means[1]:.3f}",
                        cls=f"{means[2]:.3f}",
                        lr=f"{self.schedule.get_last_lr()[0]:.0e}",
                    )
                if step >= iterations:
                    break
            _save_training_state(checkpoint_path, self, step, epoch)
            epoch += 1
        bar.close()
        return step, losses

    def step(self, images, boxes, labels) -> torch.Tensor:
        """One SGD step on a batch -> (3,) detached: total, localization, classification."""
        device = self.device
        images = images.to(device, non_blocking=True)
        targets = build_targets(self.anchors, [b.to(device) for b in boxes], labels)
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.use_amp):
            class_logits, box_offsets = self.model(images)
        loss = ssd_loss(class_logits.float(), box_offsets.float(), targets.labels, targets.offsets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss.total).backward()
        self.scaler.step(self.optimizer)  # skipped if the scaled gradients overflowed
        self.scaler.update()
        self.schedule.step()
        return torch.stack((loss.total, loss.localization, loss.classification)).detach()


def _check_finite(loss: float, step: int, optimizer) -> None:
    if not math.isfinite(loss):
        lr = optimizer.param_groups[0]["lr"]
        raise TrainingDiverged(
            f"expected a finite loss, got {loss} around step {step}; {checks.DIVERGED} (lr={lr:g})"
        )


@torch.no_grad()
def evaluate_voc(
    model: SSD,
    data,
    device=None,
    amp: bool = True,
    workers: int = 0,
    progress: bool = False,
    batch_size: int = EVAL_BATCH_SIZE,
) -> dict[str, APResult]:
    """AP per class and mAP@0.5 of ``model`` on ``data``, by interpolation: {"11": ..., "all": ...}.

    "11" is the VOC2007 devkit's 11-point average precision, the paper's measure; "all" the
    all-point one of later VOC years. Detections use the paper's inference settings
    (``inference.detect``'s defaults: score > 0.01, NMS at IoU 0.45, top 200 per image).
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    anchors = model.config.anchors().to(device)
    loader = DataLoader(
        data,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=detection_collate,
        num_workers=workers,
    )
    detections, truths = [], []
    use_amp = amp and device.type == "cuda"
    for images, boxes, labels in tqdm(loader, desc="VOC2007 test", disable=not progress):
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            class_logits, box_offsets = model(images.to(device, non_blocking=True))
        found = detect(anchors, class_logits.float(), box_offsets.float())
        detections += [type(d)(*(t.cpu() for t in d)) for d in found]
        truths += [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    num_classes = model.config.num_classes
    return {
        interpolation: average_precision(
            detections, truths, num_classes, VOC_IOU_THRESHOLD, interpolation=interpolation
        )
        for interpolation in ("11", "all")
    }


# ----------------------------------------------------------------------------------------------
# Settings, checkpoints, results


def _settings(given: dict, saved: dict | None) -> dict:
    """The run's settings: the given ones, else the checkpoint's, else the paper's."""
    defaults = dict(
        iterations=ITERATIONS,
        years=YEARS,
        lr=LEARNING_RATE,
        lr_steps=LR_STEPS,
        batch_size=BATCH_SIZE,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        max_zoom_out=MAX_ZOOM_OUT,
        preset=PRESET,
        seed=0,
    )
    settings = dict(saved) if saved else defaults
    settings.pop("model", None)
    differ = []
    for name, value in given.items():
        if value is None:
            continue
        if saved and name != "iterations" and _plain(value) != _plain(saved[name]):
            differ.append(f"{name} {_plain(value)!r} (checkpoint: {_plain(saved[name])!r})")
        settings[name] = value
    if differ:
        raise ValueError(
            "expected the checkpoint's settings when resuming (only iterations may change), got "
            + ", ".join(differ)
        )
    settings["iterations"] = checks.integer(settings["iterations"], "iterations", 1)
    settings["lr"] = checks.number(settings["lr"], "lr", 0, math.inf, low_open=True, high_open=True)
    settings["batch_size"] = checks.integer(settings["batch_size"], "batch_size", 1)
    settings["momentum"] = checks.number(settings["momentum"], "momentum", 0, 1, high_open=True)
    settings["weight_decay"] = checks.number(
        settings["weight_decay"], "weight_decay", 0, math.inf, high_open=True
    )
    settings["max_zoom_out"] = checks.number(
        settings["max_zoom_out"], "max_zoom_out", 1, math.inf, high_open=True
    )
    settings["seed"] = checks.integer(settings["seed"], "seed", 0)
    ssd300_config(len(VOC_CLASSES), settings["preset"])  # checks the preset
    return settings


def _plain(value):
    """Lists and tuples alike, numbers as floats, for comparing settings with a checkpoint's."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _save_training_state(path: Path, loop: _Loop, step: int, epoch: int) -> None:
    """Write the checkpoint atomically: a crash while writing leaves the previous one."""
    schedule = loop.schedule.state_dict()
    schedule["milestones"] = dict(schedule["milestones"])  # a Counter; plain for weights_only
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu() for k, v in loop.model.state_dict().items()},
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": schedule,
        "scaler": loop.scaler.state_dict(),
        "step": step,
        "epoch": epoch,
        "settings": _json_ready(loop.settings),
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def _read_training_state(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"expected a checkpoint to resume from at {path}, got no file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, corrupt, or not a torch file
        raise ValueError(
            f"expected a readable training checkpoint at {path}, got {type(err).__name__}: {err}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"expected a training checkpoint of ssd_lesson.voc_train at {path} (format "
            f"{CHECKPOINT_FORMAT!r}), got another file"
        )
    return state


def _restore(saved: dict, model, optimizer, schedule, scaler, path: Path) -> int:
    """Load the saved states into the fresh objects -> the step to continue from."""
    if saved["settings"].get("model") != model.config.to_dict():
        raise ValueError(
            f"expected {path} to hold the model this run builds ({model.config}), got a "
            f"checkpoint of {saved['settings'].get('model')}"
        )
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    schedule_state = dict(saved["scheduler"])
    schedule_state["milestones"] = Counter(schedule_state["milestones"])
    schedule.load_state_dict(schedule_state)
    if saved["scaler"] and scaler.is_enabled():  # empty when saved without CUDA
        scaler.load_state_dict(saved["scaler"])
    return int(saved["step"])


def _json_ready(settings: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _save_results(out: Path, result: VOCTrainResult, num_images: int, settings: dict) -> Path:
    path = out / RESULTS_NAME
    report = {
        "map_50": result.map_50,
        "interpolation": "11-point (VOC2007 devkit, as the paper)",
        "map_50_all_point": result.map_50_all_point,
        "per_class_ap_50": result.per_class,
        "test_images": num_images,
        "difficult_objects": "left out of the ground truth; detections of them count as false",
        "steps": result.step,
        "checkpoint": str(result.checkpoint),
        "settings": _json_ready(settings),
        "paper_map_50": PAPER_MAP,
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------------------------
# Command line


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lesson.voc_train",
        description="Train SSD300 on VOC2007+2012 trainval the paper's way, evaluate on VOC2007 "
        "test (mAP@0.5). The paper reports 74.3 for SSD300 07+12.",
    )
    parser.add_argument(
        "--root", required=True, help="the VOCdevkit folder (holds VOC2007, VOC2012)"
    )
    parser.add_argument(
        "--vgg-weights",
        help="ImageNet VGG16 weights (torch.save'd state dict); needed unless --resume",
    )
    parser.add_argument("--out", required=True, help="folder for the checkpoint and the mAP JSON")
    parser.add_argument("--years", nargs="+", help=f"trainval years (default: {' '.join(YEARS)})")
    parser.add_argument(
        "--iterations",
        type=int,
        help=f"training steps in all (default: {ITERATIONS}, or the checkpoint's with --resume)",
    )
    parser.add_argument("--lr", type=float, help=f"learning rate (default: {LEARNING_RATE:g})")
    parser.add_argument(
        "--lr-steps",
        type=int,
        nargs="*",
        help=f"steps at which the rate is divided by 10 (default: {' '.join(map(str, LR_STEPS))})",
    )
    parser.add_argument("--batch-size", type=int, help=f"images per step (default: {BATCH_SIZE})")
    parser.add_argument("--momentum", type=float, help=f"SGD momentum (default: {MOMENTUM})")
    parser.add_argument(
        "--weight-decay", type=float, help=f"SGD weight decay (default: {WEIGHT_DECAY:g})"
    )
    parser.add_argument(
        "--max-zoom-out",
        type=float,
        help="expansion: 1 = off (default, the 74.3 model), 4 = SSD300*",
    )
    parser.add_argument(
        "--preset",
        choices=("paper", "torchvision"),
        help=f"ssd300_config preset (default: {PRESET})",
    )
    parser.add_argument("--seed", type=int, help="default: 0")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--no-eval", action="store_true", help="skip the VOC2007 test mAP")
    parser.add_argument(
        "--test-images", type=int, help="evaluate on the first N VOC2007 test images only"
    )
    parser.add_argument("--device", help="cuda, cpu, cuda:1... (default: cuda if present)")
    parser.add_argument("--no-amp", action="store_true", help="full precision on CUDA too")
    parser.add_argument(
        "--workers",
        type=int,
        default=WORKERS,
        help="data loading processes (default: min(8, CPU cores))",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (CPU runs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    """The command line; returns the exit status (2 with a one-line message on bad input)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.vgg_weights is None and not args.resume:
        parser.error("--vgg-weights is required (ImageNet VGG16 weights), unless --resume")
    try:
        train_voc(
            args.root,
            args.out,
            args.vgg_weights,
            years=args.years,
            iterations=args.iterations,
            lr=args.lr,
            lr_steps=args.lr_steps,
            batch_size=args.batch_size,
            momentum=args.momentum,
            weight_decay=args.weight_decay,
            max_zoom_out=args.max_zoom_out,
            preset=args.preset,
            seed=args.seed,
            resume=args.resume,
            evaluate=not args.no_eval,
            test_images=args.test_images,
            device=args.device,
            amp=not args.no_amp,
            workers=args.workers,
            threads=args.threads,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
