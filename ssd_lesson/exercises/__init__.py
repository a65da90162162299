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


# The lessons import from the per-lesson modules; these names stay importable from here too.
from ssd_lesson.exercises.lesson00 import (  # noqa: E402, F401
    LEARNED_OR_FIXED,
    check_learned_or_fixed,
    check_outputs_per_anchor,
    check_total_outputs,
)
from ssd_lesson.exercises.lesson01 import (  # noqa: E402, F401
    IOU_EXERCISE_BOXES,
    check_anchor_size,
    check_iou,
    check_ssd512_anchor_count,
)
from ssd_lesson.exercises.lesson02 import (  # noqa: E402, F401
    TOY_ANCHORS,
    TOY_OBJECTS,
    check_collision_winner,
    check_forced_anchor,
    check_positives_at,
)
from ssd_lesson.exercises.lesson03 import (  # noqa: E402, F401
    check_decoded_box,
    check_plain_offsets,
    check_scaled_width_target,
)
from ssd_lesson.exercises.lesson04 import (  # noqa: E402, F401
    check_mined_count,
    check_smooth_l1,
    check_uniform_cross_entropy,
)
from ssd_lesson.exercises.lesson06 import (  # noqa: E402, F401
    EXERCISE_MAPS,
    EXERCISE_RATIOS,
    check_exercise_anchor_count,
    check_first_class_loss,
    check_steps_per_epoch,
)
from ssd_lesson.exercises.lesson07 import (  # noqa: E402, F401
    EXERCISE_NMS_BOXES,
    EXERCISE_NMS_SCORES,
    check_nms_survivors,
    check_ranked_ap,
    check_threshold_raises_map,
)
