"""Lesson 08's experiments: SSD's design choices, each measured by a small training run.

An **ablation** trains the same detector twice, with one choice changed, and compares the two.
The SSD paper argues for its choices this way (its Tables 2 and 3). Here every variant is one
run of the package's ``fit``, with lesson 06's recipe made smaller, on shapes:

1. feature maps: all six maps, or one map only (the finest, 16 x 16, or the middle one, 4 x 4);
2. aspect ratios: square anchors only, {1, 2, 1/2}, or {1, 2, 1/2, 3, 1/3}, on long thin shapes;
3. augmentation: none, crop + flip, or crop + flip + zoom-out, trained on few images without
   small objects and tested on all sizes;
4. negatives: 3:1 hard negative mining, every negative, or the focal loss;
5. matching: the forced best anchor, the authors' greedy one-to-one rule, or the threshold
   alone; and the threshold 0.3, 0.5 or 0.7.

The first variant of each experiment is the package's own choice, the one the others are
compared with. This module only describes the experiments: ``ssd_lesson.ablation_runs`` trains
and measures them (``run_ablations``), ``ssd_lesson.ablation_table`` prints the means, the
spreads and the verdicts. ``python -m ssd_lesson.ablation_runs`` (``make ablations``) does both
and saves the results to ``notebooks/ablations/results.json``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ssd_lesson.alternatives import all_negatives_loss, softmax_focal_loss
from ssd_lesson.loss import ssd_loss

# How big each run is. "full": what `make ablations` runs with 3 seeds (21 minutes on 2 CPU
# cores); 2400 images seen 3 times reach mAP@0.5 above 0.8. "live": what lesson 08 runs, one
# seed, a few seconds a run: too short to judge by, long enough to see each piece work.
# The augmentation experiment trains on few images for more epochs: augmentation is for data
# that is scarce, and on a CPU it costs about 10 ms per image.
SIZES = {
    "full": {"train_images": 2400, "val_images": 500, "epochs": 3, "batch_size": 32,
             "lr": 5e-3, "few_images": 600, "few_epochs": 8},
    "live": {"train_images": 800, "val_images": 150, "epochs": 2, "batch_size": 16,
             "lr": 3e-3, "few_images": 240, "few_epochs": 3},
}  # fmt: skip
TRAIN_SEED = 2000  # + the run's seed: each seed draws its own training images
# Objects of long thin shapes (experiment 2) and of the augmentation experiment's training
# images are at least this big (fractions of the side): 16 pixels, so no shape gets thinner
# than 4 pixels, and "small" objects (below 16 pixels) appear only in the test images.
LARGER_MIN_SIZE = 0.25
METRICS = ("mAP", "small", "medium", "large", "no anchor", "negatives' share", "seconds")
LOSSES = {"3:1 mining": ssd_loss, "all negatives": all_negatives_loss, "focal": softmax_focal_loss}
DATA = ("shapes", "elongated", "few, no small")
AUGMENTATIONS = ("none", "crop + flip", "crop + flip + zoom-out")
MAPS = {"all six": None, "finest only": 0, "middle only": 2}  # index of the one map kept


@dataclass(frozen=True)
class Variant:
    """One way to build and train the detector; the defaults are the package's choices."""

    name: str
    maps: str = "all six"  # a key of MAPS
    ratios: tuple[float, ...] = (2.0,)  # extra aspect ratios on every map (r and 1/r)
    data: str = "shapes"  # one of DATA
    augment: str = "none"  # one of AUGMENTATIONS
    loss: str = "3:1 mining"  # a key of LOSSES
    matcher: str = "forced best"  # a key of alternatives.MATCHERS
    iou_threshold: float = 0.5

    def settings(self) -> tuple:
        """Everything but the name: two variants with equal settings are the same run."""
        return tuple(value for key, value in asdict(self).items() if key != "name")


@dataclass(frozen=True)
class Experiment:
    """Variants to compare with the first, and what the papers found (``paper``)."""

    name: str
    question: str
    variants: tuple[Variant, ...]
    # Variant name -> (the paper's direction against the first variant, "higher" or "lower", and
    # where that comes from). A variant no paper measured is not in it.
    paper: dict
    # What the table shows, from METRICS. mAP and recall columns get a verdict each.
    columns: tuple[str, ...] = ("mAP", "small", "medium", "large")


PACKAGE = Variant("package: all six maps")
FEW = "few, no small"  # the augmentation experiment's training images
EXPERIMENTS = (
    Experiment(
        "feature maps",
        "Does predicting from several feature maps matter, and for which object sizes?",
        (
            PACKAGE,
            Variant("finest map only (16 x 16)", maps="finest only"),
            Variant("middle map only (4 x 4)", maps="middle only"),
        ),
        {
            "finest map only (16 x 16)": ("lower", "Table 3: one map (conv7) 62.4 vs six 74.3"),
            "middle map only (4 x 4)": ("lower", "Table 3: one map (conv7) 62.4 vs six 74.3"),
        },
    ),
    Experiment(
        "aspect ratios",
        "Do anchors of several shapes help with long thin objects?",
        (
            Variant("package: {1, 2, 1/2}", data="elongated"),
            Variant("squares only", data="elongated", ratios=()),
            Variant("{1, 2, 1/2, 3, 1/3}", data="elongated", ratios=(2.0, 3.0)),
        ),
        {
            "squares only": ("lower", "Table 2: 71.6 without {2, 1/2} vs 73.7"),
            "{1, 2, 1/2, 3, 1/3}": ("higher", "Table 2: 74.3 with {3, 1/3} vs 73.7"),
        },
        ("mAP", "medium", "large"),
    ),
    Experiment(
        "augmentation",
        "Does augmentation help, and does zoom-out help small objects?",
        (
            Variant("package: none", data=FEW),
            Variant("crop + flip", data=FEW, augment="crop + flip"),
            Variant("crop + flip + zoom-out", data=FEW, augment="crop + flip + zoom-out"),
        ),
        {
            "crop + flip": ("higher", "Table 2: 65.5 without the random crops vs 74.3"),
            "crop + flip + zoom-out": ("higher", "section 3.6: zoom-out adds 2-3 mAP"),
        },
    ),
    Experiment(
        "negatives",
        "Which background anchors should the class loss count?",
        (
            Variant("package: 3:1 mining"),
            Variant("all negatives", loss="all negatives"),
            Variant("focal loss", loss="focal"),
        ),
        {
            "all negatives": ("lower", "section 2.2: mining trains faster, more stably; no table"),
            "focal loss": ("higher", "RetinaNet Table 1: focal loss 3.2 AP above the best mining"),
        },
        ("mAP", "small", "negatives' share"),
    ),
    Experiment(
        "matching",
        "Does the forced match matter, and which IoU threshold?",
        (
            Variant("package: forced best, 0.5"),
            Variant("greedy one-to-one, 0.5", matcher="greedy one-to-one"),
            Variant("threshold only, 0.5", matcher="threshold only"),
            Variant("forced best, 0.3", iou_threshold=0.3),
            Variant("forced best, 0.7", iou_threshold=0.7),
        ),
        {},  # the SSD paper compares no matching rules
        ("mAP", "small", "no anchor"),
    ),
)
