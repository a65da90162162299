"""ssd-lesson: the SSD object detector, one concept per module.

* ``ssd_lesson.boxes``: box formats, area, IoU.
* ``ssd_lesson.anchors``: the fixed anchor boxes ("default boxes").
* ``ssd_lesson.matching``: which anchor is responsible for which object.
* ``ssd_lesson.encoding``: the offsets that move an anchor onto an object; training targets.
* ``ssd_lesson.loss``: the SSD loss, with hard-negative mining.
* ``ssd_lesson.data``: a synthetic shapes dataset, SSD augmentation, a VOC-folder reader, batching.
* ``ssd_lesson.model``: a small SSD for the CPU and the VGG16 recipe (backbone, freezing, groups).
* ``ssd_lesson.train``: the training loop, with validation loss and mAP every epoch.
* ``ssd_lesson.checkpoints``: saving a trained model with its configuration, and loading it.
* ``ssd_lesson.recipe``: lesson 06's training, written down once.
* ``ssd_lesson.ssd300``: the real SSD300 (VGG16), equal to torchvision's, for real weights.
* ``ssd_lesson.voc_train``: ``python -m ssd_lesson.voc_train`` trains SSD300 on Pascal VOC.
* ``ssd_lesson.inference``: from raw outputs to detections: decode, scores, NMS, top-k.
* ``ssd_lesson.metrics``: average precision, VOC style (IoU 0.5) and COCO style (0.50:0.95).
* ``ssd_lesson.plotting``: pictures of boxes, anchors and matches.
* ``ssd_lesson.widgets``: interactive explorers for the lessons, one module per lesson.
* ``ssd_lesson.exercises``: self-checks for the lessons' exercises.

Two modules are engineering, not SSD: ``ssd_lesson.checks`` (every input check and its message)
and ``ssd_lesson.fast`` (batched versions of matching and targets, used by training).

Boxes are xyxy fractions of the image unless a name says otherwise; anchors come first in every
function that takes them; class 0 is background.
"""

__version__ = "0.1.0"
