"""The SSD network: a backbone that makes feature maps, and a small head on every map.

* The **backbone** turns an image into several feature maps, finest first (for the lesson's
  64-pixel images: 16 x 16, 8 x 8, 4 x 4, 3 x 3, 2 x 2 and 1 x 1 grids).
* On every map, two 3 x 3 convolutions (the **heads**) look at each cell and output, for each of
  the cell's ``A_k`` anchors, ``C + 1`` class scores and 4 offsets.
* The outputs of all maps are flattened and concatenated in the same order as
  ``ssd_lesson.anchors.make_anchors``: map by map, cell by cell in reading order, then anchor by
  anchor within a cell. So row ``i`` of the predictions belongs to anchor ``i``.

``SSDConfig`` holds everything the anchors and the heads must agree on. ``SSD`` with its default
``SmallBackbone`` is the lesson's model, small enough to train on a laptop CPU in a minute.
``vgg16_backbone`` is a simplified VGG16 backbone (torchvision's VGG16, never downloaded), for
learners with time and a GPU; ``ssd300_config`` and ``ssd300_vgg16`` (from ``ssd_lesson.ssd300``,
available here too) are the paper's whole SSD300, layer for layer torchvision's.
``freeze_layers`` and ``parameter_groups`` are the two fine-tuning tools of the brief's recipe.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import Tensor, nn

from ssd_lesson import checks
from ssd_lesson.anchors import anchors_per_location, make_anchors
from ssd_lesson.data.augment import IMAGENET_MEAN

# At the start of training, every anchor says "background" with this probability. Nearly all
# anchors are background, so this is the right first guess: the first loss is lower (6.1 against
# 7.4 with a zero bias on lesson 06's first batch) and the first steps need not push thousands of
# anchors towards background. (The same idea as RetinaNet's "prior" bias.)
BACKGROUND_PRIOR = 0.99
# The backbones SSD(config) can build by name: SmallBackbone, or SSD300's VGG16.
BACKBONES = ("small", "ssd300_vgg16")


@dataclass(frozen=True)
class SSDConfig:
    """Everything the anchors and the network must agree on.

    Args:
        image_size: side of the square input images, pixels.
        num_classes: C, object classes without background.
        feature_map_sizes: side of each feature map, finest first.
        scales: anchor scale per map plus one more (see ``make_anchors``), fractions.
        aspect_ratios: extra aspect ratios per map, e.g. ``((2,), (2, 3))``.
        widths: channels of the small backbone's stages, one per stage (see ``stage_sizes``).
        steps: per map, the distance between cell centres as a fraction of the image side, or
            None for ``1 / f`` (see ``make_anchors``); torchvision's SSD300 uses 8/300, 16/300, ...
        backbone: which backbone ``SSD(config)`` builds: ``"small"`` (``SmallBackbone``, sized by
            ``widths``) or ``"ssd300_vgg16"`` (SSD300's VGG16, see ``ssd_lesson.ssd300``).
    """

    image_size: int = 64
    num_classes: int = 4
    # Six maps, as in SSD300, from 16 x 16 (stride 4: objects of ~8 pixels) down to 1 x 1. The
    # 3 x 3 and 2 x 2 maps give large objects anchors near their centres wherever they are.
    feature_map_sizes: tuple[int, ...] = (16, 8, 4, 3, 2, 1)
    # Anchor scales: the shapes dataset's objects are 0.14 to 0.7 of the image side.
    scales: tuple[float, ...] = (0.12, 0.22, 0.36, 0.5, 0.65, 0.82, 1.0)
    aspect_ratios: tuple[tuple[float, ...], ...] = ((2,),) * 6
    # One width per backbone stage: 64 -> 32 -> 16 (map 1) -> 8 -> 4 -> 3 -> 2 -> 1.
    widths: tuple[int, ...] = (16, 32, 64, 96, 96, 96, 96)
    steps: tuple[float, ...] | None = None
    backbone: str = "small"

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int):
            raise ValueError(f"expected image_size as an integer, got {self.image_size!r}")
        if self.image_size < 8:
            raise ValueError(f"expected image_size >= 8 pixels, got {self.image_size}")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int):
            raise ValueError(f"expected num_classes as an integer, got {self.num_classes!r}")
        if self.num_classes < 1:
            raise ValueError(
                f"expected num_classes >= 1 (object classes, without background), got "
                f"{self.num_classes}"
            )
        # Tuples, so that the config stays hashable and equal to a copy read from a checkpoint.
        for name, convert in (
            ("feature_map_sizes", tuple),
            ("scales", lambda values: tuple(float(s) for s in values)),
            ("aspect_ratios", lambda values: tuple(tuple(float(r) for r in rs) for rs in values)),
            ("widths", tuple),
            ("steps", lambda values: None if values is None else tuple(float(s) for s in values)),
        ):
            value = getattr(self, name)
            try:
                if isinstance(value, str):
                    raise TypeError
                object.__setattr__(self, name, convert(value))
            except (TypeError, ValueError):
                message = f"expected {name} as a sequence of numbers, got {value!r}"
                raise ValueError(message) from None
        if not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in self.widths):
            raise ValueError(f"expected widths as integers >= 1, got {self.widths!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"expected backbone as one of {BACKBONES}, got {self.backbone!r}")
        if self.backbone == "ssd300_vgg16" and (
            self.image_size != 300 or self.feature_map_sizes != (38, 19, 10, 5, 3, 1)
        ):
            raise ValueError(
                f"expected image_size 300 and feature_map_sizes (38, 19, 10, 5, 3, 1) for the "
                f"ssd300_vgg16 backbone, got {self.image_size} and {self.feature_map_sizes}; "
                "use ssd300_config(num_classes)"
            )
        self.anchors()  # make_anchors checks sizes, scales and ratios, and says what is wrong

    def anchors(self) -> Tensor:
        """All anchors, xyxy fractions of the image, in the heads' order: (A, 4)."""
        return make_anchors(
            self.feature_map_sizes, self.scales, self.aspect_ratios, steps=self.steps
        )

    def anchors_per_location(self) -> list[int]:
        """A_k, the anchors per cell on each map."""
        return anchors_per_location(self.aspect_ratios)

    def to_dict(self) -> dict:
        """Plain Python values only (for checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> SSDConfig:
        """The inverse of ``to_dict``; unknown keys are an error."""
        if not isinstance(values, dict):
            raise ValueError(f"expected a dict of SSDConfig fields, got {type(values).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"expected SSDConfig fields {sorted(known)}, got unknown {unknown}")
        return cls(**values)


def small_config(num_classes: int = 4, image_size: int = 64) -> SSDConfig:
    """The lesson's configuration: 64-pixel images, six maps from 16 x 16 down to 1 x 1."""
    return SSDConfig(image_size=image_size, num_classes=num_classes)


def conv_block(
    in_channels: int, out_channels: int, stride: int = 1, kernel: int = 3, padding: int = 1
) -> nn.Sequential:
    """Convolution (3 x 3 by default), batch norm, ReLU: the small backbone's building block."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallBackbone(nn.Module):
    """A plain stack of stages, one block each, that ends in the requested feature maps.

    Stride-2 stages halve the image until it is as small as the first (finest) map; every later
    map is made by one more stage from the previous one: stride 2 if it halves it, otherwise an
    unpadded k x k convolution, which shrinks a map by k - 1 cells (4 x 4 -> 3 x 3 with k = 2,
    as SSD's last extra layers do). The first ``REFINED_STAGES`` stages get a second, stride-1
    block that sharpens their features.

    Args:
        widths: output channels of each stage; one per stage (see ``stage_sizes``).
        feature_map_sizes: the maps' sides, finest first.
        image_size: the input's side, pixels.
    """

    REFINED_STAGES = 4

    def __init__(self, widths, feature_map_sizes, image_size: int) -> None:
        super().__init__()
        plan = stage_sizes(image_size, feature_map_sizes)  # (size, kernel, stride) per stage
        if len(widths) != len(plan):
            raise ValueError(
                f"expected {len(plan)} widths for {image_size}-pixel images and maps "
                f"{tuple(feature_map_sizes)} (one per stage), got {len(widths)}"
            )
        stages, channels = [], 3
        for k, (width, (_, kernel, stride)) in enumerate(zip(widths, plan, strict=True)):
            padding = 1 if stride == 2 else 0
            blocks = [conv_block(channels, width, stride=stride, kernel=kernel, padding=padding)]
            if k < self.REFINED_STAGES:
                blocks.append(conv_block(width, width))
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.num_maps = len(feature_map_sizes)

    def forward(self, images: Tensor) -> list[Tensor]:
        maps, x = [], images
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps[-self.num_maps :]


def stage_sizes(image_size: int, feature_map_sizes) -> list[tuple[int, int, int]]:
    """How SmallBackbone reaches each map: (output size, kernel, stride) per stage."""
    sizes = [int(s) for s in feature_map_sizes]
    plan, size = [], image_size
    while size > sizes[0]:  # stride-2 stages down to the finest map
        size = (size + 1) // 2
        plan.append((size, 3, 2))
    if size != sizes[0]:
        raise ValueError(
            f"expected the first feature map size to be the image size halved a few times "
            f"({image_size} -> ... -> {size}), got {sizes[0]}"
        )
    for target in sizes[1:]:
        if target == (size + 1) // 2:
            plan.append((target, 3, 2))
        elif 1 <= size - target <= 2:
            plan.append((target, size - target + 1, 1))
        else:
            raise ValueError(
                f"expected each feature map to be half the previous one or 1-2 cells smaller, "
                f"got {size} -> {target} in {tuple(sizes)}"
            )
        size = target
    return plan


class SSD(nn.Module):
    """SSD: backbone -> feature maps -> per-map 3 x 3 heads -> predictions for every anchor.

    Args:
        config: the anchors and image size the heads must fit.
        backbone: a module mapping images (B, 3, H, W) to a list of feature maps, finest first.
            Default: the one ``config.backbone`` names: ``SmallBackbone(config.widths,
            config.feature_map_sizes, config.image_size)``, or ``ssd300.SSD300Backbone()``
            (randomly initialised; ``ssd300_vgg16`` loads weights into it).

    Raises ValueError at construction if the backbone's maps do not have the sizes in
    ``config.feature_map_sizes`` (the heads would then not line up with the anchors).
    """

    def __init__(self, config: SSDConfig, backbone: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(config, SSDConfig):
            raise ValueError(f"expected an SSDConfig, got {type(config).__name__}")
        self.config = config
        if backbone is None and config.backbone == "ssd300_vgg16":
            from ssd_lesson.ssd300 import SSD300Backbone  # here: ssd300 imports this module

            backbone = SSD300Backbone()
        elif backbone is None:
            backbone = SmallBackbone(config.widths, config.feature_map_sizes, config.image_size)
        self.backbone = backbone
        channels = self._check_backbone()
        num_scores = config.num_classes + 1
        self.class_heads = nn.ModuleList()
        self.box_heads = nn.ModuleList()
        for c, a in zip(channels, config.anchors_per_location(), strict=True):
            self.class_heads.append(nn.Conv2d(c, a * num_scores, 3, padding=1))
            self.box_heads.append(nn.Conv2d(c, a * 4, 3, padding=1))
        self._init_heads()
        self.num_anchors = int(config.anchors().shape[0])

    def _check_backbone(self) -> list[int]:
        """Dry run on one blank image: the maps' sizes must be the config's. -> channels."""
        size = self.config.image_size
        maps = _dry_run(self.backbone, size)
        got = [tuple(m.shape[-2:]) for m in maps]
        want = [(s, s) for s in self.config.feature_map_sizes]
        if got != want:
            raise ValueError(
                f"expected the backbone to make feature maps of sizes {want} for "
                f"{size} x {size} images (config.feature_map_sizes), got {got}; change the "
                "config's feature_map_sizes or image_size to match the backbone"
            )
        return [m.shape[1] for m in maps]

    def _init_heads(self) -> None:
        """Small random weights; class bias so that every anchor starts as likely background."""
        num_scores = self.config.num_classes + 1
        # softmax gives background e^b / (e^b + C) = BACKGROUND_PRIOR when b = log(p C / (1 - p))
        background_bias = math.log(
            BACKGROUND_PRIOR * self.config.num_classes / (1 - BACKGROUND_PRIOR)
        )
        for head in (*self.class_heads, *self.box_heads):
            nn.init.normal_(head.weight, std=0.01)
            nn.init.zeros_(head.bias)
        for head in self.class_heads:
            with torch.no_grad():
                head.bias.view(-1, num_scores)[:, 0] = background_bias

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """images (B, 3, H, W) in [0, 1] -> class_logits (B, A, C+1), box_offsets (B, A, 4).

        The images must have the model's dtype (float32 unless converted) and values in [0, 1]
        (up to ``checks.IMAGE_MARGIN``): 0..255 pixels would give confident garbage.
        """
        dtype = self.class_heads[0].weight.dtype
        checks.images(images, self.config.image_size, dtype)
        maps = self.backbone(images)
        num_scores = self.config.num_classes + 1
        class_logits, box_offsets = [], []
        for feature, class_head, box_head in zip(
            maps, self.class_heads, self.box_heads, strict=True
        ):
            class_logits.append(_flatten(class_head(feature), num_scores))
            box_offsets.append(_flatten(box_head(feature), 4))
        return torch.cat(class_logits, dim=1), torch.cat(box_offsets, dim=1)


def _dry_run(backbone: nn.Module, size: int) -> list[Tensor]:
    """The backbone's maps for one blank image, as shapes only where possible.

    On the "meta" device torch computes the output shapes without computing any numbers (SSD300's
    VGG16 would take half a second on a CPU); a backbone that cannot run there runs for real.
    """
    was_training = backbone.training
    backbone.eval()  # batch norm cannot train on one 1 x 1 map, and must not learn here
    try:
        with torch.no_grad():
            try:
                tensors = {**dict(backbone.named_parameters()), **dict(backbone.named_buffers())}
                shapes_only = {
                    name: torch.empty_like(t, device="meta") for name, t in tensors.items()
                }
                blank = torch.zeros(1, 3, size, size, device="meta")
                return list(torch.func.functional_call(backbone, shapes_only, (blank,)))
            except Exception:  # an operation without a meta version: run it for real
                return list(backbone(torch.zeros(1, 3, size, size)))
    finally:
        backbone.train(was_training)


def _flatten(head_output: Tensor, per_anchor: int) -> Tensor:
    """(B, A_k * n, H, W) -> (B, H * W * A_k, n): cell by cell in reading order, then anchor.

    The channels of a cell are [anchor 0's n numbers, anchor 1's n numbers, ...], so moving the
    channels last and reshaping keeps "cell-major, then anchor", the order of make_anchors.
    """
    batch = head_output.shape[0]
    return head_output.permute(0, 2, 3, 1).reshape(batch, -1, per_anchor)


# ----------------------------------------------------------------------------------------------
# The paper's backbone, and fine-tuning tools
# ----------------------------------------------------------------------------------------------
# torchvision's vgg16().features: 13 conv layers with ReLUs and 5 max-pools (31 modules). Index
# 23 is the 4th pool: everything before it is conv1_1 .. conv4_3 (stride 8), SSD's first map.
VGG_CONV4_3_END = 23
# Indices 23..29: pool4 and conv5_1 .. conv5_3 (stride 16), the second map. This simplified
# backbone drops the last pool (30); SSD300 keeps it as a 3 x 3 stride-1 pool before its dilated
# fc6 (see ssd_lesson.ssd300).
VGG_CONV5_3_END = 30
# torchvision's ImageNet VGG16 weights expect images normalised with ImageNet's mean and std.
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGBackbone(nn.Module):
    """VGG16 up to conv4_3 (map 1) and conv5_3 (map 2), then extra stride-2 blocks (maps 3..).

    A simplified SSD300 backbone: no dilated fc6/fc7 and no L2 normalisation of conv4_3 (the
    real one is ``ssd_lesson.ssd300``). Images in [0, 1] are first normalised as torchvision's
    ImageNet VGG16 weights expect: minus the ImageNet mean, divided by its standard deviation.
    """

    def __init__(self, features: nn.Sequential, extra_widths: tuple[int, ...]) -> None:
        super().__init__()
        # Not saved with the weights (persistent=False): they are constants of the weights' recipe.
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)
        self.features = features
        extras, channels = [], 512
        for width in extra_widths:
            extras.append(
                nn.Sequential(
                    nn.Conv2d(channels, width // 2, 1),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
                    nn.ReLU(inplace=True),
                )
            )
            channels = width
        self.extras = nn.ModuleList(extras)

    def forward(self, images: Tensor) -> list[Tensor]:
        conv4_3 = self.features[:VGG_CONV4_3_END]((images - self.mean) / self.std)
        x = self.features[VGG_CONV4_3_END:VGG_CONV5_3_END](conv4_3)
        maps = [conv4_3, x]
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        return maps


def vgg16_backbone(
    weights_path=None, extra_widths: tuple[int, ...] = (256, 256, 256)
) -> VGGBackbone:
    """The SSD backbone built on ``torchvision.models.vgg16(weights=None)``: nothing downloaded.

    Args:
        weights_path: optional path to a VGG16 state dict saved with ``torch.save`` (either the
            whole classifier's or only ``features``'); loaded with ``weights_only=True``.
        extra_widths: channels of the extra stride-2 blocks after conv5_3, one map each.

    For 64 x 64 images the maps are 8, 4, 2, 1, 1...: use ``feature_map_sizes`` to match, e.g.
    ``SSDConfig(image_size=64, feature_map_sizes=(8, 4, 2, 1), ...)`` with two extras.
    """
    from torchvision.models import vgg16  # local import: only this recipe needs it

    if weights_path is not None:
        if not isinstance(weights_path, (str, os.PathLike)):
            raise ValueError(
                f"expected weights_path as a file path or None, got {type(weights_path).__name__}"
            )
        if not Path(weights_path).is_file():
            raise FileNotFoundError(f"no VGG16 weights file at {weights_path}")
    if not isinstance(extra_widths, (tuple, list)) or not all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 2 for w in extra_widths
    ):
        raise ValueError(f"expected extra_widths as integers >= 2, got {extra_widths!r}")

    # Built on the "meta" device: shapes only, no memory. The classifier's 120 million numbers,
    # which SSD does not use, are never made; only `features` is then given real weights, with
    # torchvision's own initialisation for VGG's convolutions.
    with torch.device("meta"):
        net = vgg16(weights=None)
    features = net.features.to_empty(device="cpu")
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    if weights_path is not None:
        try:
            state = torch.load(weights_path, weights_only=True, map_location="cpu")
        except Exception as err:  # a missing, corrupt or non-tensor file
            raise ValueError(f"could not read VGG16 weights from {weights_path}: {err}") from err
        if not isinstance(state, dict):
            raise ValueError(f"expected a state dict in {weights_path}, got {type(state).__name__}")
        # A whole VGG16's state dict names the layers "features.0.weight", ...: keep those.
        if any(key.startswith("features.") for key in state):
            state = {
                k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")
            }
        try:
            features.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"{weights_path} does not hold VGG16 weights: {err}") from err
    return VGGBackbone(features, tuple(extra_widths))


def _layers(module: nn.Module) -> list[list[nn.Module]]:
    """The module's layers, in order. A layer is a convolution or linear layer, together with the
    batch norms that follow it (they scale that layer's output, so they belong to it)."""
    layers: list[list[nn.Module]] = []
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            layers.append([sub])
        elif isinstance(sub, nn.modules.batchnorm._BatchNorm) and layers:
            layers[-1].append(sub)
    return layers


def _layer_parameters(layer: list[nn.Module]) -> list[nn.Parameter]:
    return [p for sub in layer for p in sub.parameters(recurse=False)]


def freeze_layers(module: nn.Module, n: int) -> int:
    """Stop training the first ``n`` layers (conv/linear + their batch norms) of ``module``.

    Their parameters get ``requires_grad = False``: backward leaves their ``.grad`` at None and
    the optimizer never changes them. Returns the number of layers frozen (``n``).
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"expected module as a torch nn.Module, got {type(module).__name__}")
    layers = _layers(module)
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(layers):
        raise ValueError(
            f"expected n as an integer from 0 to {len(layers)} (the module's layers), got {n!r}"
        )
    for layer in layers[:n]:
        for p in _layer_parameters(layer):
            p.requires_grad_(False)
    return n


def count_trainable(module: nn.Module) -> int:
    """How many numbers of the module training will change."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def parameter_groups(
    model: nn.Module, lr: float, early_lr: float, early_layers: int = 4
) -> list[dict]:
    """Optimizer groups: the first ``early_layers`` layers at ``early_lr``, the rest at ``lr``.

    Early layers detect edges and colours, which transfer from one task to another: with a
    pretrained backbone they should change slowly. Frozen parameters are left out; every
    trainable parameter is in exactly one group. Use as ``torch.optim.Adam(groups)``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected model as a torch nn.Module, got {type(model).__name__}")
    lr = checks.number(lr, "lr", 0, math.inf, high_open=True)
    early_lr = checks.number(early_lr, "early_lr", 0, math.inf, high_open=True)
    layers = _layers(model)
    checks.integer(early_layers, "early_layers", 0)
    if early_layers > len(layers):
        raise ValueError(
            f"expected early_layers from 0 to {len(layers)} (the model's layers), got "
            f"{early_layers}"
        )
    early_ids = {id(p) for layer in layers[:early_layers] for p in _layer_parameters(layer)}
    trainable = [p for p in model.parameters() if p.requires_grad]
    early = [p for p in trainable if id(p) in early_ids]
    rest = [p for p in trainable if id(p) not in early_ids]
    groups = [{"params": early, "lr": float(early_lr)}, {"params": rest, "lr": float(lr)}]
    return [g for g in groups if g["params"]]


def __getattr__(name: str):
    """``ssd300_config`` and ``ssd300_vgg16`` live in ``ssd_lesson.ssd300``; importable from here.

    Looked up on first use, because ssd300 itself imports SSD and SSDConfig from this module.
    """
    if name in ("ssd300_config", "ssd300_vgg16"):
        from ssd_lesson import ssd300

        return getattr(ssd300, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
