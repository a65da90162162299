"""Lesson 00's exercises."""

from __future__ import annotations

from ssd_lesson.exercises import Check, exact


def check_outputs_per_anchor(answer, num_classes: int = 20) -> Check:
    """How many numbers does SSD output for one anchor when there are ``num_classes`` classes?"""
    return Check(
        exact(answer, 4 + num_classes + 1),
        f"numbers per anchor with {num_classes} object classes",
        "count the box numbers and the class scores; do not forget the background class.",
    )


def check_total_outputs(answer, num_anchors: int = 8732, num_classes: int = 20) -> Check:
    """How many numbers does SSD output for a whole image?"""
    return Check(
        exact(answer, num_anchors * (4 + num_classes + 1)),
        f"numbers for {num_anchors} anchors and {num_classes} classes",
        "multiply the anchor count by the numbers per anchor.",
    )


LEARNED_OR_FIXED = {
    "anchor positions": "fixed",
    "anchor sizes": "fixed",
    "offsets": "learned",
    "class scores": "learned",
    "which anchor matches which object": "fixed",
}


def check_learned_or_fixed(answer: dict) -> Check:
    """Label each item of ``LEARNED_OR_FIXED`` as "learned" (predicted) or "fixed" (given)."""
    if not isinstance(answer, dict) or set(answer) != set(LEARNED_OR_FIXED):
        return Check(
            False, "learned or fixed", f"answer with a dict keyed by {list(LEARNED_OR_FIXED)}."
        )
    wrong = [k for k, v in answer.items() if str(v).lower() != LEARNED_OR_FIXED[k]]
    return Check(
        not wrong,
        "which parts are learned and which are fixed",
        f"look again at {wrong}: does the network's output change it, or is it decided before?",
    )
