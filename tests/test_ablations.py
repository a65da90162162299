"""Lesson 08's pieces: other matching rules and losses, recall by size, long thin shapes, fit's
hooks, the experiments and the table's verdicts. Every case is small enough to check by hand."""

import json

import pytest
import torch
import torch.nn.functional as F
import torchvision

from ssd_lesson import ablation_runs, ablation_table, ablations
from ssd_lesson.alternatives import (
    all_negatives_loss,
    loss_split,
    match_anchors_greedy,
    match_anchors_threshold_only,
    objects_without_anchor,
    recall_by_size,
    softmax_focal_loss,
    targets_with,
)
from ssd_lesson.data.shapes import ELONGATED_STRETCH, MAX_STRETCH, ShapesDataset
from ssd_lesson.fast import build_targets
from ssd_lesson.loss import ssd_loss
from ssd_lesson.matching import match_anchors
from ssd_lesson.model import SSD, small_config
from ssd_lesson.train import fit

# Three anchors and two objects, all full height, so IoU is the overlap of the x intervals.
# IoU table (objects x anchors), by hand:
#            a0 [0.2, 0.6]   a1 [0.0, 0.3]   a2 [0.5, 1.0]
# g0 [0.1, 0.5]   0.3/0.5 = 0.6    0.2/0.5 = 0.4    0
# g1 [0.25, 0.75] 0.35/0.55 = 0.64 0.05/0.75 = 0.07 0.25/0.75 = 0.33
# Both objects' best anchor is a0: a collision.
ANCHORS = torch.tensor([[0.2, 0.0, 0.6, 1.0], [0.0, 0.0, 0.3, 1.0], [0.5, 0.0, 1.0, 1.0]])
OBJECTS = torch.tensor([[0.1, 0.0, 0.5, 1.0], [0.25, 0.0, 0.75, 1.0]])


def test_the_collision_by_hand():
    # torchvision's rule: both objects force a0, the later (g1) keeps it; g0 has no anchor.
    assert match_anchors(ANCHORS, OBJECTS).tolist() == [1, -1, -1]
    # Greedy one-to-one: (g1, a0) is the best pair (0.64); g0 then takes a1 (0.4).
    assert match_anchors_greedy(ANCHORS, OBJECTS).tolist() == [1, 0, -1]
    # Threshold only at 0.5: a0 goes to g1 (0.64 > 0.6); a1 (0.4) and a2 (0.33) stay background.
    assert match_anchors_threshold_only(ANCHORS, OBJECTS).tolist() == [1, -1, -1]
    # At 0.3 every anchor reaches some object: a1 -> g0 (0.4), a2 -> g1 (0.33).
    assert match_anchors_threshold_only(ANCHORS, OBJECTS, 0.3).tolist() == [1, 0, 1]


def test_objects_left_without_an_anchor_by_hand():
    boxes = [OBJECTS, OBJECTS[:1], torch.zeros(0, 4)]  # 3 images, 3 objects
    assert objects_without_anchor(match_anchors, ANCHORS, boxes) == (1, 3)
    assert objects_without_anchor(match_anchors_greedy, ANCHORS, boxes) == (0, 3)
    assert objects_without_anchor(match_anchors_threshold_only, ANCHORS, boxes) == (1, 3)
    assert objects_without_anchor(match_anchors_threshold_only, ANCHORS, boxes, 0.7) == (3, 3)


def test_greedy_equals_match_anchors_without_collisions_and_gives_every_object_an_anchor():
    anchors = small_config().anchors()
    generator = torch.Generator().manual_seed(0)
    collisions = 0
    for _ in range(200):
        corner = torch.rand(4, 2, generator=generator) * 0.6
        boxes = torch.cat([corner, corner + 0.05 + 0.3 * torch.rand(4, 2, generator=generator)], 1)
        greedy = match_anchors_greedy(anchors, boxes)
        assert len(torch.unique(greedy[greedy >= 0])) == 4  # no object is left out
        best = box_best_anchors(anchors, boxes)
        if len(set(best)) == 4:
            assert torch.equal(greedy, match_anchors(anchors, boxes))
        else:
            collisions += 1
    assert collisions > 0  # the test saw both cases


def box_best_anchors(anchors, boxes):
    return torchvision.ops.box_iou(boxes, anchors).argmax(dim=1).tolist()


def test_targets_with_match_anchors_equal_build_targets():
    anchors = small_config().anchors()
    boxes = [OBJECTS, torch.zeros(0, 4), torch.tensor([[0.1, 0.1, 0.9, 0.8]])]
    labels = [torch.tensor([2, 4]), torch.zeros(0, dtype=torch.long), torch.tensor([1])]
    for threshold in (0.3, 0.5, 0.7):
        ours = targets_with(match_anchors, threshold)(anchors, boxes, labels)
        theirs = build_targets(anchors, boxes, labels, iou_threshold=threshold)
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b)


def outputs(num_classes=1, anchors=6, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, anchors, num_classes + 1, generator=generator)
    offsets = torch.randn(batch, anchors, 4, generator=generator)
    labels = torch.randint(0, num_classes + 1, (batch, anchors), generator=generator)
    labels[:, 0] = 1  # at least one positive per image
    target_offsets = torch.randn(batch, anchors, 4, generator=generator)
    return logits, offsets, labels, target_offsets


def test_softmax_focal_loss_with_two_columns_is_torchvisions_sigmoid_focal_loss():
    # With columns (background, object), softmax(p_object) = sigmoid(z1 - z0).
    logits, offsets, labels, target_offsets = outputs(num_classes=1, anchors=50)
    for gamma, alpha in ((2.0, 0.25), (0.5, 0.6), (0.0, None)):
        ours = softmax_focal_loss(logits, offsets, labels, target_offsets, gamma, alpha)
        theirs = torchvision.ops.sigmoid_focal_loss(
            logits[..., 1] - logits[..., 0],
            labels.float(),
            alpha=-1 if alpha is None else alpha,
            gamma=gamma,
            reduction="none",
        )
        torch.testing.assert_close(ours.anchor_class_loss, theirs)
        n = int((labels > 0).sum())
        torch.testing.assert_close(ours.classification, theirs.sum() / n)


def test_focal_loss_with_gamma_0_is_cross_entropy_on_every_anchor():
    logits, offsets, labels, target_offsets = outputs(num_classes=3, anchors=20)
    ours = softmax_focal_loss(logits, offsets, labels, target_offsets, gamma=0.0, alpha=None)
    entropy = F.cross_entropy(logits.reshape(-1, 4), labels.reshape(-1), reduction="sum")
    n = int((labels > 0).sum())
    torch.testing.assert_close(ours.classification, entropy / n)
    plain = ssd_loss(logits, offsets, labels, target_offsets)
    torch.testing.assert_close(ours.localization, plain.localization)  # the same Smooth L1


def test_all_negatives_loss_counts_every_negative():
    logits, offsets, labels, target_offsets = outputs(num_classes=2, anchors=30)
    labels[1] = 0  # an image with no objects: its negatives count too
    result = all_negatives_loss(logits, offsets, labels, target_offsets)
    assert torch.equal(result.mined_negatives, labels == 0)
    entropy = F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), reduction="sum")
    torch.testing.assert_close(result.classification, entropy / int((labels > 0).sum()))


def test_loss_split_adds_up():
    logits, offsets, labels, target_offsets = outputs(num_classes=2, anchors=40)
    for loss in (ssd_loss, all_negatives_loss, softmax_focal_loss):
        result = loss(logits, offsets, labels, target_offsets)
        split = loss_split(result)
        assert split["positives"] + split["negatives"] == pytest.approx(
            result.classification.item(), rel=1e-5
        )
        assert split["localization"] == pytest.approx(result.localization.item())


def test_recall_by_size_by_hand():
    # One 64-pixel image, three squares of class 1: 10, 20 and 40 pixels (small, medium, large).
    truth = {
        "boxes": torch.tensor([[0, 0, 10, 10], [20, 0, 40, 20], [0, 20, 40, 60]]) / 64.0,
        "labels": torch.tensor([1, 1, 1]),
    }
    found = {
        "boxes": torch.tensor([[0, 0, 10, 10], [20, 0, 40, 20], [0, 20, 40, 60]]) / 64.0,
        "scores": torch.tensor([0.9, 0.9, 0.3]),  # the large one below the 0.5 we count
        "labels": torch.tensor([1, 2, 1]),  # the medium one has the wrong class
    }
    recall = recall_by_size([found], [truth], 2, 64)
    assert [(r.found, r.total) for r in recall.values()] == [(1, 1), (0, 1), (0, 1)]
    assert list(recall) == ["small", "medium", "large"]
    low = recall_by_size([found], [truth], 2, 64, score=0.2)
    assert low["large"].recall == 1.0
    one = recall_by_size([found], [truth], 2, 64, buckets={"all": (0, 100)})
    assert one["all"] == (1, 3, pytest.approx(1 / 3))
    empty = recall_by_size([found], [truth], 2, 64, buckets={"huge": (100, 200)})
    assert empty["huge"].total == 0 and empty["huge"].recall != empty["huge"].recall  # NaN


def sides(data):
    boxes = torch.cat([data[i][1]["boxes"] for i in range(len(data))])
    size = boxes[:, 2:] - boxes[:, :2]
    return size.amax(dim=1) / size.amin(dim=1)  # long side over short side


def test_elongated_shapes_really_are_elongated():
    plain = sides(ShapesDataset(100, seed=3, min_size=0.25))
    long_thin = sides(ShapesDataset(100, seed=3, min_size=0.25, max_stretch=ELONGATED_STRETCH))
    # Drawn boxes are whole pixels: a side may round up by one pixel, so allow a little.
    assert plain.max() <= MAX_STRETCH * 1.15
    assert long_thin.max() >= 3.0
    assert (long_thin >= 2.0).float().mean() > 0.3


def test_default_stretch_draws_the_same_images_as_before():
    a, b = ShapesDataset(20, seed=4), ShapesDataset(20, seed=4, max_stretch=MAX_STRETCH)
    for i in range(20):
        assert torch.equal(a.draw(i)[0], b.draw(i)[0])


def test_fit_hooks_keep_the_default_and_are_called():
    data = ShapesDataset(16, seed=1, precompute=True)
    runs, calls = [], []

    def counting_loss(*args):
        calls.append(1)
        return ssd_loss(*args)

    for hooks in ({}, {"targets_fn": targets_with(match_anchors), "loss_fn": counting_loss}):
        torch.manual_seed(0)
        history = fit(SSD(small_config()), data, epochs=1, batch_size=8, progress=False,
                      threads=1, **hooks)  # fmt: skip
        runs.append(history.batch_loss)
    assert runs[0] == pytest.approx(runs[1], rel=1e-5)  # same targets, same loss: same run
    assert len(calls) == 2  # two batches


def test_every_variant_builds_with_the_anchors_it_promises():
    counts = {}
    for experiment in ablations.EXPERIMENTS:
        for variant in experiment.variants:
            counts[variant.name] = ablation_runs.build_model(variant).num_anchors
    assert counts["package: all six maps"] == 1400
    assert counts["finest map only (16 x 16)"] == 6 * 16 * 16 * 4  # six scales on one map
    assert counts["middle map only (4 x 4)"] == 6 * 4 * 4 * 4
    assert counts["squares only"] == 1400 // 2  # 2 squares per cell instead of 4 boxes
    assert counts["{1, 2, 1/2, 3, 1/3}"] == 1400 // 4 * 6


def test_one_map_model_reads_one_map():
    model = ablation_runs.build_model(ablations.Variant("x", maps="middle only"))
    maps = model.backbone(torch.rand(2, 3, 64, 64))
    assert len(maps) == 6 and all(m is maps[0] for m in maps) and maps[0].shape[-1] == 4


TINY = {"train_images": 16, "val_images": 12, "epochs": 1, "batch_size": 8, "lr": 1e-3,
        "few_images": 8, "few_epochs": 1}  # fmt: skip


def test_run_experiment_trains_each_variant_once(monkeypatch):
    monkeypatch.setitem(ablations.SIZES, "live", TINY)
    monkeypatch.setitem(ablation_runs.SIZES, "live", TINY)
    experiment = ablations.EXPERIMENTS[4]  # matching
    cache, lines = {}, []
    only = ["threshold only, 0.5"]
    runs = ablation_runs.run_experiment(experiment, (0,), "live", cache, lines.append, only)
    assert list(runs) == ["package: forced best, 0.5", "threshold only, 0.5"]
    assert len(cache) == 2 and len(lines) == 2
    package, threshold_only = runs["package: forced best, 0.5"][0], runs[only[0]][0]
    assert set(package) == set(ablations.METRICS)
    assert package["no anchor"] == 0.0 < threshold_only["no anchor"]  # the forced match at work
    again = ablation_runs.run_experiment(experiment, (0,), "live", cache, lines.append, only)
    assert again == runs and len(lines) == 2  # from the cache: nothing trained again
    text = ablation_table.experiment_table(5, experiment, runs)
    assert "one seed: cannot tell" in text and "threshold only, 0.5" in text


def test_verdicts_come_from_the_spread():
    package = [0.80, 0.81, 0.82]
    assert ablation_table.verdict(package, [0.70, 0.71, 0.72]) == "lower"
    assert ablation_table.verdict(package, [0.85, 0.86, 0.87]) == "higher"
    # Means 0.81 and 0.83 differ by 0.02, less than the spreads together (0.01 + 0.03).
    assert ablation_table.verdict(package, [0.80, 0.83, 0.86]) == "no measurable difference"
    assert ablation_table.verdict([0.8], [0.9]) == "one seed: cannot tell"
    assert ablation_table.agreement("lower", "lower") == "agrees"
    assert ablation_table.agreement("higher", "lower") == "disagrees"
    assert ablation_table.agreement("no measurable difference", "higher") == "cannot tell"
    assert ablation_table.agreement("higher", None) == "not measured in the paper"
    s = ablation_table.spread([1.0, 2.0, 3.0])
    assert (s.mean, s.std, s.low, s.high, s.count) == (2.0, 1.0, 1.0, 3.0, 3)


def fake_results():
    runs = {}
    for experiment in ablations.EXPERIMENTS:
        runs[experiment.name] = {}
        for k, variant in enumerate(experiment.variants):
            seeds = []
            for seed in range(3):
                metrics = dict.fromkeys(ablations.METRICS, 0.5 + 0.001 * seed)
                metrics["mAP"] = 0.8 - 0.1 * (k == 1) + 0.001 * seed  # variant 1 is worse
                seeds.append(metrics)
            runs[experiment.name][variant.name] = seeds
    return {"command": "make ablations", "seeds": [0, 1, 2], "size": "full", "settings": {},
            "torch": "x", "date": "today", "seconds": 60.0, "runs": runs}  # fmt: skip


def test_the_table_prints_the_verdicts_and_round_trips(tmp_path):
    results = fake_results()
    text = ablation_table.ablation_table(results, ablations.EXPERIMENTS)
    assert "finest map only (16 x 16)" in text and "mAP lower" in text
    assert "mAP no measurable difference" in text  # variant 2 equals the package
    assert "Table 3: one map (conv7) 62.4 vs six 74.3) -> agrees" in text
    path = ablation_table.save_results(results, tmp_path / "a" / "results.json")
    assert ablation_table.load_results(path) == json.loads(json.dumps(results))


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: match_anchors_greedy([[0, 0, 1]], OBJECTS), "anchors"),
        (lambda: match_anchors_threshold_only(ANCHORS, OBJECTS, 1.5), "iou_threshold"),
        (lambda: targets_with("forced"), "expected matcher as a function"),
        (lambda: targets_with(match_anchors, 0), "iou_threshold"),
        (lambda: objects_without_anchor(3, ANCHORS, [OBJECTS]), "matcher"),
        (lambda: softmax_focal_loss(*outputs(), gamma=-1), "gamma"),
        (lambda: softmax_focal_loss(*outputs(), alpha=2), "alpha"),
        (lambda: all_negatives_loss("logits", *outputs()[1:]), "class_logits"),
        (lambda: loss_split(3), "LossResult"),
        (lambda: recall_by_size([], [], 2, 64), "at least one ground-truth box"),
        (
            lambda: recall_by_size(
                [{"boxes": OBJECTS, "scores": torch.ones(2), "labels": torch.ones(2).long()}],
                [{"boxes": OBJECTS, "labels": torch.ones(2, dtype=torch.long)}],
                2,
                64,
                buckets={"x": (5, 1)},
            ),
            "from < below",
        ),
        (lambda: ShapesDataset(4, max_stretch=0.5), "max_stretch"),
        (lambda: fit(SSD(small_config()), ShapesDataset(4), targets_fn=1), "targets_fn"),
        (lambda: fit(SSD(small_config()), ShapesDataset(4), loss_fn="focal"), "loss_fn"),
        (lambda: ablation_runs.build_model(ablations.Variant("x", maps="two")), "maps"),
        (lambda: ablation_runs.build_data(ablations.Variant("x"), size="huge"), "size"),
        (lambda: ablation_runs.build_model(ablations.Variant("x", ratios=(0.5,))), "ratios"),
        (lambda: ablation_runs.run_experiment("maps"), "Experiment"),
        (lambda: ablation_runs.run_experiment(ablations.EXPERIMENTS[0], only=["x"]), "names"),
        (lambda: ablation_table.spread([]), "one number per seed"),
        (lambda: ablation_table.agreement("lower", "down"), "paper_direction"),
        (lambda: ablation_table.ablation_table({"runs": {}}, ()), "keys"),
        (lambda: ablation_table.experiment_table(1, ablations.EXPERIMENTS[0], {}), "runs of"),
        (lambda: ablation_table.load_results("no/such/file.json"), "existing file"),
    ],
)
def test_bad_input_is_a_clear_error(call, words):
    with pytest.raises(ValueError, match="expected") as error:
        call()
    assert words in str(error.value)
