"""SSD300: the paper's network, layer for layer the same as torchvision's ``ssd300_vgg16``.

* **Backbone** (``SSD300Backbone``): VGG16's convolutions, with three changes from the paper:
  pool3 rounds up (75 -> 38 cells, so conv4_3 is 38 x 38), pool5 is 3 x 3 with stride 1 (conv5_3
  keeps its 19 x 19 cells), and VGG's first two fully connected layers become convolutions:
  fc6 a 3 x 3 convolution dilated by 6 ("atrous": it sees 13 x 13 cells with 9 weights), fc7 a
  1 x 1 convolution, both with 1024 channels. conv4_3's features are L2-normalised per cell and
  multiplied by a learned scale per channel, 20 at the start (conv4_3's values are much larger
  than the later maps'; the paper's ParseNet trick). Four extra blocks (a 1 x 1 convolution that
  halves the channels, then a 3 x 3 one) shrink the map to 10, 5, 3 and 1 cells.
* **Six maps**: conv4_3 (38 x 38, 512 channels), fc7 (19, 1024), conv8_2 (10, 512), conv9_2
  (5, 256), conv10_2 (3, 256), conv11_2 (1, 256), with 4, 6, 6, 6, 4, 4 anchors per cell:
  8732 anchors.
* **Heads**: ``ssd_lesson.model.SSD``'s, a 3 x 3 convolution per map for the class scores and
  one for the offsets, exactly like torchvision's ``SSDHead``.

``ssd300_config`` gives the anchors: ``"paper"`` (the paper's VOC scales, cells tiling the
image) or ``"torchvision"`` (torchvision's COCO scales and pixel steps 8, 16, 32, 64, 100, 300).
``ssd300_vgg16`` builds the model and can load torchvision's weight files from disk; nothing is
ever downloaded. With torchvision's COCO weights (``hub_weights_path()``, if torchvision has
downloaded them before) use ``ssd300_config(90, "torchvision")``: they were trained with those
anchors, and COCO's 80 classes are numbered 1..90 with gaps.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssd_lesson import checks
from ssd_lesson.anchors import (
    SSD300_ASPECT_RATIOS,
    SSD300_FEATURE_MAP_SIZES,
    SSD300_VOC_FIRST_SCALE,
    paper_scales,
)
from ssd_lesson.model import SSD, VGG_CONV4_3_END, VGG_CONV5_3_END, SSDConfig

SSD300_IMAGE_SIZE = 300
# torchvision's ssd300_vgg16 (its COCO setting): scales and the pixel distance between cells.
TORCHVISION_SCALES = (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
TORCHVISION_STEPS_PX = (8, 16, 32, 64, 100, 300)
# torchvision's ssd300_vgg16 normalises images with image_mean and image_std = 1/255: it turns
# [0, 1] back into 0..255 and subtracts the ImageNet mean colour (the Caffe VGG16's convention).
# Its weights expect exactly this, so the model does it itself and takes images in [0, 1].
IMAGE_MEAN = (0.48235, 0.45882, 0.40784)
IMAGE_STD = (1.0 / 255.0,) * 3
# conv4_3's L2 normalisation starts with this scale on every channel (the paper's value).
L2_SCALE_INIT = 20.0
# The files torchvision keeps in its hub cache (torch.hub.get_dir() / "checkpoints"): the whole
# model trained on COCO, and the ImageNet VGG16 its backbone starts from.
TORCHVISION_WEIGHTS_FILE = "ssd300_vgg16_coco-b556d3b4.pth"
TORCHVISION_BACKBONE_FILE = "vgg16_features-amdegroot-88682ab5.pth"
# VGG16 up to conv4_3: numbers are 3 x 3 convolutions (+ ReLU) with that many channels, "M" a
# 2 x 2 max pool, "C" the same pool rounding up (pool3: 75 -> 38 cells instead of 37).
VGG16_TO_CONV4_3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512)
# The extra blocks after fc7: (in, middle, out channels, stride, padding of the 3 x 3 conv).
EXTRA_BLOCKS = ((1024, 256, 512, 2, 1), (512, 128, 256, 2, 1), (256, 128, 256, 1, 0))
EXTRA_BLOCKS += ((256, 128, 256, 1, 0),)
# torchvision's names for the parts of its SSD -> ours (the backbone has the same layout).
TORCHVISION_PREFIXES = {
    "backbone.": "backbone.",
    "head.classification_head.module_list.": "class_heads.",
    "head.regression_head.module_list.": "box_heads.",
}


def ssd300_config(num_classes: int, preset: str = "paper") -> SSDConfig:
    """SSD300's configuration: 300-pixel images, maps 38, 19, 10, 5, 3, 1, 8732 anchors.

    preset: ``"paper"``: the paper's PASCAL VOC scales (0.1, then 0.2 .. 0.9 and one more) with
    the cells tiling the image; ``"torchvision"``: torchvision ``ssd300_vgg16``'s anchors, the
    paper's COCO scales (0.07, then 0.15 .. 0.87, 1.05) and pixel steps 8, 16, 32, 64, 100, 300.
    """
    num_classes, preset = checks.ssd300_config_inputs(num_classes, preset)
    if preset == "paper":
        scales = [SSD300_VOC_FIRST_SCALE] + paper_scales(len(SSD300_FEATURE_MAP_SIZES) - 1)
        steps = None
    else:
        scales = TORCHVISION_SCALES
        steps = tuple(step / SSD300_IMAGE_SIZE for step in TORCHVISION_STEPS_PX)
    return SSDConfig(
        image_size=SSD300_IMAGE_SIZE,
        num_classes=num_classes,
        feature_map_sizes=SSD300_FEATURE_MAP_SIZES,
        scales=scales,
        aspect_ratios=SSD300_ASPECT_RATIOS,
        steps=steps,
        backbone="ssd300_vgg16",
    )


def _vgg_layers(plan, channels: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for item in plan:
        if item in ("M", "C"):
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=item == "C"))
        else:
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    return layers


class SSD300Backbone(nn.Module):
    """Images in [0, 1] (B, 3, 300, 300) -> SSD300's six feature maps, finest first.

    The layers and their names are torchvision's ``SSDFeatureExtractorVGG``'s: ``features``
    (conv1_1 .. conv4_3), ``scale_weight`` (conv4_3's L2 scale) and ``extra`` (block 0: pool4,
    conv5_1 .. conv5_3, pool5, fc6, fc7; blocks 1-4: conv8 .. conv11), so its state dict reads
    theirs as it is. Initialised as torchvision does (Kaiming for VGG, Xavier for the rest).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("image_mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("image_std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), False)
        self.features = nn.Sequential(*_vgg_layers(VGG16_TO_CONV4_3, 3))  # 38 x 38
        self.scale_weight = nn.Parameter(torch.full((512,), L2_SCALE_INIT))
        fc = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),  # pool5: keeps 19 x 19
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),  # fc6, atrous
            nn.ReLU(inplace=True),
            nn.Conv2d(1024, 1024, kernel_size=1),  # fc7
            nn.ReLU(inplace=True),
        )
        conv5 = _vgg_layers(("M", 512, 512, 512), 512)  # pool4, conv5_1 .. conv5_3: 19 x 19
        extra = [nn.Sequential(*conv5, fc)]
        for c_in, c_mid, c_out, stride, padding in EXTRA_BLOCKS:
            extra.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c_mid, kernel_size=1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(c_mid, c_out, kernel_size=3, stride=stride, padding=padding),
                    nn.ReLU(inplace=True),
                )
            )
        self.extra = nn.ModuleList(extra)
        vgg = [*self.features, *conv5]
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                if any(layer is v for v in vgg):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, images: Tensor) -> list[Tensor]:
        x = (images - self.image_mean) / self.image_std  # torchvision's normalisation
        x = self.features(x)
        # L2 norm of each cell's 512 numbers -> 1, then times the learned scale per channel.
        maps = [self.scale_weight.view(1, -1, 1, 1) * F.normalize(x, dim=1)]
        for block in self.extra:
            x = block(x)
            maps.append(x)
        return maps


def ssd300_vgg16(config: SSDConfig, weights_path=None, backbone_weights_path=None) -> SSD:
    """SSD300 with its VGG16 backbone, as an ``SSD``: ``model(images)`` with images in [0, 1].

    Args:
        config: ``ssd300_config(num_classes, preset)``.
        weights_path: a torchvision ``ssd300_vgg16`` state dict saved with ``torch.save``
            (``hub_weights_path()`` is where torchvision keeps its COCO weights); its class count
            must be ``config.num_classes + 1``.
        backbone_weights_path: instead, only VGG16's convolutions: a state dict of torchvision's
            ``vgg16()`` or of its ``features`` (``hub_weights_path(TORCHVISION_BACKBONE_FILE)``
            is the one torchvision's ssd300_vgg16 starts from). fc6, fc7, the extra layers and
            the heads stay randomly initialised, as in torchvision.

    Files are read with ``weights_only=True``; nothing is downloaded. A missing file is a
    FileNotFoundError, a file that does not fit a ValueError saying what differs.
    """
    config, weights_path, backbone_weights_path = checks.ssd300_inputs(
        config, weights_path, backbone_weights_path
    )
    model = SSD(config)
    if weights_path is not None:
        state = _renamed(_read_state_dict(weights_path), TORCHVISION_PREFIXES, weights_path)
        model.load_state_dict(_fitting(model, state, weights_path, "an ssd300_vgg16 state dict"))
    if backbone_weights_path is not None:
        state = _vgg_features(_read_state_dict(backbone_weights_path), backbone_weights_path)
        expected = {k: v for k, v in model.state_dict().items() if k in _vgg_keys()}
        state = _fitting(model, state, backbone_weights_path, "VGG16 weights", expected)
        model.load_state_dict(state, strict=False)
    return model


def hub_weights_path(file: str = TORCHVISION_WEIGHTS_FILE) -> Path:
    """Where torchvision keeps a downloaded weights file: ``torch.hub.get_dir()/checkpoints``.

    Nothing is downloaded: check ``.is_file()`` before passing it to ``ssd300_vgg16``.
    """
    file = checks.file_name(file)
    return Path(torch.hub.get_dir()) / "checkpoints" / file


def _read_state_dict(path: Path) -> dict:
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # a corrupt or truncated file, or a pickle of other objects
        raise ValueError(f"could not read weights from {path}: {type(err).__name__}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"expected a state dict (names -> tensors) in {path}")
    return state


def _renamed(state: dict, prefixes: dict, path: Path) -> dict:
    renamed = {}
    for key, value in state.items():
        theirs = next((p for p in prefixes if key.startswith(p)), None)
        if theirs is None:
            raise ValueError(
                f"{path} does not hold torchvision ssd300_vgg16 weights: unexpected key {key!r} "
                f"(expected names starting with {', '.join(prefixes)})"
            )
        renamed[prefixes[theirs] + key[len(theirs) :]] = value
    return renamed


def _vgg_keys() -> dict:
    """torchvision vgg16().features index -> our backbone's name, for conv1_1 .. conv5_3."""
    keys = {}
    for index in range(VGG_CONV5_3_END):
        if index < VGG_CONV4_3_END:
            keys[index] = f"backbone.features.{index}"
        else:  # pool4 .. conv5_3 open torchvision's extra block 0, as ours
            keys[index] = f"backbone.extra.0.{index - VGG_CONV4_3_END}"
    return {f"{name}.{p}": (i, p) for i, name in keys.items() for p in ("weight", "bias")}


def _vgg_features(state: dict, path: Path) -> dict:
    """A vgg16() or vgg16().features state dict -> our names; the classifier is dropped."""
    if any(key.startswith("features.") for key in state):
        state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    ours = {layer: name for name, layer in _vgg_keys().items()}
    renamed = {}
    for key, value in state.items():
        match = re.fullmatch(r"(\d+)\.(weight|bias)", key)
        layer = (int(match[1]), match[2]) if match else None
        if layer not in ours:
            raise ValueError(
                f"{path} does not hold VGG16 weights: unexpected key {key!r} (expected "
                "features.0.weight .. features.28.bias)"
            )
        renamed[ours[layer]] = value
    return renamed


def _fitting(model: SSD, state: dict, path: Path, what: str, expected=None) -> dict:
    """``state`` if it has exactly the expected names and shapes; else a ValueError saying why."""
    expected = model.state_dict() if expected is None else expected
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{path} does not hold {what}: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    for name, tensor in expected.items():
        if state[name].shape == tensor.shape:
            continue
        hint = ""
        if name.startswith("class_heads."):
            per_cell = model.config.anchors_per_location()[int(name.split(".")[1])]
            scores = state[name].shape[0] // per_cell
            hint = (
                f": the file scores {scores} classes ({scores - 1} + background), the config "
                f"{model.config.num_classes + 1}; use ssd300_config({scores - 1}, ...)"
            )
        raise ValueError(
            f"{path}: expected {name} of shape {tuple(tensor.shape)}, got "
            f"{tuple(state[name].shape)}{hint}"
        )
    return state
