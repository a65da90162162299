"""Lesson 08's exercises: each check compares an answer with the package's own result and gives
a hint, never the answer. A teacher finds the answers here (or by running the checks' code)."""

from __future__ import annotations

from ssd_lesson.exercises import Check, close, multiple_choice

# ---------------------------------------------------------------------------------------------
# Exercise 1: the verdict rule of ssd_lesson.ablation_table, written by the learner.

VERDICT_CASES = (
    ([0.80, 0.81, 0.82], [0.70, 0.71, 0.72]),  # clearly lower
    ([0.80, 0.81, 0.82], [0.85, 0.86, 0.87]),  # clearly higher
    ([0.80, 0.81, 0.82], [0.80, 0.83, 0.86]),  # means differ by 0.02, spreads 0.01 + 0.03
    ([0.50, 0.60, 0.70], [0.69, 0.70, 0.71]),  # higher mean, but a wide spread
    ([0.30, 0.30, 0.30], [0.30, 0.30, 0.30]),  # equal, no spread at all
    ([0.90, 0.91], [0.70, 0.72, 0.74, 0.73]),  # two seeds against four
)


def check_my_verdict(my_verdict) -> Check:
    """``my_verdict(package_values, values)`` -> "higher", "lower" or "no measurable difference",
    as ``ablation_table.verdict`` gives it with at least two seeds each."""
    from ssd_lesson.ablation_table import verdict

    what = "your verdict rule"
    if not callable(my_verdict):
        return Check(False, what, "define my_verdict(package_values, values) and pass it.")
    for package, values in VERDICT_CASES:
        expected = verdict(package, values)
        try:
            given = my_verdict(list(package), list(values))
        except Exception as error:  # the learner's code: any error becomes a hint
            return Check(False, what, f"it raised {type(error).__name__}: {error}")
        if given != expected:
            return Check(
                False,
                what,
                f"for the seeds {package} against {values} it says {given!r}. Compare the gap "
                "between the means with the two standard deviations added together (n - 1 in "
                "the standard deviation, as statistics.stdev).",
            )
    return Check(True, what, "")


# ---------------------------------------------------------------------------------------------
# Exercise 2: why one coarse map loses small objects.

WHY_COARSE_MAP = {
    "a": "The 4 x 4 map has no small anchors.",
    "b": "Its anchors' centres are 16 pixels apart, so a small object seldom overlaps a small "
    "anchor well, and each cell's features describe a 16-pixel square at once.",
    "c": "Hard negative mining removes the small objects' anchors.",
    "d": "NMS removes small boxes.",
}


def check_why_coarse_map(answer) -> Check:
    """Which of ``WHY_COARSE_MAP`` explains the middle map's low recall of small objects."""
    return multiple_choice(
        answer,
        "b",
        "why one coarse map finds few small objects",
        "look at where the anchors sit and what one cell of a 4 x 4 map covers.",
        {
            "a": "the one-map models keep all seven scales: count the anchors of build_model.",
            "c": "mining picks negatives (background anchors), never the objects' positives.",
            "d": "NMS removes boxes that overlap a better box of the same class, of any size.",
        },
    )


# ---------------------------------------------------------------------------------------------
# Exercise 3: the focal loss of an easy background anchor.

EASY_PROBABILITY = 0.99
GAMMA = 2.0


def check_focal_factor(answer) -> Check:
    """How many times smaller the focal loss (gamma 2, no alpha) of an anchor with p = 0.99 is
    than its cross-entropy."""
    return Check(
        close(answer, 1 / (1 - EASY_PROBABILITY) ** GAMMA),
        "how much the focal loss shrinks an easy anchor's cross-entropy",
        "the focal loss is the cross-entropy times (1 - p) ** gamma: divide the two.",
    )
