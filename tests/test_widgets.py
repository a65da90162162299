"""Drive every explorer as a learner would: change controls, check the data and the picture."""

import base64
import itertools
import math
import re

import ipywidgets
import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from ssd_lesson.anchors import make_anchors, paper_scales  # noqa: E402
from ssd_lesson.encoding import build_targets  # noqa: E402
from ssd_lesson.loss import ssd_loss  # noqa: E402
from ssd_lesson.matching import BACKGROUND, match_anchors  # noqa: E402
from ssd_lesson.plotting import sample_photo  # noqa: E402
from ssd_lesson.widgets import (  # noqa: E402
    ENCODING_OBJECTS,
    anchor_explorer,
    anchor_layout,
    draw_encoding_view,
    draw_mining_losses,
    draw_mining_view,
    encoding_explorer,
    encoding_pairs,
    encoding_view,
    explorer_anchors,
    explorer_photo,
    gradient_explorer,
    gradient_view,
    loss_explorer_anchors,
    matching_explorer,
    matching_view,
    mining_explorer,
    mining_view,
    untrained_predictions,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """The explorers' tensors are tiny: more threads only wait for each other (on a shared
    two-core machine the sweeps below take several times longer with torch's default)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---------------------------------------------------------------- every value of every control


def control_values(control, spaced: int = 11) -> list:
    """Every value a learner can give ``control``: each option (dropdown, toggle, checkbox), each
    slider step, or, for sliders of many steps, ``spaced`` evenly spaced steps with both ends."""
    if isinstance(control, ipywidgets.Checkbox):
        return [False, True]
    if isinstance(control, (ipywidgets.Dropdown, ipywidgets.ToggleButtons)):
        return [o[1] if isinstance(o, tuple) else o for o in control.options]  # (label, value)
    steps = round((control.max - control.min) / control.step)
    picks = (
        range(steps + 1)
        if steps < 2 * spaced
        else sorted({round(i * steps / (spaced - 1)) for i in range(spaced)})
    )
    values = [min(control.min + i * control.step, control.max) for i in picks]
    if isinstance(control, ipywidgets.IntSlider):
        return [int(v) for v in values]
    return [round(v, 6) for v in values]


def is_choice(control) -> bool:
    return isinstance(control, (ipywidgets.Checkbox, ipywidgets.Dropdown, ipywidgets.ToggleButtons))


def sweep_explorer(explorer) -> int:
    """Move every control over its whole range, alone and with every combination of the choices
    (dropdowns, toggles, checkboxes), the other controls at their first values.

    Every setting is computed, described (one non-empty line) and drawn on fresh Axes. Some are
    also set on the live widget, which must show that readout and a PNG: every combination of
    choices, and the ends of every slider with the first one. Returns the number of settings."""
    first = explorer.values
    choices = {name: c for name, c in explorer.controls.items() if is_choice(c)}
    sliders = {name: c for name, c in explorer.controls.items() if not is_choice(c)}
    combos = [
        dict(zip(choices, combo, strict=True))
        for combo in itertools.product(*(control_values(c) for c in choices.values()))
    ]
    tried = 0
    settings = [(name, value) for name, c in sliders.items() for value in control_values(c)]
    for combo in combos:
        for name, value in [(None, None), *settings]:
            values = {**first, **combo} if name is None else {**first, **combo, name: value}
            data = explorer.compute(**values)
            text = explorer.describe(data)
            assert text and "\n" not in text, (values, text)
            figure = Figure(figsize=explorer.figsize)
            explorer.draw(data, explorer.make_axes(figure))
            assert figure.axes, values
            tried += 1
            at_an_end = name is not None and value in (sliders[name].min, sliders[name].max)
            if name is None or (at_an_end and combo == combos[0]):  # as a learner would see it
                explorer.set(**values)
                assert explorer.text == text == explorer.readout.value, values
                assert explorer.png.startswith(PNG_SIGNATURE) and explorer.image.value
    explorer.set(**first)
    return tried


def test_control_values_cover_the_whole_range():
    assert control_values(ipywidgets.IntSlider(min=1, max=10)) == list(range(1, 11))
    fine = control_values(ipywidgets.FloatSlider(min=-1.5, max=1.5, step=0.01))
    assert len(fine) == 11 and fine[0] == -1.5 and fine[-1] == 1.5 and 0.0 in fine
    coarse = control_values(ipywidgets.FloatSlider(min=0.05, max=1.0, step=0.05))
    assert len(coarse) == 20 and coarse[0] == 0.05 and coarse[-1] == 1.0
    assert control_values(ipywidgets.Dropdown(options=[("a", 3), ("b", 4)])) == [3, 4]
    assert control_values(ipywidgets.Dropdown(options=["a", "b"])) == ["a", "b"]


@pytest.mark.parametrize(
    ("make", "at_least"),
    [
        (lambda: anchor_explorer(sample_photo()), 6 * (10 + 11 + 11)),
        (matching_explorer, 4 * 11 + 20),
        (encoding_explorer, 6 * 4 * 11),
        (mining_explorer, 21),
        (gradient_explorer, 11 + 11),
    ],
    ids=["anchor", "matching", "encoding", "mining", "gradient"],
)
def test_every_control_value_computes_describes_and_draws(make, at_least):
    assert sweep_explorer(make()) >= at_least


@pytest.mark.parametrize(
    "make",
    [lambda: anchor_explorer(sample_photo()), matching_explorer, encoding_explorer],
    ids=["anchor", "matching", "encoding"],
)
def test_snapshot_at_the_slider_ends(make):
    explorer = make()
    for end in ("min", "max"):
        explorer.set(**{
            name: getattr(c, end) for name, c in explorer.controls.items() if not is_choice(c)
        })  # fmt: skip
        bundle = explorer._repr_mimebundle_()
        assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
        assert bundle["text/plain"] == explorer.text and "\n" not in explorer.text


def test_cached_scenes_are_not_shared():
    """What a learner gets may be changed without changing what the next call returns."""
    getters = {
        "loss_explorer_anchors": loss_explorer_anchors,
        "untrained_predictions": lambda: untrained_predictions()[0],
        "untrained_predictions offsets": lambda: untrained_predictions()[1],
        "explorer_anchors": explorer_anchors,
        "encoding pair object": lambda: encoding_pairs()[0].gt_xyxy,
        "encoding pair anchor": lambda: encoding_pairs()[0].anchor_xyxy,
        "mining view objects": lambda: mining_view(3.0).gt_xyxy,
        "mining view anchors": lambda: mining_view(3.0).anchors_xyxy,
        "gradient view object": lambda: gradient_view(0.5, 0.45).gt_xyxy,
        "gradient view anchors": lambda: gradient_view(0.5, 0.45).anchors_xyxy,
        "gradient view loss curve": lambda: gradient_view(0.5, 0.45).losses,
        "gradient view shifts": lambda: gradient_view(0.5, 0.45).shifts,
        "gradient view positives curve": lambda: gradient_view(0.5, 0.45).positive_counts,
        "gradient view object xs": lambda: gradient_view(0.5, 0.45).gt_xs,
        "matching view anchors": lambda: matching_view(0.5, 0.5, 0.3, 0.3, 0.5).anchors_xyxy,
    }
    for what, get in getters.items():
        before = get().clone()
        get().fill_(7)
        assert torch.equal(get(), before), what
    with pytest.raises(ValueError, match="read-only"):
        explorer_photo()[0, 0, 0] = 0


def test_encoding_explorer_draws_boxes_that_leave_the_image():
    # Pair 1 (the person, on a large anchor) at t_w = 1.5: the box is 4.5 anchors wide.
    explorer = encoding_explorer(pair=1)
    view = explorer.set(t_w=1.5, t_x=1.0)
    assert view.decoded_xyxy[0] < 0 and view.decoded_xyxy[2] > 2
    assert 0 < view.iou < 0.5 and explorer.png.startswith(PNG_SIGNATURE)


def test_anchor_layout_counts_and_centre_cell():
    layout = anchor_layout(3, 0.3, 0.5, "2, 1/2, 3, 1/3")
    assert layout.boxes_per_cell == 6 and len(layout.anchors) == 3 * 3 * 6
    # The centre cell of a 3x3 map is at (0.5, 0.5); its first box is the s_k square (xyxy).
    torch.testing.assert_close(layout.cell_anchors[0], torch.tensor([0.35, 0.35, 0.65, 0.65]))
    centres = (layout.cell_anchors[:, :2] + layout.cell_anchors[:, 2:]) / 2
    torch.testing.assert_close(centres, torch.full((6, 2), 0.5))


def test_anchor_layout_rejects_unknown_ratio_choice():
    with pytest.raises(ValueError, match="aspect_ratios"):
        anchor_layout(3, 0.3, 0.5, "5 and 1/5")


def test_anchor_explorer_follows_its_controls():
    explorer = anchor_explorer(sample_photo())
    first_png, first_text = explorer.png, explorer.text
    assert explorer.text == "5×5 cells × 4 boxes per cell = 100 anchors on this map"
    # On an odd map the middle cell is the centre of the image.
    cell = explorer.data[0].cell_anchors
    torch.testing.assert_close((cell[:, :2] + cell[:, 2:]) / 2, torch.full((4, 2), 0.5))
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


# ---------------------------------------------------------------- lesson 03: encoding


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
    with pytest.raises(ValueError, match=r"pair as a number in \[0, 5\]"):
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
    first = explorer.png
    assert first.startswith(PNG_SIGNATURE)
    explorer.controls["t_x"].value = -0.33  # as a learner dragging the slider
    assert explorer.png != first and "IoU 0.33" not in explorer.text
    view = explorer.set(t_y=0.32, t_w=0.21, t_h=0.14)
    assert view.landed and explorer.text.endswith("· landed ✓")
    assert explorer.readout.value == explorer.text
    explorer.controls["pair"].value = 5  # the tie: the sliders no longer fit
    assert explorer.data.pair.name == "tie" and not explorer.data.landed
    assert explorer.text.endswith("with the tie")


def test_encoding_explorer_static_fallback():
    explorer = encoding_explorer(pair=1)
    bundle = explorer._repr_mimebundle_()
    snapshot = base64.b64decode(bundle["image/png"])
    assert snapshot.startswith(PNG_SIGNATURE) and snapshot != explorer.png
    assert bundle["text/plain"].endswith("with the person")


def test_draw_encoding_view_draws_the_three_boxes_without_a_widget():
    figure = Figure()
    ax = draw_encoding_view(encoding_view(0, -0.2, 0.1, 0, 0), figure.add_subplot())
    assert len(ax.collections) == 3 and len(ax.images) == 1
    assert ax.get_title() == "anchor 25 moved by (-0.20, +0.10, +0.00, +0.00)"


def test_a_redrawn_explorer_equals_a_fresh_one():
    # A redraw starts from an empty figure: nothing of the last picture may be left over.
    encoding = encoding_explorer()
    encoding.set(pair=5, t_x=0.4, t_w=-0.5)
    fresh = encoding_explorer(pair=5)
    fresh.set(t_x=0.4, t_w=-0.5)
    assert encoding.png == fresh.png
    mining = mining_explorer()
    mining.set(neg_pos_ratio=8.5)
    assert mining.png == mining_explorer(8.5).png
    gradient = gradient_explorer()
    gradient.set(prediction_shift=-2.0, gt_x=0.7)
    assert gradient.png == gradient_explorer(-2.0, 0.7).png


# ---------------------------------------------------------------- lesson 04: mining


def _lesson_04_loss(neg_pos_ratio):
    """The mining scene rebuilt from its description: lesson 04's recipe on 540 anchors."""
    anchors = make_anchors((10, 5, 3, 1), paper_scales(4), [[2.0]] * 4)
    boxes = torch.tensor([[0.31, 0.29, 0.72, 0.67], [0.31, 0.06, 0.73, 0.32]])  # face, cap
    targets = build_targets(anchors, [boxes], [torch.tensor([1, 2])])
    generator = torch.Generator().manual_seed(0)
    class_logits = torch.randn(1, len(anchors), 3, generator=generator)
    box_offsets = 0.5 * torch.randn(1, len(anchors), 4, generator=generator)
    return ssd_loss(class_logits, box_offsets, targets.labels, targets.offsets, neg_pos_ratio)


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0, 2.5, 3.0, 10.0])
def test_mining_view_mines_the_quota_of_hardest_negatives(ratio):
    view = mining_view(ratio)
    assert len(view.anchors_xyxy) == 540
    assert view.num_positives == 9 and view.num_negatives == 531
    assert view.num_mined == min(math.floor(ratio * 9), 531) == int(view.mined.sum())
    assert not (view.mined & view.positives).any()
    others = ~view.positives & ~view.mined
    if view.num_mined:  # the mined are the hardest: none left behind has a higher loss
        assert view.anchor_class_loss[view.mined].min() >= view.anchor_class_loss[others].max()


def test_mining_view_equals_ssd_loss_of_the_lesson_scene():
    for ratio in (0.0, 3.0, 7.5):
        view, expected = mining_view(ratio), _lesson_04_loss(ratio)
        assert view.total == pytest.approx(expected.total.item(), rel=1e-6)
        assert view.classification == pytest.approx(expected.classification.item(), rel=1e-6)
        assert view.localization == pytest.approx(expected.localization.item(), rel=1e-6)
        assert torch.equal(view.mined, expected.mined_negatives[0])
    # More mined negatives add classification loss; the localization loss does not change.
    few, many = mining_view(1.0), mining_view(5.0)
    assert many.classification > few.classification and many.localization == few.localization


def test_mining_explorer_readout_is_ssd_loss():
    explorer = mining_explorer()
    assert explorer.controls["neg_pos_ratio"].description == "negatives per positive"
    first = explorer.png
    explorer.controls["neg_pos_ratio"].value = 6.5  # as a learner dragging the slider
    expected = _lesson_04_loss(6.5)
    numbers = re.fullmatch(
        r"positives: (\d+) · mined negatives: (\d+) of (\d+) · classification (\S+) \+ "
        r"localization (\S+) = total (\S+)",
        explorer.text,
    )
    assert numbers, explorer.text
    assert [int(n) for n in numbers.groups()[:3]] == [9, 58, 531]
    assert [float(n) for n in numbers.groups()[3:]] == [
        round(expected.classification.item(), 2),
        round(expected.localization.item(), 2),
        round(expected.total.item(), 2),
    ]
    assert explorer.png != first and explorer.png.startswith(PNG_SIGNATURE)


def test_draw_mining_losses_cuts_at_the_quota():
    view = mining_view(3.0)
    ax = draw_mining_losses(view, Figure().add_subplot())
    cut = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(cut) == 1 and cut[0].get_xdata()[0] == view.num_mined + 0.5 == 27.5
    sorted_losses = ax.lines[0].get_ydata()
    assert len(sorted_losses) == 531 and all(sorted_losses[:-1] >= sorted_losses[1:])


def test_draw_mining_view_without_a_widget():
    figure = Figure()
    ax = draw_mining_view(mining_view(2.0), figure.add_subplot(), photo=False, legend=False)
    # Mined negatives, positives, ground truth: three collections; 18 mined boxes.
    assert len(ax.collections) == 3 and len(ax.collections[0].get_paths()) == 18


# ---------------------------------------------------------------- lesson 04: gradient


@pytest.mark.parametrize(("shift", "gt_x"), [(0.5, 0.45), (-0.3, 0.3), (2.0, 0.62), (-2.5, 0.8)])
def test_gradient_view_gradient_is_the_slope_of_the_loss(shift, gt_x):
    view = gradient_view(shift, gt_x)
    h = 0.01
    slope = (gradient_view(shift + h, gt_x).loss - gradient_view(shift - h, gt_x).loss) / (2 * h)
    assert view.gradient == pytest.approx(slope, abs=2e-3)
    # By hand: Smooth L1's slope is the error, capped at ±1, divided by N positives.
    n = len(view.positive_anchors)
    assert view.gradient == pytest.approx(max(-1.0, min(1.0, shift)) / n, rel=1e-5)


def test_gradient_view_at_zero_shift_predicts_the_object():
    view = gradient_view(0.0, 0.45)
    assert view.best_anchor in view.positive_anchors and view.gradient == 0.0
    torch.testing.assert_close(view.predicted_xyxy, view.gt_xyxy[0], rtol=0, atol=1e-5)


def test_gradient_view_curves_are_the_real_functions():
    view = gradient_view(0.5, 0.45)
    # The loss curve passes through the current point (0.5 is on its grid) and is smooth.
    i = int(torch.argmin((view.shifts - 0.5).abs()))
    assert view.losses[i].item() == pytest.approx(view.loss, rel=1e-6)
    assert int(view.losses.argmin()) == int(torch.argmin(view.shifts.abs()))
    steps = view.losses.diff().abs().max()
    assert steps < 0.1 * (view.losses.max() - view.losses.min())
    # The positives curve counts what matching gives, and it jumps.
    for x in (0.2, 0.45, 0.61):
        j = int(torch.argmin((view.gt_xs - x).abs()))
        assert view.positive_counts[j] == len(gradient_view(0.0, x).positive_anchors)
    assert len(view.positive_counts.unique()) >= 3


def test_moving_the_ground_truth_across_a_threshold_changes_the_positives():
    counts = {}
    for step in range(15, 86):
        counts[step / 100] = gradient_view(0.0, step / 100).positive_anchors
    xs = sorted(counts)
    jumps = [(a, b) for a, b in zip(xs, xs[1:], strict=False) if counts[a] != counts[b]]
    assert len(jumps) >= 5
    # ...and some jumps change how many positives there are, not only which.
    assert any(len(counts[a]) != len(counts[b]) for a, b in jumps)


def test_gradient_view_rejects_an_object_outside_the_image():
    with pytest.raises(ValueError, match="gt_x"):
        gradient_view(0.0, 0.9)


def test_gradient_explorer_follows_its_controls():
    explorer = gradient_explorer()
    descriptions = [c.description for c in explorer.controls.values()]
    assert descriptions == ["predicted shift", "ground truth x"]
    pattern = (
        r"loss \d+\.\d{3} · d loss / d t_x of anchor \d+ = [+-]\d\.\d{3} · "
        r"positives: (\d+) \(anchors [\d, ]+\)"
    )
    assert re.fullmatch(pattern, explorer.text), explorer.text
    assert explorer.text.startswith("loss 15.624 · d loss / d t_x of anchor 177 = +0.167")
    first_png, first_text = explorer.png, explorer.text
    explorer.controls["prediction_shift"].value = -1.5
    assert explorer.data.gradient < 0 and explorer.text != first_text
    assert explorer.png != first_png and explorer.png.startswith(PNG_SIGNATURE)
    before = explorer.data.positive_anchors
    explorer.set(gt_x=0.5)
    assert explorer.data.positive_anchors != before
    assert f"positives: {len(explorer.data.positive_anchors)} " in explorer.text


def test_gradient_explorer_static_fallback():
    bundle = gradient_explorer(1.0, 0.3)._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_SIGNATURE)
    assert bundle["text/plain"].startswith("loss ") and "\n" not in bundle["text/plain"]
