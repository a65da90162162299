"""Checkpoints: a trained model kept in a file together with the configuration it needs.

A checkpoint is a plain dict saved with ``torch.save`` and read back with ``weights_only=True``
(no code is unpickled):

* ``"format"``: ``CHECKPOINT_FORMAT``, so that another file is recognised as such;
* ``"config"``: the model's ``SSDConfig`` as a plain dict (``SSDConfig.to_dict``);
* ``"state_dict"``: the weights, on the CPU;
* ``"history"``: optionally, how training went (``History.to_dict()`` or a plain dict);
* ``"recipe"``: optionally, a plain dict saying how the model was trained.

``load_checkpoint`` rebuilds the model from the config and checks that the weights fit it; every
problem with the file is a ValueError naming the file (FileNotFoundError if there is none).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssd_lesson.model import SSD, SSDConfig

CHECKPOINT_FORMAT = "ssd-lesson checkpoint 1"


def save_checkpoint(
    path, model: SSD, config: SSDConfig | None = None, history=None, recipe: dict | None = None
) -> Path:
    """Save the model's weights with its config (a plain dict) and, optionally, its history.

    ``history`` is a ``History`` (anything with ``to_dict()``) or a plain dict. ``recipe`` is an
    optional plain dict saying how the model was trained (``lesson_model`` uses it to tell
    whether a saved model is the one it would train now).
    """
    if not isinstance(model, SSD):
        raise ValueError(f"expected an SSD model, got {type(model).__name__}")
    config = model.config if config is None else config
    if not isinstance(config, SSDConfig):
        raise ValueError(f"expected an SSDConfig, got {type(config).__name__}")
    if config != model.config:
        raise ValueError("expected the model's own config, got a different one")
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history.to_dict() if hasattr(history, "to_dict") else history,
        "recipe": recipe,
    }
    path = Path(path)
    torch.save(checkpoint, path)
    return path


def read_checkpoint(path) -> dict:
    """The checkpoint dict saved in ``path``, its format tag checked; nothing rebuilt yet."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # truncated zip, random bytes, a pickle of other objects...
        raise ValueError(
            f"{path} is not a readable ssd-lesson checkpoint (corrupt or truncated?): "
            f"{type(err).__name__}"
        ) from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an ssd-lesson checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    return checkpoint


def load_checkpoint(path, config: SSDConfig | None = None) -> tuple[SSD, SSDConfig]:
    """Rebuild a saved model -> (model, config); the model is in eval mode on the CPU.

    With ``config``, the checkpoint must have been saved with that same config, otherwise a
    ValueError lists the fields that differ. A file that is not a readable ssd-lesson checkpoint
    (corrupt, truncated, something else, or weights that do not fit its config) gives a
    ValueError naming the file.
    """
    path = Path(path)
    if config is not None and not isinstance(config, SSDConfig):
        raise ValueError(f"expected config as an SSDConfig or None, got {type(config).__name__}")
    checkpoint = read_checkpoint(path)
    saved = _saved_config(checkpoint, path)
    if config is not None:
        given = config.to_dict()
        differ = [
            f"{name}: checkpoint {value!r}, given {given[name]!r}"
            for name, value in saved.to_dict().items()
            if value != given[name]
        ]
        if differ:
            raise ValueError(f"{path} was saved with a different config; " + "; ".join(differ))
    model = SSD(saved)
    model.load_state_dict(_saved_weights(checkpoint, model, path))
    return model.eval(), saved


def _saved_config(checkpoint: dict, path: Path) -> SSDConfig:
    values = checkpoint.get("config")
    if not isinstance(values, dict):
        raise ValueError(
            f"{path}: expected a 'config' entry holding a dict of SSDConfig fields, got "
            f"{type(values).__name__}"
        )
    try:
        return SSDConfig.from_dict(values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: the saved config is not a valid SSDConfig: {err}") from None


def _saved_weights(checkpoint: dict, model: SSD, path: Path) -> dict:
    """The saved state dict, checked against the model its config builds: names and shapes."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise ValueError(
            f"{path}: expected a 'state_dict' entry holding the weights, got {type(state).__name__}"
        )
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path}: the saved weights do not fit the saved config: expected "
            f"{len(expected)} tensors, got {len(state)} (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]})"
        )
    for name, tensor in expected.items():
        got = state[name]
        if not isinstance(got, torch.Tensor) or got.shape != tensor.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise ValueError(
                f"{path}: the saved weights do not fit the saved config: expected {name!r} of "
                f"shape {tuple(tensor.shape)}, got {shape}"
            )
    return state
