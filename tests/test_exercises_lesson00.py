"""Lesson 00's self-checks accept right answers, reject wrong ones, never reveal the answer."""

from ssd_lesson.anchors import ssd300_anchors
from ssd_lesson.exercises import lesson00 as ex
from ssd_lesson.model import small_config


def right_count(map_sizes, anchors_per_cell, num_classes):
    return sum(f * f * n for f, n in zip(map_sizes, anchors_per_cell, strict=True)) * (
        4 + num_classes + 1
    )


def test_expected_counts_are_the_package_anchors():
    # 8732 anchors of 25 numbers on VOC; the lesson's small SSD has 1400 anchors of 7.
    assert ex.expected_output_count(*ex.OUTPUT_COUNT_CASES[2][1:]) == len(ssd300_anchors()) * 25
    assert ex.expected_output_count(*ex.OUTPUT_COUNT_CASES[2][1:]) == 8732 * 25
    small = small_config(num_classes=2)
    case = ex.OUTPUT_COUNT_CASES[1]
    assert case[1:3] == (small.feature_map_sizes, small.aspect_ratios)
    assert ex.expected_output_count(*case[1:]) == len(small.anchors()) * 7 == 1400 * 7


def test_count_outputs_right_and_wrong():
    assert ex.check_count_outputs(right_count)

    def forgets_background(map_sizes, per_cell, num_classes):
        return sum(f * f * n for f, n in zip(map_sizes, per_cell, strict=True)) * (4 + num_classes)

    verdict = ex.check_count_outputs(forgets_background)
    assert not verdict and "Hint:" in repr(verdict)
    assert str(8732 * 25) not in repr(verdict) and str(1400 * 7) not in repr(verdict)
    assert not ex.check_count_outputs(None)
    assert not ex.check_count_outputs(lambda *args: 1 / 0)  # a raising function is a verdict
    assert not ex.check_count_outputs(lambda m, p, c: sum(p) * (5 + c))  # cells not counted


def test_why_no_gradient():
    assert ex.check_why_no_gradient("b") and ex.check_why_no_gradient(" B ")
    for wrong in ("a", "c", None, "d"):
        verdict = ex.check_why_no_gradient(wrong)
        assert not verdict and "Hint:" in repr(verdict)


def test_lesson00_drawings_series_key_and_pipelines():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pytest

    from ssd_lesson import plotting

    entries = plotting.series_key_entries()
    assert [e.label.split()[0].rstrip(":") for e in entries] == [
        "ground",
        "anchor",
        "positive",
        "mined",
        "prediction",
    ]
    assert [e.color for e in entries] == [
        plotting.GROUND_TRUTH_COLOR,
        plotting.ANCHOR_COLOR,
        plotting.THRESHOLD_COLOR,
        plotting.MINED_COLOR,
        plotting.PREDICTION_COLOR,
    ]
    fig, (a, b, c) = plt.subplots(3, 1)
    legend = plotting.series_legend(a, ["ground", "positive"]).get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [entries[0].label, entries[2].label]
    with pytest.raises(ValueError, match="expected entries among"):
        plotting.series_legend(a, ["positives"])
    plotting.draw_series_key(b)
    assert len(b.texts) == 5
    top, bottom = plotting.draw_pipelines(b, c, num_anchors=1400)
    assert any("1400 rows" in t.get_text() for t in top.texts)
    assert "second pass per region" in bottom.get_title(loc="left")
    plt.close(fig)
