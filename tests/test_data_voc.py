"""Tests for ssd_lesson.data.voc on a tiny VOC folder written by the tests themselves."""

import re

import pytest
import torch
from torchvision import tv_tensors
from torchvision.datasets import VOCDetection, wrap_dataset_for_transforms_v2
from torchvision.io import write_jpeg

from ssd_lesson.data.augment import ssd_augmentation
from ssd_lesson.data.voc import VOC_CLASSES, VOCDetectionFolder

# torchvision 0.29 deprecates its JPEG reader and writer in favour of TorchCodec; they still work.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding:DeprecationWarning")

# Three images: (id, width, height, colour, objects). An object is
# (class name, (xmin, ymin, xmax, ymax) as VOC writes them: 1-based, both ends included, difficult).
IMAGES = [
    ("000001", 40, 30, (200, 30, 30), [("cat", (1, 1, 10, 20), 0), ("person", (5, 6, 40, 30), 0)]),
    (
        "000002",
        32,
        32,
        (30, 200, 30),
        [("aeroplane", (3, 4, 3, 9), 0), ("tvmonitor", (2, 2, 8, 8), 1)],
    ),
    ("000003", 24, 20, (30, 30, 200), [("dog", (4, 4, 12, 12), 1)]),  # only a difficult object
]


def annotation_xml(width, height, objects):
    """The text of a VOC annotation file."""
    parts = [f"<annotation><filename>x.jpg</filename><size><width>{width}</width>"]
    parts.append(f"<height>{height}</height><depth>3</depth></size>")
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        parts.append(
            f"<object><name>{name}</name><truncated>0</truncated><difficult>{difficult}</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax>"
            "</bndbox></object>"
        )
    return "".join(parts) + "</annotation>"


@pytest.fixture
def voc_root(tmp_path):
    """tmp_path/VOCdevkit/VOC2007 with the three images, split train = all, val = the first."""
    root = tmp_path / "VOCdevkit" / "VOC2007"
    for folder in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    for image_id, width, height, colour, objects in IMAGES:
        pixels = torch.tensor(colour, dtype=torch.uint8)[:, None, None].expand(3, height, width)
        write_jpeg(pixels.contiguous(), str(root / "JPEGImages" / f"{image_id}.jpg"))
        xml = annotation_xml(width, height, objects)
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
    (root / "ImageSets/Main/train.txt").write_text("000001\n000002\n000003\n")
    (root / "ImageSets/Main/val.txt").write_text("000001\n\n")  # a blank line is skipped
    return root


def rewrite(root, image_id, old, new):
    """Replace text in one annotation; returns the file's path."""
    path = root / "Annotations" / f"{image_id}.xml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


# --- a good read --------------------------------------------------------------------------------


def test_voc_classes_in_the_standard_order():
    assert len(VOC_CLASSES) == 20 and len(set(VOC_CLASSES)) == 20
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[-1] == "tvmonitor"
    assert list(VOC_CLASSES) == sorted(VOC_CLASSES)
    assert VOC_CLASSES.index("cat") + 1 == 8 and VOC_CLASSES.index("person") + 1 == 15


def test_items_have_the_shared_format(voc_root):
    dataset = VOCDetectionFolder(voc_root)
    assert len(dataset) == 3 and dataset.ids == ["000001", "000002", "000003"]
    image, target = dataset[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.float32
    assert image.shape == (3, 30, 40) and image.min() >= 0 and image.max() <= 1
    # The JPEG was one colour (200, 30, 30): JPEG is lossy, so only roughly.
    torch.testing.assert_close(
        image.mean(dim=(1, 2)), torch.tensor([200, 30, 30]) / 255, atol=0.03, rtol=0
    )
    boxes = target["boxes"]
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format.name == "XYXY"
    assert tuple(boxes.canvas_size) == (30, 40) and boxes.dtype == torch.float32
    assert target["labels"].dtype == torch.int64


def test_boxes_are_converted_to_zero_based_edges_by_hand(voc_root):
    dataset = VOCDetectionFolder(voc_root)
    # (1, 1, 10, 20): pixels 1..10 and 1..20 -> edges 0..10 and 0..20.
    # (5, 6, 40, 30): up to the last column and row of a 40 x 30 image -> x2 = 40, y2 = 30.
    _, target = dataset[0]
    assert torch.equal(target["boxes"], torch.tensor([[0.0, 0, 10, 20], [4, 5, 40, 30]]))
    assert target["labels"].tolist() == [8, 15]  # cat, person
    # xmin = xmax = 3: one column wide, [2, 3]. The difficult tvmonitor is left out.
    _, target = dataset[1]
    assert torch.equal(target["boxes"], torch.tensor([[2.0, 3, 3, 9]]))
    assert target["labels"].tolist() == [1]


def test_difficult_objects(voc_root):
    _, target = VOCDetectionFolder(voc_root)[2]  # its only object is difficult
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    assert target["labels"].dtype == torch.int64
    dataset = VOCDetectionFolder(voc_root, keep_difficult=True)
    assert dataset[1][1]["labels"].tolist() == [1, 20]
    assert torch.equal(dataset[1][1]["boxes"][1], torch.tensor([1.0, 1, 8, 8]))
    assert torch.equal(dataset[2][1]["boxes"], torch.tensor([[3.0, 3, 12, 12]]))


def test_same_objects_as_torchvision(voc_root):
    # torchvision reads the same folder (its root is two levels up); its v2 wrapper keeps VOC's
    # numbers as they are, so ours are theirs minus (1, 1, 0, 0). It keeps difficult objects.
    theirs = wrap_dataset_for_transforms_v2(VOCDetection(voc_root.parent.parent, "2007", "train"))
    ours = VOCDetectionFolder(voc_root, keep_difficult=True)
    for i in range(len(ours)):
        _, expected = theirs[i]
        _, target = ours[i]
        shift = torch.tensor([1.0, 1.0, 0.0, 0.0])
        assert torch.equal(target["boxes"].as_subclass(torch.Tensor), expected["boxes"] - shift)
        assert torch.equal(target["labels"], expected["labels"])


def test_image_sets_and_custom_classes(voc_root):
    assert VOCDetectionFolder(voc_root, image_set="val").ids == ["000001"]
    (voc_root / "ImageSets/Main/pets.txt").write_text("000003\n")
    pets = VOCDetectionFolder(voc_root, "pets", classes=("cat", "dog"), keep_difficult=True)
    assert pets[0][1]["labels"].tolist() == [2]  # dog is the second name: label 2


def test_transform_is_applied(voc_root):
    calls = []

    def spy(image, target):
        calls.append(tuple(image.shape))
        return image, target

    VOCDetectionFolder(voc_root, transform=spy)[0]
    assert calls == [(3, 30, 40)]
    resize = ssd_augmentation(20, enabled=False)  # 40 x 30 -> 20 x 20: x / 2, y * 2 / 3
    image, target = VOCDetectionFolder(voc_root, transform=resize)[0]
    assert image.shape == (3, 20, 20)
    expected = torch.tensor([[0.0, 0, 5, 40 / 3], [2, 10 / 3, 20, 20]])
    torch.testing.assert_close(target["boxes"].as_subclass(torch.Tensor), expected)


def test_grey_jpegs_become_three_channels(voc_root):
    # VOC has a few greyscale JPEGs; every item must still be (3, H, W).
    grey = torch.full((1, 30, 40), 100, dtype=torch.uint8)
    write_jpeg(grey, str(voc_root / "JPEGImages" / "000001.jpg"))
    image, _ = VOCDetectionFolder(voc_root)[0]
    assert image.shape == (3, 30, 40)
    torch.testing.assert_close(image[0], image[2])


def test_a_corner_one_pixel_outside_is_clipped(voc_root):
    rewrite(voc_root, "000001", "<xmin>1</xmin><ymin>1</ymin>", "<xmin>0</xmin><ymin>1</ymin>")
    _, target = VOCDetectionFolder(voc_root)[0]
    assert torch.equal(target["boxes"][0], torch.tensor([0.0, 0, 10, 20]))


# --- errors name the file ----------------------------------------------------------------------


def test_missing_root(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        VOCDetectionFolder(missing)


@pytest.mark.parametrize("levels_up", [1, 2])
def test_root_too_high_suggests_the_year_folder(voc_root, levels_up):
    too_high = voc_root.parents[levels_up - 1]  # VOCdevkit, or the folder above it
    with pytest.raises(FileNotFoundError, match=re.escape(f"did you mean ['{voc_root}']")):
        VOCDetectionFolder(too_high)


def test_missing_image_set_lists_the_splits(voc_root):
    path = voc_root / "ImageSets" / "Main" / "test.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"{path}; found ['train', 'val']")):
        VOCDetectionFolder(voc_root, image_set="test")


@pytest.mark.parametrize(
    "text, message", [("\n\n", "no image ids"), ("000001 1\n", "one image id per line")]
)
def test_bad_image_set_file(voc_root, text, message):
    path = voc_root / "ImageSets/Main/odd.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + ".*" + message):
        VOCDetectionFolder(voc_root, image_set="odd")


def test_missing_image(voc_root):
    path = voc_root / "JPEGImages" / "000002.jpg"
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"'000002': {path}")):
        VOCDetectionFolder(voc_root)
    with pytest.raises(ValueError, match=re.escape(str(path))):  # a VOC problem, as all others
        VOCDetectionFolder(voc_root)


def test_image_deleted_after_the_dataset_was_built(voc_root):
    dataset = VOCDetectionFolder(voc_root)
    path = voc_root / "JPEGImages" / "000002.jpg"
    path.unlink()
    with pytest.raises(ValueError, match=re.escape(f"missing image for id '000002': {path}")):
        dataset[1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_set": 7}, "expected image_set"),
        ({"image_set": ""}, "expected image_set"),
        ({"transform": "flip"}, "expected transform"),
        ({"keep_difficult": "yes"}, "expected keep_difficult"),
    ],
)
def test_bad_arguments(voc_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        VOCDetectionFolder(voc_root, **kwargs)
    with pytest.raises(ValueError, match="expected root as a folder path"):
        VOCDetectionFolder(None)


def test_missing_annotation(voc_root):
    path = voc_root / "Annotations" / "000003.xml"
    path.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"'000003': {path}")):
        VOCDetectionFolder(voc_root)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        VOCDetectionFolder(voc_root)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("</annotation>", "", "malformed XML"),
        ("<ymax>20</ymax>", "", "object 0 has no <bndbox/ymax>"),
        ("<xmax>10</xmax>", "<xmax>ten</xmax>", "object 0 <bndbox/xmax> is 'ten', not a number"),
        ("<xmax>10</xmax>", "<xmax>nan</xmax>", "<bndbox/xmax> is 'nan', not a number"),
        ("<width>40</width>", "", "has no <size/width>"),
        ("<height>30</height>", "<height>0</height>", "positive whole <size>"),
        (
            "<xmax>40</xmax>",
            "<xmax>45</xmax>",
            "object 1: box (xmin, ymin, xmax, ymax) = [5.0, 6.0, 45.0",
        ),
        ("<xmax>40</xmax>", "<xmax>45</xmax>", "lies outside the 40 x 30 image"),
        ("<ymin>6</ymin>", "<ymin>-3</ymin>", "lies outside"),
        ("<xmax>10</xmax>", "<xmax>0</xmax>", "has no area (xmax < xmin or ymax < ymin) in"),
        ("<ymax>20</ymax>", "<ymax>0</ymax>", "has no area (xmax < xmin or ymax < ymin) in"),
        # One pixel past the right edge: tolerated, but clipped it has no width left.
        (
            "<xmin>5</xmin><ymin>6</ymin><xmax>40</xmax>",
            "<xmin>41</xmin><ymin>6</ymin><xmax>41</xmax>",
            "[41.0, 6.0, 41.0, 30.0] has no area",
        ),
        ("<name>person</name>", "<name>unicorn</name>", "object 1 has unknown class 'unicorn'"),
        ("<name>person</name>", "<name>Person</name>", "expected one of ['aeroplane', 'bicycle'"),
    ],
)
def test_bad_annotation_names_the_file(voc_root, old, new, message):
    path = rewrite(voc_root, "000001", old, new)
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        VOCDetectionFolder(voc_root)


def test_a_difficult_object_is_checked_too(voc_root):
    path = rewrite(voc_root, "000003", "<name>dog</name>", "<name>wolf</name>")
    with pytest.raises(ValueError, match=re.escape(f"{path}: object 0 has unknown class 'wolf'")):
        VOCDetectionFolder(voc_root)


def test_image_that_disagrees_with_its_annotation(voc_root):
    rewrite(voc_root, "000002", "<width>32</width>", "<width>33</width>")
    dataset = VOCDetectionFolder(voc_root)  # the XML alone is fine
    image_path = voc_root / "JPEGImages" / "000002.jpg"
    with pytest.raises(ValueError, match=re.escape(f"{image_path}: the image is 32 x 32 pixels")):
        dataset[1]


def test_image_that_is_not_a_jpeg(voc_root):
    image_path = voc_root / "JPEGImages" / "000003.jpg"
    image_path.write_bytes(b"not a picture")
    dataset = VOCDetectionFolder(voc_root)
    with pytest.raises(ValueError, match=re.escape(f"{image_path}: cannot decode")):
        dataset[2]


@pytest.mark.parametrize("classes", [(), "cat", [1, 2], ("cat", "dog", "cat")])
def test_bad_classes(voc_root, classes):
    with pytest.raises(ValueError, match="expected classes"):
        VOCDetectionFolder(voc_root, classes=classes)
