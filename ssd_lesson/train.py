"""Training: the loop that turns the loss into a detector, and saving what it learned.

``fit`` runs the classic loop, epoch by epoch:

1. for each batch of training images: match anchors to objects and encode the targets
   (``build_targets``), run the model, compute ``ssd_loss``, backpropagate, step the optimizer;
2. after each epoch: the loss on held-out images and their mean average precision (mAP@0.5),
   the number that says how good the detector is.

It returns a ``History`` with one row per epoch; ``plot_history`` draws the loss curves with
their localization / classification split. ``save_checkpoint`` / ``load_checkpoint`` keep a
trained model together with the configuration it needs.

``lesson_recipe`` is the one place where lesson 05's training is written down (data, model,
optimizer, epochs), so that the lesson and the benchmarks cannot drift apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ssd_lesson.data.collate import detection_collate
from ssd_lesson.encoding import build_targets
from ssd_lesson.loss import ssd_loss
from ssd_lesson.model import SSD, SSDConfig, small_config

# Lesson 05's recipe, measured on a 2-core CPU (torch.set_num_threads(2)): 20 to 45 s of
# training, depending on the machine's load, for a held-out mAP@0.5 above 0.9. Many fresh
# images seen few times beat few images seen many times (the model overfits a small set), as
# long as drawing them stays cheap.
LESSON_TRAIN_IMAGES = 4800
LESSON_VAL_IMAGES = 300
LESSON_EPOCHS = 3
LESSON_BATCH_SIZE = 64
LESSON_LEARNING_RATE = 1e-2
LESSON_TRAIN_SEED = 1000  # + the run's seed: each seed draws its own training images
LESSON_VAL_SEED = 999_999  # the same held-out images for every run

# The default optimizer: AdamW (Adam with decoupled weight decay), with a one-cycle schedule: the
# learning rate warms up for the first WARMUP_FRACTION of the steps, then falls to ~0 along a
# cosine. Adam adapts the step size per weight, so the one learning rate works for the small
# backbone and the heads alike; the warm-up avoids the large, noisy first steps that batch norm and
# the fresh heads would otherwise take. (The paper used SGD with momentum 0.9 and lr 1e-3 for
# 40k iterations on a GPU; we have a minute on a CPU.)
LEARNING_RATE = 3e-3  # fit's default; the lesson's batches of 64 take LESSON_LEARNING_RATE
WEIGHT_DECAY = 1e-4
WARMUP_FRACTION = 0.15
# Validation: the paper's inference settings (score > 0.01, NMS at IoU 0.45, top 200).
VAL_SCORE_THRESHOLD = 0.01
VAL_IOU_THRESHOLD = 0.45
VAL_TOP_K = 200
# mAP counts a detection as correct when its IoU with an unclaimed ground truth is >= 0.5.
MAP_IOU = 0.5


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

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def train_seconds(self) -> float:
        """Time spent training, validation excluded."""
        return float(sum(self.seconds))

    def to_dict(self) -> dict:
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite."""


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
) -> History:
    """Train ``model`` on ``train_data``; after each epoch measure loss and mAP on ``val_data``.

    Args:
        model: an ``SSD``; its ``config`` gives the anchors and the image size.
        train_data, val_data: datasets of ``(image, target)`` with ``target["boxes"]`` xyxy
            **pixels** and ``target["labels"]`` 1..C (e.g. ``ShapesDataset``). val_data may be
            None (no validation).
        epochs, batch_size: passes over the training data, images per step.
        lr, weight_decay: AdamW's peak learning rate and weight decay (one-cycle schedule).
        seed: seeds the model's randomness and the order of the batches: same seed, same run.
        device: "cpu", "cuda", ...; None picks CUDA when there is one.
        time_budget_s: stop training after the epoch during which this many seconds passed.
        progress: show tqdm progress bars (turn off for tests and saved notebooks).
        optimizer: your own optimizer (e.g. over ``parameter_groups``); then no schedule.
        fixed_data: True if every epoch sees the same images (no random augmentation): then
            the images are read and matched to the anchors once, before the first epoch, which
            makes epochs faster. None (default): True unless ``train_data.transform`` is set.

    Returns:
        History. Raises ``TrainingDiverged`` (a ValueError) naming the epoch and step if the loss
        becomes NaN or infinite.
    """
    _check_fit_args(model, train_data, epochs, batch_size, lr, time_budget_s)
    device = torch.device(device if device is not None else _default_device())
    torch.manual_seed(seed)
    order = torch.Generator().manual_seed(seed)  # the order of the training images
    model.to(device)
    anchors = model.config.anchors().to(device)
    if fixed_data is None:
        fixed_data = getattr(train_data, "transform", None) is None
    start = time.perf_counter()
    source = _MatchedData(train_data, anchors) if fixed_data else _FreshData(train_data, anchors)
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
            _check_finite(class_logits, box_offsets, epoch, step, lr)
            loss = ssd_loss(class_logits, box_offsets, target_labels, target_offsets)
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
        _check_finite(torch.tensor(means[0]), None, epoch, step, lr)
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


@dataclass
class LessonRun:
    """What ``lesson_recipe`` made: the data, the model and how training went."""

    train_data: object
    val_data: object
    model: SSD
    history: History | None
    data_seconds: float  # drawing the images (not training)


def lesson_recipe(seed: int = 0, train: bool = True, progress: bool = False) -> LessonRun:
    """Lesson 05's training, the one definition used by the notebook and the benchmarks.

    Draws ``LESSON_TRAIN_IMAGES`` shapes images (seeded by ``seed``) and the fixed held-out
    set, builds ``SSD(small_config())`` and, if ``train``, fits it with the lesson's settings.
    """
    from ssd_lesson.data.shapes import ShapesDataset

    torch.manual_seed(seed)
    start = time.perf_counter()
    train_data = ShapesDataset(LESSON_TRAIN_IMAGES, seed=LESSON_TRAIN_SEED + seed, precompute=True)
    val_data = ShapesDataset(LESSON_VAL_IMAGES, seed=LESSON_VAL_SEED, precompute=True)
    data_seconds = time.perf_counter() - start
    model = SSD(small_config())
    history = None
    if train:
        history = fit(model, train_data, val_data, progress=progress, **lesson_fit_settings(seed))
    return LessonRun(train_data, val_data, model, history, data_seconds)


def lesson_fit_settings(seed: int = 0) -> dict:
    """The arguments lesson 05 passes to ``fit``: epochs, batch size, learning rate, seed."""
    return {
        "epochs": LESSON_EPOCHS,
        "batch_size": LESSON_BATCH_SIZE,
        "lr": LESSON_LEARNING_RATE,
        "seed": seed,
    }


def lesson_settings(seed: int = 0) -> dict:
    """Everything that decides what ``lesson_recipe(seed)`` trains, as a plain dict."""
    from ssd_lesson import __version__

    return {
        "package": __version__,
        "train_images": LESSON_TRAIN_IMAGES,
        "val_images": LESSON_VAL_IMAGES,
        "train_seed": LESSON_TRAIN_SEED + seed,
        "val_seed": LESSON_VAL_SEED,
        **lesson_fit_settings(seed),  # epochs, batch size, learning rate, seed
    }


def lesson_model(path, seed: int = 0) -> SSD:
    """Lesson 05's trained model, trained once and then kept in the file ``path``.

    If ``path`` holds a checkpoint saved with ``recipe=lesson_settings(seed)`` (lesson 05 saves
    one), the model is loaded from it. Otherwise it is trained now with ``lesson_recipe(seed)``
    (about a minute on a laptop CPU) and saved to ``path``. Training is seeded and repeatable on
    a given machine, so the loaded model is the one that training would give. Returns the model
    in eval mode on the CPU.
    """
    path = Path(path)
    recipe = lesson_settings(seed)
    if path.is_file():
        try:
            model, _ = load_checkpoint(path)
            saved = torch.load(path, weights_only=True, map_location="cpu").get("recipe")
        except ValueError:
            saved = None  # an old or foreign file at this path: train afresh and replace it
        if saved == recipe:
            return model
    run = lesson_recipe(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, run.model, history=run.history, recipe=recipe)
    return run.model.cpu().eval()


def _check_finite(class_logits: Tensor, box_offsets: Tensor | None, epoch, step, lr) -> None:
    """The NaN guard: stop with a clear message as soon as the network outputs NaN or inf."""
    finite = torch.isfinite(class_logits).all()
    if box_offsets is not None:
        finite = finite & torch.isfinite(box_offsets).all()
    if not finite:
        raise TrainingDiverged(
            f"training diverged: the network's outputs or loss became NaN or infinite at epoch "
            f"{epoch + 1}, step {step + 1}; try a lower learning rate (lr={lr})"
        )


class _MatchedData:
    """Training data read once and matched to the anchors once: fast epochs, no augmentation."""

    def __init__(self, data, anchors: Tensor, chunk: int = 256) -> None:
        images, labels, offsets = [], [], []
        for batch_images, boxes, batch_labels in make_loader(data, chunk, shuffle=False):
            targets = build_targets(anchors, [b.to(anchors.device) for b in boxes], batch_labels)
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

    def __init__(self, data, anchors: Tensor) -> None:
        self.data, self.anchors = data, anchors

    def batches(self, batch_size: int, generator: torch.Generator):
        seed = int(torch.randint(2**62, (), generator=generator))
        for images, boxes, labels in make_loader(self.data, batch_size, shuffle=True, seed=seed):
            device = self.anchors.device
            targets = build_targets(self.anchors, [b.to(device) for b in boxes], labels)
            yield images.to(device), targets.labels, targets.offsets


@torch.no_grad()
def evaluate(model: SSD, data, batch_size: int = 64) -> tuple[float, float]:
    """Mean SSD loss per image and mAP@0.5 of ``model`` on ``data`` -> (loss, map)."""
    from ssd_lesson.inference import detect  # the detection and metric lessons' modules
    from ssd_lesson.metrics import average_precision

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
            score_threshold=VAL_SCORE_THRESHOLD,
            iou_threshold=VAL_IOU_THRESHOLD,
            top_k=VAL_TOP_K,
        )
        detections += [type(d)(*(t.cpu() for t in d)) for d in found]  # next to the truths
        truths += [{"boxes": b, "labels": lab} for b, lab in zip(boxes, labels, strict=True)]
    result = average_precision(detections, truths, model.config.num_classes, iou_threshold=MAP_IOU)
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


def _check_fit_args(model, train_data, epochs, batch_size, lr, time_budget_s) -> None:
    if not isinstance(model, SSD):
        raise ValueError(f"expected an SSD model, got {type(model).__name__}")
    if len(train_data) == 0:
        raise ValueError("expected a training dataset with at least one image, got 0")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"expected {name} as an integer >= 1, got {value!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"expected lr as a number > 0, got {lr!r}")
    if time_budget_s is not None and not (time_budget_s > 0):
        raise ValueError(f"expected time_budget_s > 0 seconds or None, got {time_budget_s!r}")


# ----------------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------------
def plot_history(history: History, ax=None):
    """Loss curves: total, localization and classification (train), validation loss and mAP.

    With per-batch losses (what ``fit`` records), the training curves have one point per batch
    and the x axis counts epochs, so that the validation points sit at the end of each epoch.
    Otherwise each curve has one point per epoch. Validation mAP, if any, uses a second axis on
    the right. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    elif hasattr(ax, "add_subplot"):  # a Figure
        ax = ax.add_subplot(1, 1, 1)
    epochs = list(range(1, history.epochs + 1))
    batches = len(history.batch_loss)
    if batches and history.epochs:
        x = [(i + 1) * history.epochs / batches for i in range(batches)]  # in epochs
        train = (history.batch_loss, history.batch_localization, history.batch_classification)
        suffix, style, width = " (each batch)", "-", 1.0
    else:
        x, suffix, style, width = epochs, "", "o-", 1.5
        train = (history.train_loss, history.train_localization, history.train_classification)
    colors = ("black", "tab:blue", "tab:orange")
    parts = ("total", "localization", "classification")
    for values, part, color in zip(train, parts, colors, strict=True):
        ax.plot(x, values, style, color=color, linewidth=width, label=f"train: {part}{suffix}")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, "s-", color="tab:red", label="validation: total")
    ax.set_xlabel("epoch")
    ax.set_xticks(range(0 if batches else 1, history.epochs + 1))
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    if history.val_map:
        right = ax.twinx()
        (line,) = right.plot(epochs, history.val_map, "^-", color="tab:green")
        right.set_ylabel("validation mAP@0.5")
        right.set_ylim(0, 1)
        handles.append(line)
        names.append("validation mAP@0.5")
    ax.legend(
        handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize="small"
    )
    return ax


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------
CHECKPOINT_FORMAT = "ssd-lesson checkpoint 1"


def save_checkpoint(
    path, model: SSD, config: SSDConfig | None = None, history=None, recipe: dict | None = None
) -> Path:
    """Save the model's weights with its config (a plain dict) and, optionally, its history.

    ``recipe`` is an optional plain dict saying how the model was trained (``lesson_model``
    uses it to tell whether a saved model is the one it would train now).
    """
    config = model.config if config is None else config
    if not isinstance(config, SSDConfig):
        raise ValueError(f"expected an SSDConfig, got {type(config).__name__}")
    if config != model.config:
        raise ValueError("expected the model's own config, got a different one")
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.to_dict() if isinstance(history, History) else history,
        "recipe": recipe,
    }
    path = Path(path)
    torch.save(checkpoint, path)
    return path


def load_checkpoint(path, config: SSDConfig | None = None) -> tuple[SSD, SSDConfig]:
    """Rebuild a saved model -> (model, config); the model is in eval mode on the CPU.

    With ``config``, the checkpoint must have been saved with that same config, otherwise a
    ValueError lists the fields that differ. A file that is not a readable ssd-lesson checkpoint
    (corrupt, truncated, or something else) gives a ValueError naming the file.
    """
    path = Path(path)
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, random bytes, a pickle of other objects...
        raise ValueError(
            f"{path} is not a readable ssd-lesson checkpoint (corrupt or truncated?): "
            f"{type(err).__name__}"
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an ssd-lesson checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    saved = SSDConfig.from_dict(checkpoint["config"])
    if config is not None:
        if not isinstance(config, SSDConfig):
            raise ValueError(f"expected an SSDConfig, got {type(config).__name__}")
        given = config.to_dict()
        differ = [
            f"{name}: checkpoint {value!r}, given {given[name]!r}"
            for name, value in saved.to_dict().items()
            if value != given[name]
        ]
        if differ:
            raise ValueError(f"{path} was saved with a different config; " + "; ".join(differ))
    model = SSD(saved)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), saved
