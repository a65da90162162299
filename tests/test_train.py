"""Tests for ssd_lesson.train (fit's history, seeding, learning, the NaN guard, CPU threads),
ssd_lesson.checkpoints, ssd_lesson.recipe and plotting's plot_history."""

import math

import matplotlib
import matplotlib.figure
import pytest
import torch

from ssd_lesson import checks, recipe, train
from ssd_lesson.checkpoints import load_checkpoint, save_checkpoint
from ssd_lesson.data.shapes import ShapesDataset
from ssd_lesson.model import SSD, SSDConfig
from ssd_lesson.plotting import plot_history, show_image
from ssd_lesson.recipe import LessonRun, lesson_model, lesson_settings
from ssd_lesson.train import History, TrainingDiverged, cpu_threads, fit

matplotlib.use("Agg")

# 32-pixel images, maps 4 x 4, 2 x 2, 1 x 1: a model that trains in a blink.
TINY = SSDConfig(
    image_size=32,
    num_classes=4,
    feature_map_sizes=(4, 2, 1),
    scales=(0.25, 0.45, 0.7, 0.95),
    aspect_ratios=((2,), (2,), (2,)),
    widths=(8, 8, 16, 16, 16),
)


def tiny_data(n, seed):
    return ShapesDataset(n, image_size=32, seed=seed, min_size=0.25, max_objects=2, precompute=True)


@pytest.fixture(scope="module")
def data():
    return tiny_data(48, seed=1), tiny_data(16, seed=2)


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return SSD(TINY)


def test_history_has_one_row_per_epoch(data):
    train, val = data
    history = fit(tiny_model(), train, val, epochs=2, batch_size=16, progress=False)
    assert isinstance(history, History) and history.epochs == 2
    for name in (
        "train_loss",
        "train_localization",
        "train_classification",
        "val_loss",
        "val_map",
        "seconds",
        "images_per_second",
    ):
        values = getattr(history, name)
        assert len(values) == 2, name
        assert all(math.isfinite(v) for v in values), name
    for total, loc, cls in zip(
        history.train_loss, history.train_localization, history.train_classification, strict=True
    ):
        assert total == pytest.approx(loc + cls, rel=1e-5)
    assert all(0 <= m <= 1 for m in history.val_map)
    assert history.train_seconds == pytest.approx(sum(history.seconds))
    assert history.images_per_second[0] == pytest.approx(48 / history.seconds[0], rel=1e-6)
    # One entry per batch: 48 images in batches of 16 = 3 a epoch; equal batches, so each
    # epoch's loss is the plain mean of its batches'.
    for epoch_values, batch_values in (
        (history.train_loss, history.batch_loss),
        (history.train_localization, history.batch_localization),
        (history.train_classification, history.batch_classification),
    ):
        assert len(batch_values) == 6
        for epoch in range(2):
            mean = sum(batch_values[3 * epoch : 3 * epoch + 3]) / 3
            assert epoch_values[epoch] == pytest.approx(mean, rel=1e-9)


def test_same_seed_same_losses_other_seed_other_losses(data):
    train, _ = data
    threads = torch.get_num_threads()  # the same threads for all: the sums run alike
    runs = [
        fit(tiny_model(), train, epochs=1, batch_size=16, seed=s, progress=False, threads=threads)
        for s in (3, 3, 4)
    ]
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].train_loss != runs[2].train_loss


def test_loss_falls_when_overfitting_a_few_images():
    few = tiny_data(8, seed=5)
    history = fit(tiny_model(), few, epochs=25, batch_size=8, lr=1e-2, progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.train_localization[-1] < history.train_localization[0]
    assert history.train_classification[-1] < history.train_classification[0]


def test_augmented_data_is_read_every_epoch(data):
    """With a transform, fit reads the images anew each epoch; the loop still trains."""
    calls = []

    def count(image, target):
        calls.append(1)
        return image, target

    train = ShapesDataset(16, image_size=32, seed=1, min_size=0.25, transform=count)
    history = fit(tiny_model(), train, epochs=2, batch_size=8, progress=False)
    assert len(calls) == 32 and history.epochs == 2


def test_time_budget_stops_after_the_first_epoch(data):
    train, _ = data
    history = fit(tiny_model(), train, epochs=50, batch_size=16, time_budget_s=1e-9, progress=False)
    assert history.epochs == 1


def test_nan_guard_names_epoch_and_step(data):
    train, _ = data
    model = tiny_model()
    with torch.no_grad():
        model.class_heads[0].bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1") as caught:
        fit(model, train, epochs=1, batch_size=16, progress=False)
    assert checks.DIVERGED in str(caught.value)  # the package's one wording


def test_huge_learning_rate_is_stopped_not_nan(data):
    train, _ = data
    try:
        history = fit(tiny_model(), train, epochs=3, batch_size=16, lr=1e12, progress=False)
    except TrainingDiverged as err:
        assert "epoch" in str(err) and "step" in str(err)
    else:  # batch norm can keep even this finite; then every number must be finite
        assert all(math.isfinite(v) for v in history.train_loss)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"time_budget_s": 0}, "time_budget_s"),
        ({"epochs": 2.5}, "epochs"),
        ({"epochs": "3"}, "epochs"),
        ({"batch_size": True}, "batch_size"),
        ({"lr": "fast"}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"seed": "a"}, "seed"),
        ({"progress": "no"}, "progress"),
        ({"threads": 0}, "threads"),
    ],
)
def test_bad_fit_arguments(data, kwargs, message):
    train, _ = data
    with pytest.raises(ValueError, match=message):
        fit(tiny_model(), train, **{"progress": False, **kwargs})


def test_fit_rejects_other_models(data):
    with pytest.raises(ValueError, match="SSD"):
        fit(torch.nn.Linear(2, 2), data[0], progress=False)


@pytest.mark.parametrize("bad", [None, 5, "images"])
def test_fit_rejects_what_is_not_a_dataset(data, bad):
    with pytest.raises(ValueError, match="expected train_data as a dataset"):
        fit(tiny_model(), bad, progress=False)
    with pytest.raises(ValueError, match="expected val_data as a dataset"):
        fit(tiny_model(), data[0], bad if bad is not None else 5, progress=False)
    with pytest.raises(ValueError, match="at least one image"):
        fit(tiny_model(), [], progress=False)


# ----------------------------------------------------------------------------------------------
# CPU threads


def test_fit_restores_the_callers_threads_and_records_its_own(data):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        history = fit(tiny_model(), data[0], epochs=1, batch_size=16, progress=False, threads=1)
        assert history.threads == 1 and torch.get_num_threads() == 2
        assert History(**history.to_dict()).threads == 1  # it survives a checkpoint's dict
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("share", "expected"), [(1.0, 2), (0.8, 2), (0.5, 1), (0.3, 1)])
def test_busy_cores_mean_one_thread(monkeypatch, share, expected):
    monkeypatch.setattr(train, "cpu_share", lambda threads: share)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with cpu_threads() as used:
            assert used == expected == torch.get_num_threads()
        assert torch.get_num_threads() == 2
        with cpu_threads(3) as used:  # asked for: no measuring
            assert used == 3 == torch.get_num_threads()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cpu_share_is_a_fraction_of_the_threads():
    share = train.cpu_share(1, seconds=0.02)
    assert 0 < share <= 1.5  # CPU time of one thread over wall time, up to timer granularity


def test_plot_history_draws_one_point_per_batch_when_it_has_them():
    history = History(
        train_loss=[3.0, 2.0],
        train_localization=[1.0, 0.5],
        train_classification=[2.0, 1.5],
        val_loss=[3.5, 2.5],
        batch_loss=[4.0, 2.0, 2.5, 1.5],
        batch_localization=[1.5, 0.5, 0.6, 0.4],
        batch_classification=[2.5, 1.5, 1.9, 1.1],
    )
    ax = plot_history(history)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines[:3]] == [
        "train: total (each batch)",
        "train: localization (each batch)",
        "train: classification (each batch)",
    ]
    assert list(lines[0].get_xdata()) == [0.5, 1.0, 1.5, 2.0]  # in epochs
    assert list(lines[2].get_ydata()) == [2.5, 1.5, 1.9, 1.1]
    assert list(lines[3].get_xdata()) == [1, 2]  # validation at the end of each epoch


def test_plot_history_draws_loss_parts_and_map():
    history = History(
        train_loss=[3.0, 2.0],
        train_localization=[1.0, 0.5],
        train_classification=[2.0, 1.5],
        val_loss=[3.5, 2.5],
        val_map=[0.2, 0.6],
        seconds=[1.0, 1.0],
        images_per_second=[10.0, 10.0],
    )
    ax = plot_history(history)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [
        "train: total",
        "train: localization",
        "train: classification",
        "validation: total",
    ]
    assert list(ax.get_lines()[1].get_ydata()) == [1.0, 0.5]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend[-1] == "validation mAP@0.5"
    figure = matplotlib.figure.Figure()
    assert (
        plot_history(
            History(train_loss=[1.0], train_localization=[0.4], train_classification=[0.6]), figure
        ).figure
        is figure
    )


def test_show_image_wants_one_image_not_a_batch():
    figure = matplotlib.figure.Figure()
    with pytest.raises(ValueError, match="expected one image"):
        show_image(figure.add_subplot(), torch.rand(2, 3, 8, 8))


# ----------------------------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_round_trip(tmp_path):
    model = tiny_model().eval()
    history = History(train_loss=[1.0])
    path = save_checkpoint(tmp_path / "model.pt", model, TINY, history)
    loaded, config = load_checkpoint(path, TINY)
    assert config == TINY
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(images), loaded(images), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not loaded.training
    loaded_again, _ = load_checkpoint(path)  # without a config: the saved one
    assert loaded_again.config == TINY


def test_checkpoint_with_another_config_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", tiny_model())
    other = SSDConfig(**{**TINY.to_dict(), "num_classes": 3})
    with pytest.raises(ValueError, match=r"num_classes: checkpoint 4, given 3"):
        load_checkpoint(path, other)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", tiny_model())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"model\.pt.*not a readable ssd-lesson checkpoint"):
        load_checkpoint(path)


def test_other_files_are_clear_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match="notes.txt"):
        load_checkpoint(text)
    state_only = tmp_path / "weights.pt"
    torch.save(tiny_model().state_dict(), state_only)  # weights without config
    with pytest.raises(ValueError, match=r"weights\.pt is not an ssd-lesson checkpoint"):
        load_checkpoint(state_only)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def _rewrite(path, **changes):
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, **changes}, path)
    return path


def test_checkpoint_without_weights_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", tiny_model())
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["state_dict"]
    torch.save(checkpoint, path)
    with pytest.raises(ValueError, match=r"model\.pt: expected a 'state_dict' entry"):
        load_checkpoint(path)
    _rewrite(path, state_dict=[1, 2])
    with pytest.raises(ValueError, match="got list"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("tiny", "expected a 'config' entry holding a dict"),
        (None, "expected a 'config' entry holding a dict"),
        ({**TINY.to_dict(), "scales": 5}, "expected scales as a sequence of numbers"),
        ({**TINY.to_dict(), "image_size": "32"}, "image_size"),
        ({**TINY.to_dict(), "colour": "red"}, "unknown"),
    ],
)
def test_checkpoint_with_an_ill_typed_config_is_a_clear_error(tmp_path, config, message):
    path = _rewrite(save_checkpoint(tmp_path / "model.pt", tiny_model()), config=config)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(path)


def test_checkpoint_with_weights_of_another_config_is_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", tiny_model())
    other = SSD(SSDConfig(**{**TINY.to_dict(), "num_classes": 2}))  # other class heads
    _rewrite(path, state_dict=other.state_dict())
    with pytest.raises(ValueError, match=r"do not fit the saved config: expected 'class_heads"):
        load_checkpoint(path)
    fewer = dict(tiny_model().state_dict())
    fewer.pop("box_heads.0.bias")
    _rewrite(path, state_dict=fewer)
    with pytest.raises(ValueError, match=r"missing \['box_heads\.0\.bias'\]"):
        load_checkpoint(path)


def test_load_checkpoint_rejects_a_config_that_is_not_one(tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", tiny_model())
    with pytest.raises(ValueError, match="expected config as an SSDConfig"):
        load_checkpoint(path, TINY.to_dict())


# ---------------------------------------------------------------- lesson_model: train once, reuse


@pytest.fixture
def counted_recipe(monkeypatch):
    """lesson_recipe replaced by a tiny model 'trained' per seed; counts the calls."""
    calls = []

    def tiny_recipe(seed=0, train=True, progress=False):
        calls.append(seed)
        return LessonRun(None, None, tiny_model(seed).eval(), History(train_loss=[1.0]), 0.0)

    monkeypatch.setattr(recipe, "lesson_recipe", tiny_recipe)
    return calls


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.state_dict().values()])


def test_lesson_model_trains_once_then_loads(tmp_path, counted_recipe):
    path = tmp_path / "checkpoints" / "lesson06.pt"
    first = lesson_model(path)
    assert counted_recipe == [0] and path.is_file()
    again = lesson_model(path)
    assert counted_recipe == [0], "the saved model should be loaded, not trained again"
    assert torch.equal(_weights(first), _weights(again)) and not again.training
    saved = torch.load(path, weights_only=True)
    assert saved["recipe"] == lesson_settings(0) and saved["history"]["train_loss"] == [1.0]


def test_lesson_model_retrains_for_another_recipe(tmp_path, counted_recipe):
    path = tmp_path / "lesson06.pt"
    lesson_model(path, seed=0)
    other = lesson_model(path, seed=1)  # another seed: the saved model is not this one
    assert counted_recipe == [0, 1]
    assert torch.equal(_weights(other), _weights(tiny_model(1)))
    assert torch.load(path, weights_only=True)["recipe"]["seed"] == 1


def test_lesson_model_replaces_a_foreign_or_broken_file(tmp_path, counted_recipe):
    path = tmp_path / "lesson06.pt"
    path.write_text("not a checkpoint")
    lesson_model(path)
    save_checkpoint(path, tiny_model())  # a checkpoint without a recipe
    lesson_model(path)
    assert counted_recipe == [0, 0]
    assert torch.load(path, weights_only=True)["recipe"] == lesson_settings(0)


def test_save_lesson_model_marks_only_the_lessons_own_training(tmp_path, counted_recipe):
    path = tmp_path / "checkpoints" / "lesson06.pt"
    model = tiny_model(7).eval()
    recipe.save_lesson_model(path, model, History(train_loss=[1.0]), recipe.lesson_fit_settings(0))
    assert torch.equal(_weights(lesson_model(path)), _weights(model))  # reused, not retrained
    assert counted_recipe == []
    other_settings = {**recipe.lesson_fit_settings(0), "epochs": 1}  # an exercise's training
    recipe.save_lesson_model(path, model, None, other_settings)
    assert torch.load(path, weights_only=True)["recipe"] is None
    lesson_model(path)
    assert counted_recipe == [0]


def test_lesson_recipe_fits_with_the_lesson_settings(monkeypatch):
    """lesson_recipe, lesson_fit_settings and lesson_settings describe one and the same run."""
    calls = {}
    monkeypatch.setattr(recipe, "ShapesDataset", lambda n, seed, precompute: tiny_data(2, seed))

    def fake_fit(model, train_data, val_data, progress, threads, **settings):
        calls.update(settings)
        return History()

    monkeypatch.setattr(recipe, "fit", fake_fit)
    recipe.lesson_recipe(seed=2)
    assert calls == recipe.lesson_fit_settings(2)
    settings = lesson_settings(2)
    assert {name: settings[name] for name in calls} == calls  # the recipe names fit's settings
    assert settings["train_seed"] == recipe.LESSON_TRAIN_SEED + 2
