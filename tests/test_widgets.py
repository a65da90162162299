"""Drive every explorer as a learner would: change controls, check the data and the picture."""

import base64
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from ssd_lesson.matching import BACKGROUND, match_anchors  # noqa: E402
from ssd_lesson.plotting import sample_photo  # noqa: E402
from ssd_lesson.widgets import (  # noqa: E402
    ENCODING_OBJECTS,
    Explorer,
    anchor_explorer,
    anchor_layout,
    draw_encoding_view,
    encoding_explorer,
    encoding_pairs,
    encoding_view,
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


# ---------------------------------------------------------------- lesson 03: encoding

JPEG_SIGNATURE = b"\xff\xd8\xff"


def test_encoding_pairs_are_the_scene_matches():
    pairs = encoding_pairs()
    labels = [pair.label for pair in pairs]
    assert labels[0] == "face ← anchor 25 (IoU 0.33)"
    assert len(set(labels)) == len(labels) == 6
    assert {pair.name for pair in pairs} == set(ENCODING_OBJECTS)
    # Each pair really is a match: match_anchors gives that anchor that object.
    gt = torch.tensor(list(ENCODING_OBJECTS.values()))
    matched = match_anchors(explorer_anchors(), gt)
    names = list(ENCODING_OBJECTS)
    for pair in pairs:
        assert names[int(matched[pair.anchor_index])] == pair.name
        torch.testing.assert_close(pair.anchor_xyxy, explorer_anchors()[pair.anchor_index])


def test_encoding_view_target_by_hand():
    # face (0.31, 0.29, 0.72, 0.67): centre (0.515, 0.48), size 0.41 x 0.38. Anchor 25: the extra
    # square of 4x4 cell (row 1, column 2), centre (0.625, 0.375), side sqrt(0.2 * 0.55).
    side = math.sqrt(0.2 * 0.55)
    expected = torch.tensor(
        [
            (0.515 - 0.625) / side,
            (0.48 - 0.375) / side,
            math.log(0.41 / side),
            math.log(0.38 / side),
        ]
    )
    view = encoding_view(0, 0.0, 0.0, 0.0, 0.0)
    torch.testing.assert_close(view.target_offsets, expected, rtol=0, atol=1e-5)


def test_encoding_view_at_zero_is_the_anchor_and_at_the_target_lands():
    for i, pair in enumerate(encoding_pairs()):
        zero = encoding_view(i, 0.0, 0.0, 0.0, 0.0)
        torch.testing.assert_close(zero.decoded_xyxy, pair.anchor_xyxy)
        assert zero.iou == pytest.approx(pair.iou, abs=1e-6) and not zero.landed
        # What a learner can set: the targets rounded to the sliders' step of 0.01.
        target = [round(v, 2) for v in zero.target_offsets.tolist()]
        assert all(abs(v) <= 1.0 for v in target[:2]) and all(abs(v) <= 1.5 for v in target[2:])
        landed = encoding_view(i, *target)
        assert landed.iou >= 0.98 and landed.landed, pair.label


def test_encoding_pairs_include_a_close_and_a_far_anchor():
    targets = [encoding_view(i, 0, 0, 0, 0).target_offsets.abs().max() for i in range(6)]
    close = [p for p, t in zip(encoding_pairs(), targets, strict=True) if t < 0.1]
    far = [p for p, t in zip(encoding_pairs(), targets, strict=True) if t > 0.6]
    assert close and close[0].iou > 0.8
    assert far and far[0].iou < 0.3


def test_encoding_view_near_the_target_is_not_landed():
    target = [round(v, 2) for v in encoding_view(0, 0, 0, 0, 0).target_offsets.tolist()]
    near = encoding_view(0, target[0] + 0.05, *target[1:])
    assert 0.9 < near.iou < 0.98 and not near.landed


def test_encoding_view_rejects_an_unknown_pair():
    with pytest.raises(ValueError, match="index 0..5"):
        encoding_view(6, 0, 0, 0, 0)


def test_encoding_explorer_lands_when_the_sliders_reach_the_target():
    explorer = encoding_explorer()
    assert [c.description for c in explorer.controls.values()] == [
        "pair",
        "t_x",
        "t_y",
        "t_w",
        "t_h",
    ]
    assert explorer.text == (
        "target (t_x, t_y, t_w, t_h) = (-0.33, +0.32, +0.21, +0.14); "
        "sliders give IoU 0.33 with the face"
    )
    first = explorer.picture
    assert first.startswith(JPEG_SIGNATURE)
    explorer.controls["t_x"].value = -0.33  # as a learner dragging the slider
    assert explorer.picture != first and "IoU 0.33" not in explorer.text
    view = explorer.set(t_y=0.32, t_w=0.21, t_h=0.14)
    assert view.landed and explorer.text.endswith("· landed ✓")
    assert explorer.readout.value == explorer.text
    explorer.controls["pair"].value = 5  # the tie: the sliders no longer fit
    assert explorer.data.pair.name == "tie" and not explorer.data.landed
    assert explorer.text.endswith("with the tie")


def test_encoding_explorer_static_fallback():
    bundle = encoding_explorer(pair=1)._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
    assert bundle["text/plain"].endswith("with the person")
    with pytest.raises(AttributeError, match="picture"):
        encoding_explorer().png  # noqa: B018  (a JPEG explorer has no .png)


def test_draw_encoding_view_draws_the_three_boxes_without_a_widget():
    figure = Figure()
    ax = draw_encoding_view(encoding_view(0, -0.2, 0.1, 0, 0), figure.add_subplot())
    assert len(ax.collections) == 3 and len(ax.images) == 1
    assert ax.get_title() == "anchor 25 moved by (-0.20, +0.10, +0.00, +0.00)"


def test_explorer_rejects_an_unknown_picture_format():
    with pytest.raises(ValueError, match="picture_format"):
        Explorer({}, lambda: None, lambda data, ax: None, str, picture_format="gif")
