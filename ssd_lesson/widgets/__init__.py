"""Explorers: small interactive pictures for the lessons (see ``explorer.py``)."""

from ssd_lesson.widgets.explorer import (
    ASPECT_RATIO_CHOICES,
    EXPLORER_ASPECT_RATIOS,
    EXPLORER_MAP_SIZES,
    FIGURE_DPI,
    AnchorLayout,
    Explorer,
    MatchingView,
    anchor_explorer,
    anchor_layout,
    describe_anchor_layout,
    describe_matching_view,
    draw_anchor_layout,
    draw_matching_view,
    explorer_anchors,
    matching_explorer,
    matching_explorer_redraw_ms,
    matching_view,
)

# Private, but importable from here as before the split.
from ssd_lesson.widgets.explorer import _explorer_anchors as _explorer_anchors
from ssd_lesson.widgets.explorer import _slider as _slider

__all__ = [
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
