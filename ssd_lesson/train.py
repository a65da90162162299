"""Training: the loop that turns the loss into a detector.

``fit`` runs the classic loop, epoch by epoch:

1. for each batch of training images: match anchors to objects and encode the targets
   (``build_targets``), run the model, compute ``ssd_loss``, backpropagate, step the optimizer;
2. after each epoch: the loss on held-out images and their mean average precision (mAP@0.5),
   the number that says how good the detector is (``evaluate``).

It returns a ``History`` with one row per epoch; ``ssd_lesson.plotting.plot_history`` draws it.
Checkpoints live in ``ssd_lesson.checkpoints``, lesson 06's recipe in ``ssd_lesson.recipe``.

On the CPU, ``fit`` runs with the caller's number of torch threads, or with one thread when
other programs keep the cores busy (see ``cpu_threads``): several threads wait for each other
at every operation, and on busy cores each wait lasts until the scheduler runs the slowest.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ssd_lesson import checks
from ssd_lesson.data.collate import detection_collate
from ssd_lesson.fast import build_targets  # the vectorised twin of encoding.build_targets
from ssd_lesson.inference import NMS_IOU_THRESHOLD, SCORE_THRESHOLD, TOP_K, detect
from ssd_lesson.loss import ssd_loss
from ssd_lesson.metrics import VOC_IOU_THRESHOLD, average_precision
from ssd_lesson.model import SSD

# The default optimizer: AdamW (Adam with decoupled weight decay), with a one-cycle schedule: the
# learning rate warms up for the first WARMUP_FRACTION of the steps, then falls to ~0 along a
# cosine. Adam adapts the step size per weight, so the one learning rate works for the small
# backbone and the heads alike; the warm-up avoids the large, noisy first steps that batch norm and
# the fresh heads would otherwise take. (The paper used SGD with momentum 0.9 and lr 1e-3 for
# 40k iterations on a GPU; we have a minute on a CPU.)
LEARNING_RATE = 3e-3  # fit's default; lesson 06's batches of 64 take 1e-2 (ssd_lesson.recipe)
WEIGHT_DECAY = 1e-4
WARMUP_FRACTION = 0.15
# Below this share of its threads' CPU time, the process is competing for the cores: fit then
# uses one thread (see cpu_threads). A quiet machine gives about 1.0, two busy programs on two
# cores about 0.5.
BUSY_CPU_SHARE = 0.75
CPU_PROBE_SECONDS = 0.05


@dataclass
class History:
    """What happened during training, one entry per epoch in each list."""

    train_loss: list[float] = field(default_factory=list)
    train_localization: list[float] = field(default_factory=list)
    train_classification: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_map: list[float] = field(default_factory=list)  # mAP@0.5 on the validation images
    seconds: list[float] = field(default_factory=list)  # training time of the epoch
    images_per_second: list[float] = field(default_factory=list)
    # One entry per training batch (step), for curves finer than one point per epoch.
    batch_loss: list[float] = field(default_factory=list)
    batch_localization: list[float] = field(default_factory=list)
    batch_classification: list[float] = field(default_factory=list)
    threads: int | None = None  # CPU threads torch used

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def train_seconds(self) -> float:
        """Time spent training, validation excluded."""
        return float(sum(self.seconds))

    def to_dict(self) -> dict:
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {k: list(v) if isinstance(v, list) else v for k, v in values.items()}


class TrainingDiverged(ValueError):
    """The network's outputs became NaN or infinite."""


def fit(
    model: SSD,
    train_data,
    val_data=None,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = LEARNING_RATE,
    weight_decay: float = WEIGHT_DECAY,
    seed: int = 0,
    device=None,
    time_budget_s: float | None = None,
    progress: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    fixed_data: bool | None = None,
    threads: int | None = None,
    targets_fn=None,
    loss_fn=None,
) -> History:
    """Train ``model`` on ``train_data``; after each epoch measure loss and mAP on ``val_data``.

    Args:
        model: an ``SSD``; its ``config`` gives the anchors and the image size.
        train_data, val_data: datasets of ``(image, target)`` with ``target["boxes"]`` xyxy
            **pixels** and ``target["labels"]`` 1..C (e.g. ``ShapesDataset``). val_data may be
            None (no validation).
        epochs, batch_size: passes over the training data, images per step.
        lr, weight_decay: AdamW's peak learning rate and weight decay (one-cycle schedule).
        seed: seeds the model's randomness and the order of the batches: same seed (and same
            number of threads), same run.
        device: "cpu", "cuda", ...; None picks CUDA when there is one.
        time_budget_s: stop training after the epoch during which this many seconds passed.
        progress: show tqdm progress bars (turn off for tests and saved notebooks).
        optimizer: your own optimizer (e.g. over ``parameter_groups``); then no schedule.
        fixed_data: True if every epoch sees the same images (no random augmentation): then
            the images are read and matched to the anchors once, before the first epoch, which
            makes epochs faster. None (default): True unless ``train_data.transform`` is set.
        threads: torch CPU threads to train with; None: ``cpu_threads`` decides (the caller's
            number, or 1 on busy cores). The caller's number is restored afterwards.
        targets_fn: matches and encodes a batch, ``targets_fn(anchors, boxes_list, labels_list)
            -> TrainingTargets``; None: ``build_targets`` (lesson 08 swaps in other matchers).
        loss_fn: the training loss, ``loss_fn(class_logits, box_offsets, target_labels,
            target_offsets) -> LossResult``; None: ``ssd_loss`` (lesson 08 tries others).
            Validation always reports ``ssd_loss``, so that runs compare.

    Returns:
        History. Raises ``TrainingDiverged`` (a ValueError) naming the epoch and step if the
        network's outputs become NaN or infinite.
    """
    epochs, batch_size, lr, weight_decay, seed = _check_fit_args(
        model, train_data, val_data, epochs, batch_size, lr, weight_decay, seed
    )
    if time_budget_s is not None:
        checks.number(time_budget_s, "time_budget_s", 0, math.inf, low_open=True)
    checks.flag(progress, "progress")
    if fixed_data is not None:
        checks.flag(fixed_data, "fixed_data")
    checks.optional_callable(targets_fn, "targets_fn")
    checks.optional_callable(loss_fn, "loss_fn")
    settings = (epochs, batch_size, lr, weight_decay, seed, time_budget_s, progress)
    recipe = (targets_fn or build_targets, loss_fn or ssd_loss)
    with cpu_threads(threads) as used:
        history = _fit(model, train_data, val_data, settings, device, optimizer, fixed_data, recipe)
    history.threads = used
    return history


def _fit(model, train_data, val_data, settings, device, optimizer, fixed_data, recipe) -> History:
    epochs, batch_size, lr, weight_decay, seed, time_budget_s, progress = settings
    targets_fn, loss_fn = recipe
    device = torch.device(device if device is not None else _default_device())
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)  # the order of the training images
    model.to(device)
    anchors = model.config.anchors().to(device)
    if fixed_data is None:
        fixed_data = getattr(train_data, "transform", None) is None
    start = time.perf_counter()
    data_class = _MatchedData if fixed_data else _FreshData
    source = data_class(train_data, anchors, targets_fn)
    setup_seconds = time.perf_counter() - start  # counted in the first epoch's time
    steps_per_epoch = math.ceil(len(train_data) / batch_size)
    schedule = None
    if optimizer is None:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=lr,
            total_steps=epochs * steps_per_epoch,
            pct_start=WARMUP_FRACTION,
            anneal_strategy="cos",
        )
    tqdm = _tqdm()
    history = History()
    epoch_bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for epoch in epoch_bar:
        start = time.perf_counter()
        sums, num_images = torch.zeros(3, dtype=torch.float64), 0
        model.train()
        batches = tqdm(
            source.batches(batch_size, order),
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}",
            leave=False,
            disable=not progress,
        )
        for step, (images, target_labels, target_offsets) in enumerate(batches):
            class_logits, box_offsets = model(images)
            _check_finite(class_logits, box_offsets, epoch, step, lr)  # the one check a step
            loss = loss_fn(class_logits, box_offsets, target_labels, target_offsets)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
            parts = torch.stack((loss.total, loss.localization, loss.classification)).detach()
            parts = parts.double().cpu()
            sums += parts * len(images)
            total, localization, classification = parts.tolist()
            history.batch_loss.append(total)
            history.batch_localization.append(localization)
            history.batch_classification.append(classification)
            num_images += len(images)
        seconds = time.perf_counter() - start + (setup_seconds if epoch == 0 else 0.0)
        means = (sums / max(num_images, 1)).tolist()
        history.train_loss.append(means[0])
        history.train_localization.append(means[1])
        history.train_classification.append(means[2])
        history.seconds.append(seconds)
        history.images_per_second.append(num_images / seconds if seconds > 0 else float("nan"))
        if val_data is not None:
            val_loss, val_map = evaluate(model, val_data, batch_size=max(batch_size, 64))
            history.val_loss.append(val_loss)
            history.val_map.append(val_map)
            epoch_bar.set_postfix(loss=f"{means[0]:.3f}", val_map=f"{val_map:.3f}")
        else:
            epoch_bar.set_postfix(loss=f"{means[0]:.3f}")
        if time_budget_s is not None and history.train_seconds >= time_budget_s:
            break
    return history


def _check_finite(class_logits: Tensor, box_offsets: Tensor, epoch: int, step: int, lr) -> None:
    """The NaN guard: stop with a clear message as soon as the network outputs NaN or inf."""
    if not (torch.isfinite(class_logits).all() & torch.isfinite(box_offsets).all()):
        raise TrainingDiverged(
            f"expected finite network outputs, got NaN or inf at epoch {epoch + 1}, step "
            f"{step + 1}; {checks.DIVERGED} (lr={lr})"
        )


# ----------------------------------------------------------------------------------------------
# CPU threads


@contextmanager
def cpu_threads(threads: int | None = None):
    """Run the block with ``threads`` torch CPU threads, then restore the caller's number.

    With ``threads=None`` the number is chosen now: the caller's (``torch.get_num_threads()``),
    or 1 if ``cpu_share`` finds the cores busy with other programs. Yields the number used.
    """
    before = torch.get_num_threads()
    if threads is None:
        threads = before if before == 1 or cpu_share(before) >= BUSY_CPU_SHARE else 1
    else:
        threads = checks.integer(threads, "threads", 1)
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(before)


def cpu_share(threads: int | None = None, seconds: float = CPU_PROBE_SECONDS) -> float:
    """The share of ``threads`` cores this process gets now: about 1 on a quiet machine.

    Runs a parallel torch operation for ``seconds`` and divides the CPU time all threads got by
    the wall time times ``threads``. Threads that wait for a core do not count, so two busy
    programs on a 2-core machine give about 0.5.
    """
    threads = torch.get_num_threads() if threads is None else threads
    work, out = torch.rand(1 << 20), torch.empty(1 << 20)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.sin(work, out=out)  # wake the thread pool up
        wall, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - wall < seconds:
            torch.sin(work, out=out)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        torch.set_num_threads(before)
    return cpu / (wall * threads)


class _MatchedData:
    """Training data read once and matched to the anchors once: fast epochs, no augmentation."""

    def __init__(self, data, anchors: Tensor, targets_fn=build_targets, chunk: int = 256) -> None:
        images, labels, offsets = [], [], []
        for batch_images, boxes, batch_labels in make_loader(data, chunk, shuffle=False):
            targets = targets_fn(anchors, [b.to(anchors.device) for b in boxes], batch_labels)
            images.append(batch_images.to(anchors.device))
            labels.append(targets.labels)
            offsets.append(targets.offsets)
        self.images = torch.cat(images)  # (N, 3, H, W)
        self.labels = torch.cat(labels)  # (N, A)
        self.offsets = torch.cat(offsets)  # (N, A, 4)

    def batches(self, batch_size: int, generator: torch.Generator):
        order = torch.randperm(len(self.images), generator=generator).to(self.images.device)
        for first in range(0, len(order), batch_size):
            rows = order[first : first + batch_size]
            yield self.images[rows], self.labels[rows], self.offsets[rows]


class _FreshData:
    """Training data read anew every epoch (random augmentation), matched batch by batch."""

    def __init__(self, data, anchors: Tensor, targets_fn=build_targets) -> None:
        self.data, self.anchors, self.targets_fn = data, anchors, targets_fn

    def batches(self, batch_size: int, generator: torch.Generator):
        seed = int(torch.randint(2**62, (), generator=generator))
        for images, boxes, labels in make_loader(self.data, batch_size, shuffle=True, seed=seed):
            device = self.anchors.device
            targets = self.targets_fn(self.anchors, [b.to(device) for b in boxes], labels)
            yield images.to(device), targets.labels, targets.offsets


@torch.no_grad()
def evaluate(model: SSD, data, batch_size: int = 64) -> tuple[float, float]:
    """Mean SSD loss per image and mAP@0.5 of ``model`` on ``data`` -> (loss, map).

    Detections use the paper's inference settings (``ssd_lesson.inference``: score > 0.01, NMS
    at IoU 0.45, top 200); mAP counts a detection as correct at IoU >= ``VOC_IOU_THRESHOLD``.
    """
    model.eval()
    device = next(model.parameters()).device
    anchors = model.config.anchors().to(device)
    total, count = 0.0, 0
    detections, truths = [], []
    for images, boxes, labels in make_loader(data, batch_size, shuffle=False):
        images = images.to(device)
        targets = build_targets(anchors, [b.to(device) for b in boxes], labels)
        class_logits, box_offsets = model(images)
        loss = ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets)
        total += loss.total.item() * len(images)
        count += len(images)
        found = detect(
            anchors,
            class_logits,
            box_offsets,
            score_threshold=SCORE_THRESHOLD,
            iou_threshold=NMS_IOU_THRESHOLD,
            top_k=TOP_K,
        )
        detections += [type(d)(*(t.cpu() for t in d)) for d in found]  # next to the truths
        truths += [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    num_classes = model.config.num_classes
    result = average_precision(detections, truths, num_classes, iou_threshold=VOC_IOU_THRESHOLD)
    return total / max(count, 1), float(result.mean)


def make_loader(data, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Batches of (images (B, 3, H, W), boxes: list of (G_i, 4) xyxy fractions, labels list).

    ``detection_collate`` divides the dataset's pixel boxes by the image size, so the rest of
    training speaks the package's language (fractions). A seeded generator fixes the shuffling.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=detection_collate,
        drop_last=False,
    )


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _tqdm():
    from tqdm.auto import tqdm

    return tqdm


def _check_fit_args(model, train_data, val_data, epochs, batch_size, lr, weight_decay, seed):
    if not isinstance(model, SSD):
        raise ValueError(f"expected an SSD model, got {type(model).__name__}")
    checks.dataset(train_data, "train_data")
    if val_data is not None:
        checks.dataset(val_data, "val_data")
    return (
        checks.integer(epochs, "epochs", 1),
        checks.integer(batch_size, "batch_size", 1),
        checks.number(lr, "lr", 0, math.inf, low_open=True, high_open=True),
        checks.number(weight_decay, "weight_decay", 0, math.inf, high_open=True),
        checks.integer(seed, "seed", 0),
    )
