"""Tests for ssd_lesson.model: shapes, anchor order, config checks, freezing, parameter groups."""

import dataclasses

import pytest
import torch
from torch import nn

from ssd_lesson.anchors import make_anchors
from ssd_lesson.boxes import xyxy_to_cxcywh
from ssd_lesson.model import (
    SSD,
    SmallBackbone,
    SSDConfig,
    count_trainable,
    freeze_layers,
    parameter_groups,
    small_config,
    stage_sizes,
    vgg16_backbone,
)

# A tiny config: 32-pixel images, maps 4 x 4, 2 x 2, 1 x 1 (stages 8, 4, 2, 1 of 16 -> last 3).
TINY = SSDConfig(
    image_size=32,
    num_classes=3,
    feature_map_sizes=(4, 2, 1),
    scales=(0.2, 0.45, 0.7, 0.95),
    aspect_ratios=((2,), (2, 3), ()),
    widths=(4, 8, 8, 8, 8),
)


def test_output_shapes_equal_the_anchor_count():
    model = SSD(TINY).eval()
    logits, offsets = model(torch.rand(2, 3, 32, 32))
    num_anchors = 16 * 4 + 4 * 6 + 1 * 2
    assert TINY.anchors_per_location() == [4, 6, 2]
    assert TINY.anchors().shape == (num_anchors, 4)
    assert logits.shape == (2, num_anchors, 4)  # C + 1 = 4 scores
    assert offsets.shape == (2, num_anchors, 4)


def test_small_config_anchors_match_make_anchors():
    config = small_config()
    expected = make_anchors(config.feature_map_sizes, config.scales, config.aspect_ratios)
    torch.testing.assert_close(config.anchors(), expected)
    logits, _ = SSD(config).eval()(torch.rand(1, 3, config.image_size, config.image_size))
    assert logits.shape == (1, expected.shape[0], config.num_classes + 1)


class CellIndexBackbone(nn.Module):
    """Maps whose every channel holds the cell's index in reading order (row * cols + col)."""

    def __init__(self, sizes, channels=1):
        super().__init__()
        self.sizes, self.channels = sizes, channels
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        batch = images.shape[0]
        return [
            torch.arange(s * s, dtype=torch.float32)
            .view(1, 1, s, s)
            .expand(batch, self.channels, s, s)
            + self.dummy
            for s in self.sizes
        ]


def test_predictions_land_on_their_anchors():
    """A head that outputs (map, cell, anchor type) must put them on anchor rows in that order."""
    model = SSD(TINY, backbone=CellIndexBackbone(TINY.feature_map_sizes)).eval()
    num_scores = TINY.num_classes + 1
    with torch.no_grad():
        for k, (head, a) in enumerate(
            zip(model.class_heads, TINY.anchors_per_location(), strict=True)
        ):
            # Only the centre tap of the 3 x 3 kernel: output = cell index (+ offsets below).
            head.weight.zero_()
            head.weight[:, 0, 1, 1] = 1.0
            # Score column 0 adds 1000 * map + anchor type, the other columns 0.5 (unused).
            bias = torch.full((a, num_scores), 0.5)
            bias[:, 0] = 1000.0 * k + torch.arange(a)
            head.bias.copy_(bias.flatten())
        logits, _ = model(torch.zeros(1, 3, 32, 32))
    got = logits[0, :, 0]  # (A,)
    expected = []
    per_map = zip(TINY.feature_map_sizes, TINY.anchors_per_location(), strict=True)
    for k, (size, a) in enumerate(per_map):
        for cell in range(size * size):  # cell-major ...
            for box in range(a):  # ... then anchor type, as make_anchors
                expected.append(cell + 1000.0 * k + box)
    torch.testing.assert_close(got, torch.tensor(expected))
    # And the anchors in those rows are centred on those cells: row i of map k = cell i // a.
    anchors = make_anchors(TINY.feature_map_sizes, TINY.scales, TINY.aspect_ratios)
    first_map = xyxy_to_cxcywh(anchors[: 16 * 4])  # centres in columns 0 and 1
    cell = got[: 16 * 4].long() // 1 - torch.arange(4).repeat(16)  # cell index per row
    torch.testing.assert_close(first_map[:, 0], ((cell % 4).float() + 0.5) / 4)
    torch.testing.assert_close(first_map[:, 1], ((cell // 4).float() + 0.5) / 4)


def test_background_starts_likely():
    model = SSD(TINY).eval()
    logits, _ = model(torch.rand(1, 3, 32, 32))
    background = logits.softmax(-1)[..., 0]
    assert background.min() > 0.95


def test_backbone_maps_that_do_not_match_the_config_are_rejected():
    # A backbone whose maps are not the config's sizes: the heads would miss the anchors.
    with pytest.raises(ValueError, match=r"feature maps of sizes \[\(4, 4\), \(2, 2\), \(1, 1\)\]"):
        SSD(TINY, backbone=CellIndexBackbone((8, 4, 2)))
    # Fewer maps than the config asks for.
    with pytest.raises(ValueError, match="feature map"):
        SSD(TINY, backbone=CellIndexBackbone((4, 2)))
    # The small backbone is built for the config's image size; another image size needs other
    # widths (stages), and a map size it cannot make is a clear error.
    with pytest.raises(ValueError, match="widths"):
        SSD(dataclasses.replace(TINY, image_size=64))
    with pytest.raises(ValueError, match=r"4 -> 1"):
        SSD(dataclasses.replace(TINY, feature_map_sizes=(4, 1, 1)))


def test_small_backbone_makes_the_configured_maps():
    assert stage_sizes(64, (16, 8, 4, 3, 2, 1)) == [
        (32, 3, 2),
        (16, 3, 2),
        (8, 3, 2),
        (4, 3, 2),
        (3, 2, 1),  # 4 -> 3: an unpadded 2 x 2 convolution
        (2, 3, 2),  # 3 -> 2 and 2 -> 1: halving, as before
        (1, 3, 2),
    ]
    backbone = SmallBackbone((4, 4, 4, 4), (4, 2, 1), image_size=16).eval()
    maps = backbone(torch.zeros(1, 3, 16, 16))
    assert [tuple(m.shape[-2:]) for m in maps] == [(4, 4), (2, 2), (1, 1)]
    with pytest.raises(ValueError, match="first feature map"):
        stage_sizes(64, (12, 6))


def test_images_of_the_wrong_size_are_rejected():
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\).*\(1, 3, 64, 64\)"):
        SSD(TINY)(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\).*\(1, 1, 32, 32\)"):
        SSD(TINY)(torch.rand(1, 1, 32, 32))  # greyscale: one channel
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\).*\(3, 32, 32\)"):
        SSD(TINY)(torch.rand(3, 32, 32))  # one image, not a batch
    with pytest.raises(ValueError, match="as a tensor"):
        SSD(TINY)([[0.5]])


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ((torch.rand(1, 3, 32, 32) * 255).to(torch.uint8), r"got torch\.uint8; divide by 255"),
        (torch.rand(1, 3, 32, 32, dtype=torch.float64), r"got torch\.float64"),
        (torch.rand(1, 3, 32, 32) * 255, r"expected images in \[0, 1\].*divide by 255"),
        (torch.randn(1, 3, 32, 32) * 2, r"expected images in \[0, 1\]"),
        (torch.full((1, 3, 32, 32), float("nan")), r"expected images in \[0, 1\]"),
    ],
)
def test_images_of_another_type_or_range_are_rejected(images, message):
    with pytest.raises(ValueError, match=message):
        SSD(TINY)(images)


def test_images_slightly_outside_0_1_and_of_the_models_dtype_pass():
    images = torch.rand(2, 3, 32, 32) * 1.2 - 0.1  # augmentation and rounding stray a little
    logits, _ = SSD(TINY).eval()(images)
    assert logits.dtype == torch.float32
    logits, _ = SSD(TINY).double().eval()(images.double())  # the model's own dtype
    assert logits.dtype == torch.float64


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"image_size": 4}, "image_size"),
        ({"scales": (0.2, 0.4)}, "scales"),
        ({"aspect_ratios": ((2,), (2,))}, "aspect ratios"),
        ({"widths": (4, 0, 8)}, "widths"),
    ],
)
def test_bad_configs_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change)


def test_config_round_trips_through_a_plain_dict():
    assert SSDConfig.from_dict(TINY.to_dict()) == TINY
    assert SSDConfig.from_dict({**TINY.to_dict(), "scales": [0.2, 0.45, 0.7, 0.95]}) == TINY
    with pytest.raises(ValueError, match="unknown"):
        SSDConfig.from_dict({**TINY.to_dict(), "colour": "red"})
    with pytest.raises(ValueError, match="expected a dict of SSDConfig fields"):
        SSDConfig.from_dict([("image_size", 32)])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scales": 5}, "expected scales as a sequence of numbers"),
        ({"scales": ("a", "b", "c", "d")}, "expected scales as a sequence of numbers"),
        ({"aspect_ratios": "23"}, "expected aspect_ratios as a sequence"),
        ({"feature_map_sizes": None}, "expected feature_map_sizes as a sequence"),
        ({"widths": (4, 8.5, 8, 8, 8)}, "widths"),
        ({"widths": (4, True, 8, 8, 8)}, "widths"),
    ],
)
def test_ill_typed_configs_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change)


def test_freeze_layers_counts_and_leaves_grads_none():
    model = SSD(TINY)
    conv_layers = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    before = count_trainable(model)
    assert freeze_layers(model.backbone, 2) == 2
    first, second, third = conv_layers[:3]
    frozen_numbers = first.weight.numel() + second.weight.numel()
    bn = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    frozen_numbers += sum(p.numel() for m in bn[:2] for p in m.parameters())
    assert count_trainable(model) == before - frozen_numbers
    logits, offsets = model(torch.rand(2, 3, 32, 32))
    (logits.sum() + offsets.sum()).backward()
    assert first.weight.grad is None and second.weight.grad is None
    assert bn[0].weight.grad is None and bn[1].weight.grad is None  # its batch norm too
    assert third.weight.grad is not None and bn[2].weight.grad is not None
    assert freeze_layers(model.backbone, 0) == 0


def test_freeze_layers_rejects_more_layers_than_there_are():
    backbone = SmallBackbone((4, 8), (4, 2), image_size=8)  # 4 conv layers
    with pytest.raises(ValueError, match="from 0 to 4"):
        freeze_layers(backbone, 5)
    with pytest.raises(ValueError, match="integer"):
        freeze_layers(backbone, -1)
    with pytest.raises(ValueError, match="integer"):
        freeze_layers(backbone, "2")
    with pytest.raises(ValueError, match="expected module as a torch nn.Module"):
        freeze_layers([nn.Linear(2, 2)], 1)


def test_parameter_groups_cover_every_trainable_parameter_once():
    model = SSD(TINY)
    freeze_layers(model.backbone, 1)
    groups = parameter_groups(model, lr=1e-3, early_lr=1e-4, early_layers=3)
    early, rest = groups
    assert (early["lr"], rest["lr"]) == (1e-4, 1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(trainable)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    early_ids = {id(p) for p in early["params"]}
    assert id(convs[0].weight) not in early_ids  # frozen: in no group
    assert id(convs[1].weight) in early_ids and id(convs[2].weight) in early_ids
    assert id(convs[3].weight) not in early_ids
    optimizer = torch.optim.Adam(groups)  # torch accepts them
    assert [g["lr"] for g in optimizer.param_groups] == [1e-4, 1e-3]


def test_parameter_groups_reject_bad_input():
    model = SSD(TINY)
    with pytest.raises(ValueError, match="early_layers"):
        parameter_groups(model, 1e-3, 1e-4, early_layers=999)
    with pytest.raises(ValueError, match="lr"):
        parameter_groups(model, -1.0, 1e-4)
    with pytest.raises(ValueError, match="early_lr"):
        parameter_groups(model, 1e-3, "small")
    with pytest.raises(ValueError, match="lr"):
        parameter_groups(model, float("nan"), 1e-4)
    with pytest.raises(ValueError, match="early_layers"):
        parameter_groups(model, 1e-3, 1e-4, early_layers=1.5)
    with pytest.raises(ValueError, match="early_layers"):
        parameter_groups(model, 1e-3, 1e-4, early_layers=True)
    with pytest.raises(ValueError, match="expected model as a torch nn.Module"):
        parameter_groups(list(model.parameters()), 1e-3, 1e-4)


def test_vgg16_backbone_builds_without_download_and_feeds_ssd():
    backbone = vgg16_backbone(extra_widths=(64,))
    config = SSDConfig(
        image_size=32,
        num_classes=2,
        feature_map_sizes=(4, 2, 1),
        scales=(0.2, 0.5, 0.8, 1.0),
        aspect_ratios=((2,), (2,), (2,)),
    )
    model = SSD(config, backbone=backbone).eval()
    with torch.no_grad():
        logits, offsets = model(torch.rand(1, 3, 32, 32))
    assert logits.shape == (1, config.anchors().shape[0], 3)
    assert offsets.shape == (1, config.anchors().shape[0], 4)
    # VGG16's first ten conv layers (conv1_1 .. conv4_3) freeze; the rest still trains.
    assert freeze_layers(backbone.features, 10) == 10
    convs = [m for m in backbone.features if isinstance(m, nn.Conv2d)]
    assert not any(p.requires_grad for m in convs[:10] for p in m.parameters())
    assert all(p.requires_grad for m in convs[10:] for p in m.parameters())


def test_vgg16_backbone_loads_a_local_state_dict(tmp_path):
    # A whole VGG16's state dict, as torchvision's vgg16().state_dict() names it, with made-up
    # values (its classifier is not needed: SSD drops it).
    reference = vgg16_backbone(extra_widths=()).features
    state = {f"features.{k}": torch.randn_like(v) for k, v in reference.state_dict().items()}
    state["classifier.0.bias"] = torch.zeros(4096)
    torch.save(state, tmp_path / "vgg16.pt")
    backbone = vgg16_backbone(weights_path=tmp_path / "vgg16.pt", extra_widths=())
    torch.testing.assert_close(backbone.features[0].weight, state["features.0.weight"])
    torch.testing.assert_close(backbone.features[28].bias, state["features.28.bias"])
    # A file that is not VGG16 weights is a clear error.
    torch.save({"conv.weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="VGG16"):
        vgg16_backbone(weights_path=tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        vgg16_backbone(weights_path=tmp_path / "junk.pt")


def test_vgg16_backbone_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        vgg16_backbone(weights_path=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="expected weights_path as a file path"):
        vgg16_backbone(weights_path=16)
    for widths in ((0,), (64.0,), 64, "64"):
        with pytest.raises(ValueError, match="expected extra_widths as integers"):
            vgg16_backbone(extra_widths=widths)


def test_vgg16_backbone_has_torchvision_vgg16_layers():
    from torchvision.models import vgg16

    with torch.device("meta"):
        reference = vgg16(weights=None).features
    ours = vgg16_backbone(extra_widths=()).features
    assert [type(m) for m in ours] == [type(m) for m in reference]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_vgg_backbone_normalises_like_imagenet():
    """Loaded ImageNet VGG16 weights see images normalised as they were trained on."""
    backbone = vgg16_backbone(extra_widths=(64,)).eval()
    images = torch.rand(1, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = backbone.features[:23]((images - mean) / std)
        torch.testing.assert_close(backbone(images)[0], expected)
    assert "mean" not in backbone.state_dict()  # a constant, not a weight
