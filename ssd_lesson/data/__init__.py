"""Data for training and testing a detector: images, boxes and labels.

* ``shapes``: a synthetic detection dataset generated in memory (no downloads).
* ``augment``: SSD's data augmentation, built from ``torchvision.transforms.v2``.
* ``voc``: a reader for Pascal VOC-format folders that you already have on disk.
* ``collate``: stacks images with different numbers of objects into one batch.
"""

from ssd_lesson.data.augment import IMAGENET_MEAN, ssd_augmentation
from ssd_lesson.data.collate import Batch, detection_collate
from ssd_lesson.data.shapes import SHAPE_CLASSES, ShapesDataset
from ssd_lesson.data.voc import VOC_CLASSES, VOCDetectionFolder, VOCFileNotFound

__all__ = [
    "IMAGENET_MEAN",
    "SHAPE_CLASSES",
    "VOC_CLASSES",
    "Batch",
    "ShapesDataset",
    "VOCDetectionFolder",
    "VOCFileNotFound",
    "detection_collate",
    "ssd_augmentation",
]
