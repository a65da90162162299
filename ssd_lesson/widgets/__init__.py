"""Explorers: small interactive pictures for the lessons.

Each explorer is a thin wrapper over two tested pieces:

* a pure function that turns control values into data (``anchor_layout``, ``matching_view``), and
* a plotting function that draws that data on a matplotlib ``Axes`` (or on several).

One module per lesson, all re-exported here (``from ssd_lesson.widgets import matching_explorer``):

* ``explorer``: the ``Explorer`` widget they are all made of;
* ``anchors``: lesson 01, anchors on a feature map;
* ``matching``: lesson 02, which anchors match a ground-truth box;
* ``encoding``: lesson 03, four offsets move and scale an anchor onto an object;
* ``loss``: lesson 04, hard-negative mining and the gradient of the loss.

``_slider`` and ``_explorer_anchors`` are private, but stay importable from here as they were
before the split into modules.
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
from ssd_lesson.widgets.explorer import _slider as _slider
from ssd_lesson.widgets.matching import (
    EXPLORER_ASPECT_RATIOS,
    EXPLORER_MAP_SIZES,
    MatchingView,
    describe_matching_view,
    draw_matching_view,
    explorer_anchors,
    matching_explorer,
    matching_explorer_redraw_ms,
    matching_view,
)
from ssd_lesson.widgets.matching import _explorer_anchors as _explorer_anchors

__all__ = [
    "ENCODING_OBJECTS",
    "LANDED_IOU",
    "EncodingPair",
    "EncodingView",
    "describe_encoding_view",
    "draw_encoding_view",
    "encoding_explorer",
    "encoding_pairs",
    "encoding_view",
    "explorer_photo",
    "ASPECT_RATIO_CHOICES",
    "EXPLORER_ASPECT_RATIOS",
    "EXPLORER_MAP_SIZES",
    "FIGURE_DPI",
    "AnchorLayout",
    "Explorer",
    "MatchingView",
    "anchor_explorer",
    "anchor_layout",
    "describe_anchor_layout",
    "describe_matching_view",
    "draw_anchor_layout",
    "draw_matching_view",
    "explorer_anchors",
    "matching_explorer",
    "matching_explorer_redraw_ms",
    "matching_view",
]
