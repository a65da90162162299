"""Lesson 08's self-checks accept right answers and reject wrong ones with a hint."""

import statistics

from ssd_lesson.ablation_table import verdict
from ssd_lesson.exercises import lesson08 as ex


def right_verdict(package_values, values):
    a, b = statistics.mean(package_values), statistics.mean(values)
    spread = statistics.stdev(package_values) + statistics.stdev(values)
    if abs(b - a) <= spread:
        return "no measurable difference"
    return "higher" if b > a else "lower"


def test_my_verdict_accepts_the_rule():
    assert ex.check_my_verdict(right_verdict)
    assert ex.check_my_verdict(verdict)


def test_my_verdict_rejects_wrong_rules_with_a_hint():
    def means_only(package_values, values):
        return "higher" if statistics.mean(values) > statistics.mean(package_values) else "lower"

    def population_std(package_values, values):
        a, b = statistics.mean(package_values), statistics.mean(values)
        spread = statistics.pstdev(package_values) + statistics.pstdev(values)
        if abs(b - a) <= spread:
            return "no measurable difference"
        return "higher" if b > a else "lower"

    for wrong in (means_only, population_std, lambda a, b: 1 / 0, "higher"):
        check = ex.check_my_verdict(wrong)
        assert not check and "Hint" in repr(check)
    assert "ZeroDivisionError" in repr(ex.check_my_verdict(lambda a, b: 1 / 0))


def test_why_coarse_map():
    assert ex.check_why_coarse_map("b") and ex.check_why_coarse_map(" B ")
    for wrong in ("a", "c", "d", None, ""):
        check = ex.check_why_coarse_map(wrong)
        assert not check and "Hint" in repr(check)
    assert "seven scales" in repr(ex.check_why_coarse_map("a"))


def test_focal_factor():
    assert ex.check_focal_factor(10000) and ex.check_focal_factor(1e4)
    for wrong in (100, 0.0001, "many", None):
        check = ex.check_focal_factor(wrong)
        assert not check and "(1 - p) ** gamma" in repr(check)
