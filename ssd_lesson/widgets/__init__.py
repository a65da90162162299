"""Explorers: small interactive pictures for the lessons.

Each explorer is a thin wrapper over two tested pieces:

* a pure function that turns control values into data (``anchor_layout``, ``matching_view``), and
* a plotting function that draws that data on a matplotlib ``Axes`` (or on several).

One module per lesson, all re-exported here (``from ssd_lesson.widgets import matching_explorer``):

* ``explorer``: the ``Explorer`` widget they are all made of, and the controls and layout
  helpers they share (``slider``, ``toggle``, ``add_axes``, ...);
* ``anchors``: lesson 01, anchors on a feature map;
* ``matching``: lesson 02, which anchors match a ground-truth box;
* ``encoding``: lesson 03, four offsets move and scale an anchor onto an object;
* ``loss`` and ``gradient``: lesson 05, hard-negative mining and where the gradient flows;
* ``inference``: lesson 07, a trained detector's boxes through the score threshold and NMS.
"""

from ssd_lesson.widgets.anchors import (
    ASPECT_RATIO_CHOICES,
    AnchorLayout,
    anchor_explorer,
    anchor_layout,
    describe_anchor_layout,
    draw_anchor_layout,
)
from ssd_lesson.widgets.encoding import (
    ENCODING_OBJECTS,
    LANDED_IOU,
    EncodingPair,
    EncodingView,
    describe_encoding_view,
    draw_encoding_view,
    encoding_explorer,
    encoding_pairs,
    encoding_view,
)
from ssd_lesson.widgets.explorer import FIGURE_DPI, Explorer, explorer_photo
from ssd_lesson.widgets.gradient import (
    GradientView,
    describe_gradient_view,
    draw_gradient_scene,
    draw_gradient_view,
    draw_loss_curve,
    draw_positives_curve,
    gradient_axes,
    gradient_explorer,
    gradient_view,
)
from ssd_lesson.widgets.inference import (
    CLASS_COLORS,
    DetectionView,
    describe_detection_view,
    detection_explorer,
    detection_view,
    draw_detection_view,
)
from ssd_lesson.widgets.loss import (
    LOSS_ASPECT_RATIOS,
    LOSS_MAP_SIZES,
    MINING_OBJECTS,
    MiningView,
    describe_mining_view,
    draw_mining_losses,
    draw_mining_view,
    loss_explorer_anchors,
    mining_axes,
    mining_explorer,
    mining_view,
    untrained_predictions,
)
from ssd_lesson.widgets.matching import (
    EXPLORER_ASPECT_RATIOS,
    EXPLORER_MAP_SIZES,
    MATCHING_KEY,
    MatchingView,
    describe_matching_view,
    draw_matching_view,
    explorer_anchors,
    matching_explorer,
    matching_view,
)

__all__ = [
    # the widget
    "FIGURE_DPI",
    "Explorer",
    "explorer_photo",
    # lesson 01
    "ASPECT_RATIO_CHOICES",
    "AnchorLayout",
    "anchor_explorer",
    "anchor_layout",
    "describe_anchor_layout",
    "draw_anchor_layout",
    # lesson 02
    "EXPLORER_ASPECT_RATIOS",
    "EXPLORER_MAP_SIZES",
    "MATCHING_KEY",
    "MatchingView",
    "describe_matching_view",
    "draw_matching_view",
    "explorer_anchors",
    "matching_explorer",
    "matching_view",
    # lesson 03
    "ENCODING_OBJECTS",
    "LANDED_IOU",
    "EncodingPair",
    "EncodingView",
    "describe_encoding_view",
    "draw_encoding_view",
    "encoding_explorer",
    "encoding_pairs",
    "encoding_view",
    # lessons 04 and 05
    "LOSS_ASPECT_RATIOS",
    "LOSS_MAP_SIZES",
    "MINING_OBJECTS",
    "MiningView",
    "describe_mining_view",
    "draw_mining_losses",
    "draw_mining_view",
    "loss_explorer_anchors",
    "mining_axes",
    "mining_explorer",
    "mining_view",
    "untrained_predictions",
    "GradientView",
    "describe_gradient_view",
    "draw_gradient_scene",
    "draw_gradient_view",
    "draw_loss_curve",
    "draw_positives_curve",
    "gradient_axes",
    "gradient_explorer",
    "gradient_view",
    # lesson 07
    "CLASS_COLORS",
    "DetectionView",
    "describe_detection_view",
    "detection_explorer",
    "detection_view",
    "draw_detection_view",
]
