"""Self-checks for the lessons' exercises, one module per lesson: ``lesson02.py`` holds lesson
02's. Each check compares an answer with the package's own result and says "right" or gives a
hint, never the answer. The answers are what these modules compute: a teacher finds them here.
"""

from __future__ import annotations

import math

# How close a numeric answer must be to count as right.
TOLERANCE = 1e-3


class Check:
    """The verdict on one answer: truthy if right; shows a hint if not."""

    def __init__(self, right: bool, what: str, hint: str):
        self.right = bool(right)
        self.message = f"✓ Right: {what}." if right else f"✗ Not yet: {what}. Hint: {hint}"

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return self.message


def exact(answer, expected: int) -> bool:
    try:
        return float(answer) == expected
    except (TypeError, ValueError):
        return False


def close(answer, expected: float) -> bool:
    try:
        return math.isclose(float(answer), expected, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    except (TypeError, ValueError):
        return False


def multiple_choice(answer, right: str, what: str, hint: str, hints: dict | None = None) -> Check:
    """A one-letter answer such as "b": a hint for each wrong letter (``hints``) or ``hint``."""
    letter = str(answer).strip().lower() if answer is not None else ""
    return Check(letter == right, what, (hints or {}).get(letter, hint))
