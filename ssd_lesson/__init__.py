"""ssd-lesson: the SSD object detector, one concept per module.

* ``ssd_lesson.boxes``: box formats, area, IoU.
* ``ssd_lesson.anchors``: the fixed anchor boxes ("default boxes").
* ``ssd_lesson.matching``: which anchor is responsible for which object.
* ``ssd_lesson.encoding``: the offsets that move an anchor onto an object; training targets.
* ``ssd_lesson.loss``: the SSD loss, with hard-negative mining.
* ``ssd_lesson.data``: a synthetic shapes dataset, SSD augmentation, a VOC-folder reader, batching.
* ``ssd_lesson.model``: a small SSD for the CPU and the VGG16 recipe (backbone, freezing, groups).
* ``ssd_lesson.train``: training with validation mAP, loss curves and checkpoints.
* ``ssd_lesson.inference``: from raw outputs to detections: decode, scores, NMS, top-k.
* ``ssd_lesson.metrics``: average precision, VOC style (IoU 0.5) and COCO style (0.50:0.95).
* ``ssd_lesson.plotting``: pictures of boxes, anchors and matches.
* ``ssd_lesson.widgets``: interactive explorers for the lessons, one module per lesson.
* ``ssd_lesson.exercises``: self-checks for the lessons' exercises.

Boxes are xyxy fractions of the image unless a name says otherwise; class 0 is background.
"""

__version__ = "0.1.0"
