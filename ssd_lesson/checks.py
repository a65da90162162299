"""Input checks: engineering, not SSD.

Every public function of ssd-lesson starts with one line that calls a function of this module.
Each check turns friendly input (lists, NumPy numbers, integer tensors) into what the algorithm
needs, or raises ``ValueError`` saying what was expected and what arrived, so that a learner's
mistake never becomes a NaN, a silent wrong answer or a crash from deep inside torch.

The algorithms themselves live in the concept modules (boxes, anchors, matching, encoding, loss,
inference, metrics); nothing here is part of SSD. This module imports nothing from the package.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch import Tensor

# Anchors near the image border stick out of the image by up to half their size, so fractions a
# little outside [0, 1] are legal. Pixel coordinates are tens or hundreds: anything beyond this
# margin is almost certainly pixels passed where fractions were expected.
FRACTION_MARGIN = 0.5
# Ground-truth boxes lie inside the image: allow only annotations rounded at the border.
GROUND_TRUTH_MARGIN = 0.01

# One message for every place that sees NaN or inf coming out of a network.
DIVERGED = "training has probably diverged: try a lower learning rate"


# ---------------------------------------------------------------------------------------------
# Numbers


def number(value, name: str, low: float = -math.inf, high: float = math.inf, *, low_open=False,
           high_open=False) -> float:
    """A real number (int, float, NumPy scalar, 0-d tensor) in the interval, as a float."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")
    value = float(value)
    inside = (low < value if low_open else low <= value) and (
        value < high if high_open else value <= high
    )
    if math.isnan(value) or not inside:
        raise ValueError(f"expected {name} as a number in {interval}, got {value!r}")
    return value


def integer(value, name: str, minimum: int = 0, *, optional: bool = False) -> int | None:
    """An integer (int, NumPy integer) >= minimum, or None when ``optional``."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise ValueError(f"expected {name} as {allowed}, got {value!r}")
    return int(value)


def flag(value, name: str) -> bool:
    """True or False (a NumPy bool too); 0, 1 and strings are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"expected {name} as True or False, got {value!r}")
    return bool(value)


def fraction(value, name: str) -> float:
    """An IoU threshold and the like: a number in (0, 1]."""
    return number(value, name, 0.0, 1.0, low_open=True)


# ---------------------------------------------------------------------------------------------
# Tensors


def tensor(value, name: str, shape: str) -> Tensor:
    """``value`` as a tensor (lists and arrays are converted), or a ValueError naming ``shape``."""
    if isinstance(value, Tensor):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"expected {name} as a tensor of shape {shape}, got {value!r}") from err


def floating(value, name: str, shape: str) -> Tensor:
    """A floating-point tensor: integers are converted to float32, complex numbers refused."""
    value = tensor(value, name, shape)
    if value.dtype.is_complex or value.dtype == torch.bool:
        raise ValueError(f"expected {name} as real numbers, got dtype {value.dtype}")
    return value if value.is_floating_point() else value.float()


def finite(value: Tensor, name: str, hint: str = DIVERGED) -> Tensor:
    """Raise if ``value`` holds NaN or inf; ``hint`` says what probably went wrong."""
    if not torch.isfinite(value).all():
        raise ValueError(f"expected finite {name}, got NaN or inf; {hint}")
    return value


def shape(value: Tensor, name: str, expected: tuple, why: str = "") -> Tensor:
    """Raise unless ``value.shape == expected`` (None in ``expected`` matches any size)."""
    got = tuple(value.shape)
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"expected {name} of shape {want}{why}, got {got}")
    return value


def integer_labels(value, name: str, count: int | None = None, low: int = 1,
                   high: int | None = None) -> Tensor:
    """Class labels (int64, 1-D): one per box when ``count`` is given, each in low..high."""
    value = tensor(value, name, "(N,)")
    if value.numel() == 0:
        value = value.reshape(0).long()  # no objects, however it was written
    if value.is_floating_point() or value.dtype.is_complex or value.dtype == torch.bool:
        raise ValueError(f"expected integer {name}, got dtype {value.dtype}")
    if value.ndim != 1 or (count is not None and value.shape[0] != count):
        want = f"({count},), one per box" if count is not None else "(N,)"
        raise ValueError(f"expected {name} of shape {want}, got {tuple(value.shape)}")
    if value.numel() and (value.min() < low or (high is not None and value.max() > high)):
        classes = f"{low}..{high if high is not None else 'C'}"
        hint = "; 0 is background: if your classes start at 0, add 1" if low == 1 else ""
        raise ValueError(f"expected {name} in {classes}, got {value.tolist()}{hint}")
    return value.long()


# ---------------------------------------------------------------------------------------------
# Boxes


def boxes(value, name: str = "boxes", *, fractions: bool = True, positive_area: bool = False,
          margin: float = FRACTION_MARGIN) -> Tensor:
    """Boxes in xyxy format as a float tensor (N, 4), checked.

    fractions: coordinates are fractions of the image, at most ``margin`` outside [0, 1]
    (``FRACTION_MARGIN`` for anchors, which may stick out; ``GROUND_TRUTH_MARGIN`` for objects).
    positive_area: every box has a width and a height above zero.
    """
    value = floating(value, name, "(N, 4)")
    if value.numel() == 0:
        value = value.reshape(0, 4)  # "no boxes", however it was written: [], (0,), (0, 4)
    shape(value, name, (None, 4), " in xyxy format")
    if value.numel() == 0:
        return value
    # One cheap reduction decides whether anything is wrong; only then find the row to blame.
    lowest, highest, min_side = torch.stack(
        (value.amin(), value.amax(), (value[:, 2:] - value[:, :2]).amin())
    ).tolist()
    fine = all(math.isfinite(v) for v in (lowest, highest, min_side))
    fine = fine and (min_side > 0 if positive_area else min_side >= 0)
    if fractions:
        fine = fine and lowest >= -margin and highest <= 1 + margin
    if not fine:
        _blame_row(value, name, fractions, positive_area, margin)
    return value


def ground_truth(value, name: str = "gt_boxes") -> Tensor:
    """Objects: xyxy fractions inside the image (up to rounding), positive width and height."""
    return boxes(value, name, positive_area=True, margin=GROUND_TRUTH_MARGIN)


def anchors(value, name: str = "anchors") -> Tensor:
    """Anchors: at least one, xyxy fractions (they may stick out of the image), positive area."""
    value = boxes(value, name, positive_area=True)
    if value.shape[0] == 0:
        raise ValueError(f"expected at least one anchor, got {name} of shape (0, 4)")
    return value


def _blame_row(value: Tensor, name: str, fractions: bool, positive_area: bool, margin) -> None:
    bad = ~torch.isfinite(value).all(dim=1)
    if bad.any():
        row = int(torch.nonzero(bad)[0])
        raise ValueError(f"expected finite {name}, got NaN or inf in row {row} = "
                         f"{value[row].tolist()}")
    sides = value[:, 2:] - value[:, :2]
    for wrong, problem in (
        ((sides < 0).any(dim=1), "in xyxy format with x2 >= x1 and y2 >= y1"),
        ((sides <= 0).any(dim=1) & positive_area, "with positive width and height"),
    ):
        if wrong.any():
            row = int(torch.nonzero(wrong)[0])
            hint = "is it in cxcywh format, or are two corners swapped?"
            raise ValueError(f"expected {name} {problem}, got row {row} = {value[row].tolist()}; "
                             f"{hint if 'xyxy' in problem else 'it has zero area'}")
    if fractions:
        too_far = ((value < -margin) | (value > 1 + margin)).any(dim=1)
        row = int(torch.nonzero(too_far)[0])
        if value[row].abs().max() > 2:
            hint = "these look like pixels: divide by the image width and height"
        else:
            hint = f"coordinates may lie at most {margin} outside [0, 1]: clip them to the image"
        raise ValueError(f"expected {name} as fractions of the image (0..1), got row {row} = "
                         f"{value[row].tolist()}; {hint}")
