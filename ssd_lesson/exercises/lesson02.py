"""Lesson 02's exercises."""

from __future__ import annotations

import torch

from ssd_lesson.boxes import box_iou
from ssd_lesson.exercises import Check
from ssd_lesson.matching import BACKGROUND, match_anchors

# A toy matching problem: five anchors and two objects, numbers you can check by eye.
TOY_ANCHORS = torch.tensor(
    [
        [0.0, 0.0, 0.5, 0.5],
        [0.5, 0.0, 1.0, 0.5],
        [0.0, 0.5, 0.5, 1.0],
        [0.5, 0.5, 1.0, 1.0],
        [0.25, 0.25, 0.75, 0.75],
    ]
)
TOY_OBJECTS = torch.tensor([[0.05, 0.05, 0.45, 0.5], [0.55, 0.6, 0.7, 0.8]])


def check_forced_anchor(answer) -> Check:
    """Which anchor of TOY_ANCHORS is object 1 of TOY_OBJECTS forced onto (rule 1)?"""
    expected = int(box_iou(TOY_OBJECTS, TOY_ANCHORS)[1].argmax())
    return Check(
        answer == expected,
        "object 1's forced anchor",
        "look at row 1 of the IoU table and find its largest entry.",
    )


def check_positives_at(answer, iou_threshold: float) -> Check:
    """How many of TOY_ANCHORS are positives (matched to some object) at ``iou_threshold``?"""
    expected = int((match_anchors(TOY_ANCHORS, TOY_OBJECTS, iou_threshold) != BACKGROUND).sum())
    return Check(
        answer == expected,
        f"number of positive anchors at threshold {iou_threshold}",
        "count anchors whose best IoU reaches the threshold, then add forced anchors not counted.",
    )


def check_collision_winner(answer) -> Check:
    """Two identical objects want the same anchor. Which one (0 or 1) gets it in ssd-lesson?"""
    twins = torch.cat([TOY_OBJECTS[:1], TOY_OBJECTS[:1]])
    contested_anchor = int(box_iou(twins[:1], TOY_ANCHORS).argmax())
    expected = int(match_anchors(TOY_ANCHORS, twins)[contested_anchor])
    return Check(
        answer == expected,
        "the winner of a collision",
        "read the 'collisions' convention in the docstring of ssd_lesson.matching.",
    )
