"""Tests for ssd_lesson.ssd300: the real SSD300, checked against torchvision's ssd300_vgg16.

torchvision's model (random weights, nothing downloaded) is the oracle: its state dict, saved to a
file, is loaded into ours, and for the same images every anchor's class scores and offsets, the
anchors and the detections must be torchvision's.
"""

import pytest
import torch
from torch import nn
from torch.testing import assert_close
from torchvision.models import vgg16
from torchvision.models.detection import ssd300_vgg16 as torchvision_ssd300_vgg16
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.ssd import SSD as TorchvisionSSD
from torchvision.models.detection.ssd import SSDFeatureExtractorVGG

from ssd_lesson.anchors import ssd300_anchors
from ssd_lesson.checkpoints import load_checkpoint, save_checkpoint
from ssd_lesson.inference import detect
from ssd_lesson.model import SSD, SSDConfig
from ssd_lesson.model import ssd300_config as ssd300_config_from_model
from ssd_lesson.ssd300 import (
    IMAGE_MEAN,
    IMAGE_STD,
    TORCHVISION_BACKBONE_FILE,
    TORCHVISION_WEIGHTS_FILE,
    SSD300Backbone,
    hub_weights_path,
    ssd300_config,
    ssd300_vgg16,
)

COCO_CLASSES = 90  # torchvision's num_classes=91 counts the background too
TORCHVISION_PARAMETERS = 35_641_826  # ssd300_vgg16(num_classes=91)


@pytest.fixture(scope="module")
def torchvision_model():
    torch.manual_seed(0)
    model = torchvision_ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91).eval()
    # Untrained, it is absurdly sure of itself: hundreds of anchors score the same float32 just
    # below 1, and NMS may keep either of two equal scores. Smaller class weights avoid the ties.
    with torch.no_grad():
        for conv in model.head.classification_head.module_list:
            conv.weight.mul_(0.1)
    return model


@pytest.fixture(scope="module")
def torchvision_file(torchvision_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / TORCHVISION_WEIGHTS_FILE
    torch.save(torchvision_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def model(torchvision_file):
    config = ssd300_config(COCO_CLASSES, "torchvision")
    return ssd300_vgg16(config, weights_path=torchvision_file).eval()


@pytest.fixture(scope="module")
def images():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 300, 300, generator=generator)


@pytest.fixture(scope="module")
def outputs(model, torchvision_model, images):
    """(ours, torchvision's) class logits and offsets for the same two images."""
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        ours = model(images)
        # torchvision's transform normalises outside the network; ours does it inside.
        features = torchvision_model.backbone((images - mean) / std)
        theirs = torchvision_model.head(list(features.values()))
    return ours, (theirs["cls_logits"], theirs["bbox_regression"]), features


# --- The network ---------------------------------------------------------------------------------


def test_parameter_count_equals_torchvision(torchvision_model):
    model = ssd300_vgg16(ssd300_config(COCO_CLASSES))
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in torchvision_model.parameters())
    assert count == TORCHVISION_PARAMETERS
    assert isinstance(model, SSD) and isinstance(model.backbone, SSD300Backbone)
    assert model.num_anchors == 8732


def test_every_anchor_scores_and_offsets_equal_torchvision(outputs):
    (logits, offsets), (their_logits, their_offsets), _ = outputs
    assert logits.shape == (2, 8732, COCO_CLASSES + 1)
    assert offsets.shape == (2, 8732, 4)
    assert_close(logits, their_logits, rtol=0, atol=1e-4)
    assert_close(offsets, their_offsets, rtol=0, atol=1e-4)


def test_feature_maps_equal_torchvision(model, images, outputs):
    _, _, theirs = outputs
    with torch.no_grad():
        ours = model.backbone(images)
    assert [tuple(m.shape[1:]) for m in ours] == [
        (512, 38, 38),
        (1024, 19, 19),
        (512, 10, 10),
        (256, 5, 5),
        (256, 3, 3),
        (256, 1, 1),
    ]
    for mine, their in zip(ours, theirs.values(), strict=True):
        assert_close(mine, their, rtol=0, atol=1e-4)


def test_state_dict_names_are_torchvisions(model, torchvision_model):
    theirs = torchvision_model.state_dict()
    renamed = {
        k.replace("head.classification_head.module_list.", "class_heads.").replace(
            "head.regression_head.module_list.", "box_heads."
        )
        for k in theirs
    }
    assert set(model.state_dict()) == renamed
    # The normalisation constants are not weights: not in the state dict.
    assert not any("image_" in k for k in model.state_dict())
    assert_close(model.backbone.scale_weight, theirs["backbone.scale_weight"])


def test_fresh_model_starts_like_torchvision():
    backbone = SSD300Backbone()
    assert torch.all(backbone.scale_weight == 20)
    pools = [m for m in backbone.modules() if isinstance(m, nn.MaxPool2d)]
    assert [p.ceil_mode for p in pools[:4]] == [False, False, True, False]
    fc6 = backbone.extra[0][7][1]
    assert fc6.dilation == (6, 6) and fc6.out_channels == 1024


# --- Anchors and detections ----------------------------------------------------------------------


def test_torchvision_preset_anchors_equal_torchvision(torchvision_model, outputs):
    _, _, features = outputs
    image_list = ImageList(torch.zeros(1, 3, 300, 300), [(300, 300)])
    (theirs,) = torchvision_model.anchor_generator(image_list, list(features.values()))
    anchors = ssd300_config(COCO_CLASSES, "torchvision").anchors()
    assert anchors.shape == (8732, 4)
    assert_close(anchors, theirs / 300)


def test_paper_preset_anchors_are_ssd300_anchors():
    config = ssd300_config(20)
    assert_close(config.anchors(), ssd300_anchors())
    assert config.steps is None and config.image_size == 300


def test_detect_equals_torchvision_postprocess(torchvision_model, outputs):
    (logits, offsets), (their_logits, their_offsets), _ = outputs
    anchors = ssd300_config(COCO_CLASSES, "torchvision").anchors()
    theirs = TorchvisionSSD.postprocess_detections(
        torchvision_model,
        {"cls_logits": their_logits, "bbox_regression": their_offsets},
        [anchors * 300] * 2,
        [(300, 300)] * 2,
    )
    ours = detect(anchors, logits, offsets, candidates_per_class=400)
    for found, expected in zip(ours, theirs, strict=True):
        assert len(found.scores) > 0
        assert torch.equal(found.labels, expected["labels"])
        assert_close(found.scores, expected["scores"], rtol=0, atol=1e-6)
        # torchvision decodes and clips in pixels: the same boxes up to float rounding.
        assert_close(found.boxes, expected["boxes"] / 300, rtol=0, atol=1e-5)


# --- Config and checkpoints ----------------------------------------------------------------------


def test_ssd300_config_is_importable_from_model_and_round_trips():
    config = ssd300_config_from_model(COCO_CLASSES, "torchvision")
    assert config == ssd300_config(COCO_CLASSES, preset="torchvision")
    assert hash(config) == hash(SSDConfig.from_dict(config.to_dict()))
    assert SSDConfig.from_dict(config.to_dict()) == config
    assert config.backbone == "ssd300_vgg16"
    assert config.steps == pytest.approx([8 / 300, 16 / 300, 32 / 300, 64 / 300, 1 / 3, 1.0])
    assert config.anchors_per_location() == [4, 6, 6, 6, 4, 4]


def test_checkpoint_round_trip_rebuilds_the_vgg_backbone(model, images, outputs, tmp_path):
    path = save_checkpoint(tmp_path / "ssd300.pt", model)
    loaded, config = load_checkpoint(path)
    assert config == model.config and isinstance(loaded.backbone, SSD300Backbone)
    with torch.no_grad():
        logits, _ = loaded(images[:1])
    (expected, _), _, _ = outputs
    assert_close(logits, expected[:1], rtol=0, atol=1e-5)  # batch 1 vs 2: float rounding


def test_hub_weights_path_points_into_torch_hub_cache():
    path = hub_weights_path()
    assert path.name == TORCHVISION_WEIGHTS_FILE == "ssd300_vgg16_coco-b556d3b4.pth"
    assert path.parent.name == "checkpoints"
    assert str(path).startswith(torch.hub.get_dir())
    assert hub_weights_path(TORCHVISION_BACKBONE_FILE).name == TORCHVISION_BACKBONE_FILE
    with pytest.raises(ValueError, match="file name"):
        hub_weights_path("checkpoints/x.pth")


# --- The VGG16 backbone file ---------------------------------------------------------------------


def random_vgg16_features() -> nn.Sequential:
    """torchvision's vgg16().features with random weights; the classifier is never built."""
    with torch.device("meta"):
        features = vgg16(weights=None).features
    features = features.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(2)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            layer.weight.data.normal_(0, 0.01, generator=generator)
            layer.bias.data.normal_(0, 0.01, generator=generator)
    return features


@pytest.mark.parametrize("layout", ["whole_vgg16", "features_only"])
def test_backbone_weights_land_where_torchvision_puts_them(layout, tmp_path):
    features = random_vgg16_features()
    state = {f"features.{k}": v.clone() for k, v in features.state_dict().items()}
    if layout == "whole_vgg16":  # the hub file also holds a classifier, which SSD drops
        state["classifier.0.weight"] = torch.zeros(2, 3)
    else:
        state = {k[len("features.") :]: v for k, v in state.items()}
    path = tmp_path / TORCHVISION_BACKBONE_FILE
    torch.save(state, path)
    model = ssd300_vgg16(ssd300_config(20), backbone_weights_path=path)
    # torchvision's ssd300_vgg16(weights_backbone=...) hands vgg16().features to this extractor.
    oracle = SSDFeatureExtractorVGG(features, highres=False).state_dict()
    ours = model.backbone.state_dict()
    vgg_keys = [
        k
        for k in oracle
        if k.startswith("features.") or k[:10] in ("extra.0.1.", "extra.0.3.", "extra.0.5.")
    ]
    assert len(vgg_keys) == 26  # conv1_1 .. conv5_3, weight and bias
    for key in vgg_keys:
        assert torch.equal(ours[key], oracle[key]), key
    # fc6, fc7 and the extras keep their fresh initialisation.
    assert not torch.equal(ours["extra.0.7.1.weight"], oracle["extra.0.7.1.weight"])


# --- Errors --------------------------------------------------------------------------------------


def test_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        ssd300_vgg16(ssd300_config(COCO_CLASSES), weights_path=missing)
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        ssd300_vgg16(ssd300_config(COCO_CLASSES), backbone_weights_path=missing)


def test_weights_of_another_class_count_say_so(torchvision_file):
    with pytest.raises(ValueError, match=r"91 classes \(90 \+ background\).*ssd300_config\(90"):
        ssd300_vgg16(ssd300_config(20), weights_path=torchvision_file)


def test_other_files_are_rejected(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="could not read weights"):
        ssd300_vgg16(ssd300_config(20), weights_path=junk)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="unexpected key 'conv.weight'"):
        ssd300_vgg16(ssd300_config(20), weights_path=other)
    with pytest.raises(ValueError, match="does not hold VGG16 weights"):
        ssd300_vgg16(ssd300_config(20), backbone_weights_path=other)
    partial = tmp_path / "partial.pth"
    torch.save({"backbone.scale_weight": torch.ones(512)}, partial)
    with pytest.raises(ValueError, match="missing"):
        ssd300_vgg16(ssd300_config(20), weights_path=partial)
    wrong_shape = tmp_path / "wrong_shape.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, wrong_shape)
    with pytest.raises(ValueError, match="missing"):
        ssd300_vgg16(ssd300_config(20), backbone_weights_path=wrong_shape)


def test_bad_arguments(tmp_path, torchvision_file):
    with pytest.raises(ValueError, match="not both"):
        ssd300_vgg16(ssd300_config(90), torchvision_file, backbone_weights_path=torchvision_file)
    with pytest.raises(ValueError, match="SSD300 config"):
        ssd300_vgg16(SSDConfig())
    with pytest.raises(ValueError, match="SSD300 config"):
        ssd300_vgg16(None)
    with pytest.raises(ValueError, match="weights_path as a file path"):
        ssd300_vgg16(ssd300_config(20), weights_path=3)
    with pytest.raises(ValueError, match="preset"):
        ssd300_config(20, preset="coco")
    with pytest.raises(ValueError, match="num_classes"):
        ssd300_config(0)
    with pytest.raises(ValueError, match="image_size 300"):
        SSDConfig(image_size=64, backbone="ssd300_vgg16")
    with pytest.raises(ValueError, match="backbone as one of"):
        SSDConfig(backbone="resnet")
