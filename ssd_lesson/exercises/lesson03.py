"""Lesson 03's exercises."""

from __future__ import annotations

import torch

from ssd_lesson.encoding import encode
from ssd_lesson.exercises import Check, close

OFFSET_NAMES = ("t_x", "t_y", "t_w", "t_h")


def _close_all(answer, expected: list[float]) -> bool:
    try:
        values = [float(v) for v in torch.as_tensor(answer, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        return False
    return len(values) == len(expected) and all(
        close(v, e) for v, e in zip(values, expected, strict=True)
    )


# ---------------------------------------------------------------- exercise 1: encode by hand
# Pairs (anchor, object), xyxy fractions, on which a learner's ``my_encode`` is tried: the
# lesson's toy pair first, then pairs that move and scale in every direction.
ENCODE_EXERCISE_PAIRS = (
    ([0.2, 0.2, 0.4, 0.4], [0.2, 0.25, 0.6, 0.35]),
    ([0.4, 0.3, 0.6, 0.7], [0.45, 0.1, 0.55, 0.5]),
    ([0.1, 0.5, 0.5, 0.7], [0.05, 0.45, 0.75, 0.95]),
)


def _offsets(answer) -> list[float] | None:
    """Four numbers from a list, tuple or tensor; None for anything else."""
    try:
        values = [float(v) for v in torch.as_tensor(answer, dtype=torch.float64).flatten()]
    except (TypeError, ValueError, RuntimeError):
        return None
    return values if len(values) == 4 else None


def check_my_encode(my_encode) -> Check:
    """``my_encode(anchor, obj)`` (two xyxy lists) must return ``encode``'s four targets, with
    the default variances (0.1, 0.2), on every pair of ``ENCODE_EXERCISE_PAIRS``."""
    what = "my_encode gives encode's targets"
    if not callable(my_encode):
        return Check(False, what, "pass the function itself: check_my_encode(my_encode).")
    for anchor, obj in ENCODE_EXERCISE_PAIRS:
        anchor_t, obj_t = torch.tensor([anchor]), torch.tensor([obj])
        try:
            answer = _offsets(my_encode(list(anchor), list(obj)))
        except Exception as error:  # the learner's code: any error is a hint, not a crash
            return Check(False, what, f"on anchor {anchor}, object {obj} it raised {error!r}.")
        if answer is None:
            return Check(False, what, "return four numbers: [t_x, t_y, t_w, t_h].")
        expected = encode(anchor_t, obj_t)[0].tolist()
        if all(close(v, e) for v, e in zip(answer, expected, strict=True)):
            continue
        plain = encode(anchor_t, obj_t, variances=(1, 1))[0].tolist()
        if all(close(v, e) for v, e in zip(answer, plain, strict=True)):
            hint = "these are the plain offsets: now divide by the variances (0.1, 0.2)."
        elif all(close(v, e) for v, e in zip(answer, encode(obj_t, anchor_t)[0], strict=True)):
            hint = "anchor and object are swapped: measure the object relative to the anchor."
        else:
            wrong = [
                n for n, v, e in zip(OFFSET_NAMES, answer, expected, strict=True) if not close(v, e)
            ]
            hint = (
                f"{', '.join(wrong)} wrong for anchor {anchor}, object {obj}. Turn both boxes "
                "into centre and size first; t_w uses the widths, t_x the anchor's width."
            )
        return Check(False, what, hint)
    return Check(True, what, "")


# ---------------------------------------------------------------- exercise 2: why a log
WHY_LOG_STATEMENTS = {
    "a": 'With the log, "twice as wide" and "half as wide" get targets of the same size and '
    "opposite sign.",
    "b": "With the log, every number the network can output decodes to a width above zero.",
    "c": "The log makes the centre targets t_x and t_y smaller.",
    "d": "Without the log, no target could be computed for an object narrower than its anchor.",
}
_TRUE_REASONS = frozenset("ab")


def check_why_log(answer) -> Check:
    """Which of ``WHY_LOG_STATEMENTS`` are true reasons for the log in t_w and t_h?"""
    if isinstance(answer, str):
        answer = [c for c in answer.lower() if c.isalpha()]
    try:
        chosen = {str(letter).strip().lower() for letter in answer}
    except TypeError:
        chosen = set()
    what = "the reasons for the log"
    if not chosen:
        return Check(False, what, 'give a set of letters, e.g. {"a"}.')
    unknown = chosen - set(WHY_LOG_STATEMENTS)
    if unknown:
        return Check(
            False, what, f"choose among {sorted(WHY_LOG_STATEMENTS)}, not {sorted(unknown)}."
        )
    if chosen - _TRUE_REASONS:
        hint = "one of your letters is not true: hold each against the equations and the table."
    elif _TRUE_REASONS - chosen:
        hint = "a true reason is missing: look at the widths decoded from t_w = -1.5."
    else:
        hint = ""
    return Check(chosen == _TRUE_REASONS, what, hint)


# ---------------------------------------------------------------- exercise 3: the explorer
# Pairs of the encoding explorer, named by the start of their label in its "pair" list.
EXPLORER_EXERCISE_PAIRS = ("face ← anchor 25", "person ← anchor 82", "tie ← anchor 58")


def _centre_or_size(label_start: str) -> str:
    """Which half of the target, alone, gives the larger IoU: "centre" or "size"."""
    from ssd_lesson.widgets.encoding import encoding_pairs, encoding_view

    pair = next(p for p in encoding_pairs() if p.label.startswith(label_start + " ("))
    t_x, t_y, t_w, t_h = encoding_view(pair, 0, 0, 0, 0).target_offsets.tolist()
    centre_only = encoding_view(pair, t_x, t_y, 0.0, 0.0).iou
    size_only = encoding_view(pair, 0.0, 0.0, t_w, t_h).iou
    return "centre" if centre_only > size_only else "size"


def check_centre_or_size(answer) -> Check:
    """For each pair of ``EXPLORER_EXERCISE_PAIRS``: "centre" if the centre offsets alone bring
    the anchor closer to its object (higher IoU) than the size offsets alone, else "size"."""
    what = "centre or size, pair by pair"
    if not isinstance(answer, dict) or set(answer) != set(EXPLORER_EXERCISE_PAIRS):
        return Check(False, what, f"answer with a dict keyed by {list(EXPLORER_EXERCISE_PAIRS)}.")
    wrong = [
        pair
        for pair in EXPLORER_EXERCISE_PAIRS
        if str(answer[pair]).strip().lower() != _centre_or_size(pair)
    ]
    return Check(
        not wrong,
        what,
        f"look again at {wrong}: set only t_x, t_y to the target, read the IoU; then only t_w, "
        "t_h.",
    )
