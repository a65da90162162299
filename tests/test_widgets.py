"""Drive every explorer as a learner would: change controls, check the data and the picture."""

import base64

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from ssd_lesson.matching import BACKGROUND  # noqa: E402
from ssd_lesson.plotting import sample_photo  # noqa: E402
from ssd_lesson.widgets import (  # noqa: E402
    anchor_explorer,
    anchor_layout,
    explorer_anchors,
    matching_explorer,
    matching_explorer_redraw_ms,
    matching_view,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_anchor_layout_counts_and_centre_cell():
    layout = anchor_layout(3, 0.3, 0.5, "2, 1/2, 3, 1/3")
    assert layout.boxes_per_cell == 6 and len(layout.anchors) == 3 * 3 * 6
    # The centre cell of a 3x3 map is at (0.5, 0.5); its first box is the s_k square.
    torch.testing.assert_close(layout.cell_anchors[0], torch.tensor([0.5, 0.5, 0.3, 0.3]))
    assert torch.all(layout.cell_anchors[:, :2] == 0.5)


def test_anchor_layout_rejects_unknown_ratio_choice():
    with pytest.raises(ValueError, match="aspect_ratios"):
        anchor_layout(3, 0.3, 0.5, "5 and 1/5")


def test_anchor_explorer_follows_its_controls():
    explorer = anchor_explorer(sample_photo())
    first_png, first_text = explorer.png, explorer.text
    assert explorer.text == "5×5 cells × 4 boxes per cell = 100 anchors on this map"
    # On an odd map the middle cell is the centre of the image.
    assert torch.all(explorer.data[0].cell_anchors[:, :2] == 0.5)
    explorer.controls["map_size"].value = 6  # as a learner dragging the slider
    assert len(explorer.data[0].anchors) == 6 * 6 * 4
    assert explorer.text.startswith("6×6 cells") and explorer.png != first_png
    layout, show_all = explorer.set(aspect_ratios="squares only", show_all=True)
    assert layout.boxes_per_cell == 2 and show_all
    assert explorer.readout.value == explorer.text != first_text
    assert explorer.image.value == explorer.png


def test_matching_view_rules():
    # A small box between anchors: only its forced anchor is positive.
    small = matching_view(0.2, 0.2, 0.05, 0.05, 0.5)
    assert small.num_positives == small.num_forced == 1 and small.num_above_threshold == 0
    assert small.best_iou < 0.5
    # A box equal to an anchor: IoU 1 with it.
    anchor = explorer_anchors()[0]
    centre, size = (anchor[:2] + anchor[2:]) / 2, anchor[2:] - anchor[:2]
    exact = matching_view(*centre.tolist(), *size.tolist(), 0.5)
    assert exact.best_iou == pytest.approx(1.0)
    assert exact.explanation.matched_gt[0] == 0


def test_lower_threshold_never_gives_fewer_positives():
    counts = [matching_view(0.5, 0.5, 0.5, 0.6, t).num_positives for t in (0.7, 0.5, 0.3, 0.1)]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_matching_explorer_follows_its_controls():
    explorer = matching_explorer()
    before_png, before_text = explorer.png, explorer.text
    assert before_text.startswith("positives: ")
    explorer.controls["iou_threshold"].value = 0.2
    after = explorer.data
    assert after.iou_threshold == 0.2 and after.num_positives > 1
    assert explorer.png != before_png and explorer.text != before_text
    explorer.set(cx=0.9, cy=0.1, w=0.1, h=0.1)
    moved = explorer.data
    assert moved.gt_xyxy[0, 0] > 0.8 and (moved.explanation.matched_gt != BACKGROUND).sum() >= 1


def test_set_rejects_unknown_controls():
    with pytest.raises(ValueError, match="controls"):
        matching_explorer().set(radius=3)


def test_static_fallback_is_a_png_and_one_line():
    explorer = matching_explorer()
    bundle = explorer._repr_mimebundle_()
    snapshot = base64.b64decode(bundle["image/png"])
    # The snapshot is its own picture (legend, readout as title), not the live one.
    assert snapshot.startswith(PNG_SIGNATURE) and snapshot != explorer.png
    assert "\n" not in bundle["text/plain"] and bundle["text/plain"].startswith("positives")
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_redraw_timer_returns_one_time_per_redraw():
    times = matching_explorer_redraw_ms(3)
    assert len(times) == 3 and all(t > 0 for t in times)
