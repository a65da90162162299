"""Lesson 00's exercises: the answers are what these checks compute."""

from __future__ import annotations

from ssd_lesson.anchors import (
    SSD300_ASPECT_RATIOS,
    SSD300_FEATURE_MAP_SIZES,
    anchors_per_location,
    make_anchors,
)
from ssd_lesson.exercises import Check, exact, multiple_choice

# Detectors to try a learner's count on: (name, feature-map sizes, extra ratios per map, C).
OUTPUT_COUNT_CASES = (
    ("one 2 x 2 map, 1 class", (2,), ((),), 1),
    ("lesson 00's small SSD, 2 classes", (16, 8, 4, 3, 2, 1), ((2,),) * 6, 2),
    ("SSD300 on PASCAL VOC, 20 classes", SSD300_FEATURE_MAP_SIZES, SSD300_ASPECT_RATIOS, 20),
    ("SSD300 on COCO, 80 classes", SSD300_FEATURE_MAP_SIZES, SSD300_ASPECT_RATIOS, 80),
)


def expected_output_count(map_sizes, aspect_ratios, num_classes: int) -> int:
    """The package's answer: one row per anchor of ``make_anchors``, 4 + C + 1 numbers each."""
    scales = [0.2 + 0.7 * k / len(map_sizes) for k in range(len(map_sizes) + 1)]  # any will do
    return len(make_anchors(map_sizes, scales, aspect_ratios)) * (4 + num_classes + 1)


def check_count_outputs(count_outputs) -> Check:
    """Exercise: ``count_outputs(map_sizes, anchors_per_cell, num_classes)`` -> numbers per image.

    The learner's function is called on several detectors and compared with the package's anchors.
    """
    what = "your count_outputs agrees with the package's anchors on every detector tried"
    if not callable(count_outputs):
        return Check(False, what, "pass your function itself: check_count_outputs(count_outputs).")
    for name, sizes, ratios, num_classes in OUTPUT_COUNT_CASES:
        per_cell = anchors_per_location(ratios)
        try:
            got = count_outputs(list(sizes), per_cell, num_classes)
        except Exception as error:  # a learner's bug: say which case broke it
            return Check(False, what, f"on {name} your function raised {error!r}.")
        if not exact(got, expected_output_count(sizes, ratios, num_classes)):
            return Check(
                False,
                what,
                f"on {name} (maps {list(sizes)}, anchors per cell {per_cell}) you returned {got}. "
                "Each map has (side x side) cells, each cell that many anchors; each anchor has 4 "
                "offsets and one score per class, background included.",
            )
    return Check(True, what, "")


WHY_NO_GRADIENT = {
    "a": "Matching is too slow to differentiate, so PyTorch skips it.",
    "b": "Matching reads only the anchors and the ground truth, never the network's outputs, so "
    "no change of the weights can change what it decides.",
    "c": "The ground-truth boxes move during training, so matching has to be redone each step.",
}


def check_why_no_gradient(choice) -> Check:
    """Which sentence of ``WHY_NO_GRADIENT`` says why no gradient flows through matching?"""
    hint = (
        "look at what match_targets takes as input: is the network, or anything it outputs, "
        "among its inputs? And do the ground-truth boxes ever change?"
    )
    hints = dict.fromkeys(WHY_NO_GRADIENT, hint)
    return multiple_choice(
        choice, "b", "why matching needs no gradient", 'answer with "a", "b" or "c".', hints
    )
