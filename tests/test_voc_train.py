"""ssd_lesson.voc_train end to end on the CPU, on a tiny VOCdevkit the test writes itself.

VOC2007 (trainval 2 images, test 2) and VOC2012 (trainval 2) are drawn with ShapesDataset and
saved as JPEG + VOC XML, the four shapes named as VOC classes. Training: two steps of batch 2
(one epoch of the 4 images), a checkpoint, then a resumed third step, which must give exactly
the weights and optimizer state of three uninterrupted steps; then VOC2007 test mAP.
"""

import json
import math
import re
import shutil

import pytest
import torch
from torchvision.io import write_jpeg
from torchvision.models import vgg16

from ssd_lesson import voc_train
from ssd_lesson.data import ShapesDataset, VOCDetectionFolder
from ssd_lesson.voc_train import main, train_voc

# torchvision 0.29 deprecates its JPEG writer in favour of TorchCodec; it still works.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

# ShapesDataset's classes 1..4 (ellipse, rectangle, triangle, cross) as VOC class names.
NAMES = ("cat", "tvmonitor", "boat", "aeroplane")
# year -> split -> number of images
SPLITS = {"2007": {"trainval": 2, "test": 2}, "2012": {"trainval": 2}}
# Every run: one CPU thread (the same numbers every time), no worker processes, no bars.
QUIET = dict(workers=0, threads=1, progress=False)


def write_voc_year(folder, splits, seed):
    """folder/JPEGImages, Annotations, ImageSets/Main/<split>.txt for ShapesDataset images."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True)
    shapes = ShapesDataset(sum(splits.values()), image_size=64, seed=seed, min_objects=1)
    index = 0
    for split, count in splits.items():
        ids = []
        for _ in range(count):
            image, target = shapes[index]
            image_id = f"{seed:02d}{index:04d}"
            pixels = (image.as_subclass(torch.Tensor) * 255).round().to(torch.uint8)
            write_jpeg(pixels, str(folder / "JPEGImages" / f"{image_id}.jpg"), quality=95)
            objects = []
            for (x1, y1, x2, y2), label in zip(
                target["boxes"].tolist(), target["labels"].tolist(), strict=True
            ):
                # VOC: 1-based pixels, both ends included.
                xmin, ymin = math.floor(x1) + 1, math.floor(y1) + 1
                xmax, ymax = max(math.ceil(x2), xmin), max(math.ceil(y2), ymin)
                objects.append(
                    f"<object><name>{NAMES[label - 1]}</name><difficult>0</difficult><bndbox>"
                    f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
                    "</bndbox></object>"
                )
            (folder / "Annotations" / f"{image_id}.xml").write_text(
                "<annotation><size><width>64</width><height>64</height><depth>3</depth></size>"
                + "".join(objects)
                + "</annotation>"
            )
            ids.append(image_id)
            index += 1
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc") / "VOCdevkit"
    for seed, (year, splits) in enumerate(SPLITS.items()):
        write_voc_year(root / f"VOC{year}", splits, seed)
    return root


def test_the_tiny_devkit_reads_as_voc(devkit):
    data = VOCDetectionFolder(devkit / "VOC2012", "trainval")
    image, target = data[0]
    assert image.shape == (3, 64, 64) and len(target["labels"]) >= 1


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """Random "ImageNet" weights in the layout of torchvision's vgg16() (features only)."""
    with torch.device("meta"):
        features = vgg16().features
    features = features.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    for parameter in features.parameters():
        with torch.no_grad():
            parameter.normal_(0.0, 0.02, generator=generator)
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def test_train_checkpoint_resume_and_evaluate(devkit, vgg_file, tmp_path, capsys):
    resumed, straight = tmp_path / "resumed", tmp_path / "straight"
    run = dict(years=["2007", "2012"], batch_size=2, **QUIET)

    # Two steps of batch 2 from the command line: one epoch of the 4 trainval images, one
    # checkpoint, the backbone from the VGG16 file.
    argv = ["--root", str(devkit), "--out", str(resumed), "--vgg-weights", str(vgg_file)]
    argv += ["--years", "2007", "2012", "--batch-size", "2", "--iterations", "2", "--no-eval"]
    assert main([*argv, "--workers", "0", "--threads", "1", "--no-progress"]) == 0
    saved = torch.load(resumed / "checkpoint.pt", weights_only=True)
    vgg = torch.load(vgg_file, weights_only=True)
    first_conv = saved["model"]["backbone.features.0.weight"]
    assert torch.allclose(first_conv, vgg["features.0.weight"], atol=1e-3)
    assert (saved["step"], saved["epoch"]) == (2, 0)
    assert set(saved) >= {"model", "optimizer", "scheduler", "scaler", "settings"}
    assert saved["optimizer"]["state"], "SGD's momentum buffers are saved"
    shutil.copy(resumed / "checkpoint.pt", tmp_path / "after_two_steps.pt")

    # Resume once: the step counter continues from 2, and a third step is taken.
    second = train_voc(devkit, resumed, iterations=3, resume=True, **QUIET)
    assert (second.start_step, second.step) == (2, 3)
    after = torch.load(resumed / "checkpoint.pt", weights_only=True)
    assert (after["step"], after["epoch"]) == (3, 1)
    assert after["scheduler"]["last_epoch"] == 3

    # Three steps without a break end in exactly the same weights and momentum buffers: the
    # resumed run restored the optimizer state (a fresh SGD would start its momentum at zero).
    train_voc(devkit, straight, vgg_file, iterations=3, evaluate=False, **run)
    reference = torch.load(straight / "checkpoint.pt", weights_only=True)
    for name, value in reference["model"].items():
        assert torch.equal(value, after["model"][name]), name
    buffers = reference["optimizer"]["state"]
    assert buffers.keys() == after["optimizer"]["state"].keys()
    for key, state in buffers.items():
        assert torch.equal(
            state["momentum_buffer"], after["optimizer"]["state"][key]["momentum_buffer"]
        )
    momentum_before = torch.load(tmp_path / "after_two_steps.pt", weights_only=True)["optimizer"]
    assert not all(
        torch.equal(state["momentum_buffer"], momentum_before["state"][key]["momentum_buffer"])
        for key, state in buffers.items()
    )

    # Resuming with other settings than the checkpoint's is refused (before any work).
    with pytest.raises(ValueError, match=r"checkpoint's settings .* lr 0.01 \(checkpoint: 0.001\)"):
        train_voc(devkit, resumed, resume=True, lr=0.01, **QUIET)

    # The VOC2007 test mAP: returned, printed, saved as JSON.
    assert 0.0 <= second.map_50 <= 1.0 and 0.0 <= second.map_50_all_point <= 1.0
    report = json.loads((resumed / "voc2007_test.json").read_text())
    assert report["map_50"] == second.map_50 and report["test_images"] == 2
    assert report["steps"] == 3 and report["paper_map_50"] == 0.743
    assert "VOC2007 test mAP@0.5" in capsys.readouterr().out


def test_resume_needs_a_checkpoint(devkit, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="expected a checkpoint to resume from"):
        train_voc(devkit, out, years=["2007"], resume=True, evaluate=False, **QUIET)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing", r"expected root as an existing folder, got .*missing \(not found\)"),
        ("year", r"no VOC2007, VOC2012 in it; .*VOC2007 is a year folder itself: pass its parent"),
        ("above", r"no VOC2007, VOC2012 in it; did you mean .*VOCdevkit\?"),
    ],
)
def test_a_bad_root_is_a_clear_error(devkit, tmp_path, capsys, where, message):
    root = {"missing": tmp_path / "missing", "year": devkit / "VOC2007", "above": devkit.parent}
    weights = tmp_path / "vgg16.pth"
    weights.write_bytes(b"")  # never read: the root is checked first
    argv = ["--root", str(root[where]), "--out", str(tmp_path / "out")]
    assert main([*argv, "--vgg-weights", str(weights), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m ssd_lesson.voc_train: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    with pytest.raises(ValueError, match=message):
        train_voc(root[where], tmp_path / "out", **QUIET)
    assert not (tmp_path / "out").exists()


def test_the_command_line_needs_vgg_weights_unless_resuming(devkit, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--root", str(devkit), "--out", str(tmp_path)])
    assert "--vgg-weights is required" in capsys.readouterr().err


def test_the_defaults_are_the_papers():
    assert voc_train.PAPER_MAP == 0.743
    assert (voc_train.BATCH_SIZE, voc_train.LEARNING_RATE) == (32, 1e-3)
    assert (voc_train.MOMENTUM, voc_train.WEIGHT_DECAY) == (0.9, 5e-4)
    assert (voc_train.ITERATIONS, voc_train.LR_STEPS) == (60_000, (40_000, 50_000))
    assert voc_train.YEARS == ("2007", "2012") and voc_train.MAX_ZOOM_OUT == 1.0
