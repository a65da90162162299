"""Lesson 06's recipe: the one place where the lesson's training is written down.

``lesson_recipe`` draws the data, builds the model and trains it with ``lesson_fit_settings``;
the notebook and the benchmarks call it, so they cannot drift apart. ``lesson_settings`` is
everything that decides what it trains, as a plain dict, and ``lesson_model`` keeps the trained
model in a checkpoint with those settings, so that lesson 07 trains it only once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ssd_lesson.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from ssd_lesson.data.shapes import ShapesDataset
from ssd_lesson.model import SSD, small_config
from ssd_lesson.train import History, cpu_threads, fit

# Lesson 06's recipe, measured on a 2-core CPU: 20 to 45 s of training, depending on the
# machine's load, for a held-out mAP@0.5 above 0.9. Many fresh images seen few times beat few
# images seen many times (the model overfits a small set), as long as drawing them stays cheap.
LESSON_TRAIN_IMAGES = 4800
LESSON_VAL_IMAGES = 300
LESSON_EPOCHS = 3
LESSON_BATCH_SIZE = 64
LESSON_LEARNING_RATE = 1e-2
LESSON_TRAIN_SEED = 1000  # + the run's seed: each seed draws its own training images
LESSON_VAL_SEED = 999_999  # the same held-out images for every run


@dataclass
class LessonRun:
    """What ``lesson_recipe`` made: the data, the model and how training went."""

    train_data: object
    val_data: object
    model: SSD
    history: History | None
    data_seconds: float  # drawing the images (not training)


def lesson_recipe(seed: int = 0, train: bool = True, progress: bool = False) -> LessonRun:
    """Lesson 06's training, the one definition used by the notebook and the benchmarks.

    Draws ``LESSON_TRAIN_IMAGES`` shapes images (seeded by ``seed``) and the fixed held-out
    set, builds ``SSD(small_config())`` and, if ``train``, fits it with the lesson's settings.
    Drawing and training use the CPU threads ``cpu_threads`` picks (fewer on a busy machine).
    """
    with cpu_threads() as threads:
        torch.manual_seed(seed)
        start = time.perf_counter()
        train_data = ShapesDataset(
            LESSON_TRAIN_IMAGES, seed=LESSON_TRAIN_SEED + seed, precompute=True
        )
        val_data = ShapesDataset(LESSON_VAL_IMAGES, seed=LESSON_VAL_SEED, precompute=True)
        data_seconds = time.perf_counter() - start
        model = SSD(small_config())
        history = None
        if train:
            settings = lesson_fit_settings(seed)
            history = fit(
                model, train_data, val_data, progress=progress, threads=threads, **settings
            )
    return LessonRun(train_data, val_data, model, history, data_seconds)


def lesson_fit_settings(seed: int = 0) -> dict:
    """The arguments lesson 06 passes to ``fit``: epochs, batch size, learning rate, seed."""
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
    """Lesson 06's trained model, trained once and then kept in the file ``path``.

    If ``path`` holds a checkpoint saved with ``recipe=lesson_settings(seed)`` (lesson 06 saves
    one), the model is loaded from it. Otherwise it is trained now with ``lesson_recipe(seed)``
    (under a minute on a laptop CPU) and saved to ``path``. Training is seeded and repeatable on
    a given machine with a given number of CPU threads, so the loaded model is the one that
    training would give. Returns the model in eval mode on the CPU.
    """
    path = Path(path)
    recipe = lesson_settings(seed)
    if path.is_file():
        try:
            saved = read_checkpoint(path).get("recipe")
            model, _ = load_checkpoint(path)
        except ValueError:
            saved = None  # an old or foreign file at this path: train afresh and replace it
        if saved == recipe:
            return model
    run = lesson_recipe(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, run.model, history=run.history, recipe=recipe)
    return run.model.cpu().eval()


def save_lesson_model(path, model: SSD, history: History | None, fit_settings: dict) -> Path:
    """Save a model trained in lesson 06 so that ``lesson_model`` (lesson 07) can reuse it.

    The checkpoint is marked with ``lesson_settings(seed)`` only if ``fit_settings`` (what was
    passed to ``fit``) are the lesson's own, ``lesson_fit_settings(seed)``. A model trained
    with other settings (an exercise) is saved too, unmarked: ``lesson_model`` then trains the
    lesson's model afresh instead of taking it. Creates the folder; returns the path.
    """
    seed = fit_settings.get("seed", 0) if isinstance(fit_settings, dict) else None
    own = isinstance(seed, int) and fit_settings == lesson_fit_settings(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recipe = lesson_settings(seed) if own else None
    return save_checkpoint(path, model, history=history, recipe=recipe)
