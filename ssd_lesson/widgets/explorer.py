"""``Explorer``: the widget every lesson's explorer is made of, and the pieces they share.

In JupyterLab an explorer is a live widget: move a control and the picture is redrawn. Where no
widget manager runs (GitHub, nbconvert HTML, a plain terminal) it shows a PNG snapshot, titled
with its one-line readout, instead. The figure is rendered to PNG with matplotlib's Agg backend
and shown in an ``ipywidgets.Image``, so no Output widget and no ipympl are needed.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets
import numpy as np
import PIL.Image
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ssd_lesson.plotting import KeyEntry, key_html, sample_photo

# Resolution of the explorers' pictures. Higher looks sharper but redraws more slowly.
FIGURE_DPI = 80
# Side, in pixels, of the sample photo in an explorer: about what a 5-inch picture at FIGURE_DPI
# shows of it. More pixels would only be thrown away by every redraw.
EXPLORER_PHOTO_PIXELS = 360
# Where the Axes of a one-Axes picture sit (fractions of the figure).
SINGLE_AXES = {"left": 0.08, "right": 0.97, "bottom": 0.07, "top": 0.93}
# The controls' look: descriptions in a column 9em wide, the sliders 28em long.
CONTROL_STYLE = {"description_width": "9em"}
CONTROL_LAYOUT = {"width": "28em"}


class Explorer:
    """A live widget in JupyterLab; a PNG and one line of text where widgets cannot run.

    Args:
        controls: name -> ipywidgets control; its ``value`` is passed to ``compute`` by name.
        compute: ``compute(**values) -> data``, a pure function.
        draw: ``draw(data, axes)`` draws the data on what ``make_axes`` returned (one Axes by
            default). Every redraw starts from an empty figure.
        describe: ``describe(data) -> str``, the one-line readout.
        key: the colour key, ``KeyEntry``'s: one line of HTML above the live picture, a legend
            below the snapshot.
        make_axes: optional ``make_axes(figure) -> axes`` for a picture of several Axes.
        figsize: the picture's size in inches.
    """

    def __init__(
        self,
        controls: dict[str, ipywidgets.ValueWidget],
        compute: Callable[..., Any],
        draw: Callable[[Any, Any], object],
        describe: Callable[[Any], str],
        key: Sequence[KeyEntry] = (),
        make_axes: Callable[[Figure], Any] | None = None,
        figsize=(5.5, 5.0),
    ):
        self.controls = controls
        self.compute, self.draw, self.describe = compute, draw, describe
        self.key = tuple(key)
        self.make_axes = make_axes or _single_axes
        self.figsize = figsize
        # One figure, cleared and redrawn on every change. No pyplot: nothing leaks into the
        # notebook.
        self._figure = Figure(figsize=figsize, dpi=FIGURE_DPI)
        # Shown at its natural size: stretched to the output's width it would look blurred.
        width, height = (round(inches * FIGURE_DPI) for inches in figsize)
        self.image = ipywidgets.Image(
            format="png", layout={"width": f"{width}px", "height": f"{height}px"}
        )
        self.readout = ipywidgets.Label()
        for control in controls.values():
            control.observe(self._on_change, names="value")
        parts = [ipywidgets.VBox(list(controls.values())), self.readout]
        if self.key:
            parts.append(ipywidgets.HTML(key_html(self.key)))
        self.widget = ipywidgets.VBox([*parts, self.image])
        self.update()

    @property
    def values(self) -> dict[str, Any]:
        """The current value of every control."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> Any:
        """Set several controls, redraw once, and return the new data."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"expected controls among {sorted(self.controls)}, got {unknown}")
        with self.widget.hold_sync():
            self._holding = True
            try:
                for name, value in values.items():
                    self.controls[name].value = value
            finally:
                self._holding = False
        return self.update()

    def update(self) -> Any:
        """Recompute the data from the controls; redraw the picture and the readout."""
        self.data = self.compute(**self.values)
        self.text = self.describe(self.data)
        self._figure.clear()
        self.axes = self.make_axes(self._figure)
        self.draw(self.data, self.axes)
        self.png = _png(self._figure)
        self.image.value = self.png
        self.readout.value = self.text
        return self.data

    _holding = False

    def _on_change(self, _change) -> None:
        if not self._holding:
            self.update()

    def snapshot_png(self) -> bytes:
        """The static picture for GitHub and nbconvert: the readout above, the key below."""
        figure = Figure(figsize=self.figsize, dpi=FIGURE_DPI)
        self.draw(self.data, self.make_axes(figure))
        figure.suptitle(self.text, fontsize=9, y=1.0, va="bottom")
        if self.key:
            handles = [_key_handle(entry) for entry in self.key]
            ncol = 2 if len(handles) == 4 else min(len(handles), 3)  # 2 x 2, or rows of 3
            figure.legend(
                handles=handles,
                loc="upper center",
                bbox_to_anchor=(0.5, 0.0),
                ncol=ncol,
                fontsize=8,
            )
        return _png(figure, bbox_inches="tight")

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["image/png"] = base64.b64encode(self.snapshot_png()).decode("ascii")
        bundle["text/plain"] = self.text
        return bundle


def _single_axes(figure: Figure):
    figure.subplots_adjust(**SINGLE_AXES)
    return figure.add_subplot()


def _png(figure: Figure, **kwargs) -> bytes:
    buffer = io.BytesIO()
    # Compression level 1 instead of 6: the same pixels, faster, files ~1.5 times larger.
    figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 1}, **kwargs)
    return buffer.getvalue()


def _key_handle(entry: KeyEntry) -> Line2D:
    return Line2D(
        [],
        [],
        color=entry.color,
        lw=0 if entry.marker else entry.linewidth,
        ls=entry.linestyle,
        marker=entry.marker or None,
        label=entry.label,
    )


# ---------------------------------------------------------------- pieces the explorers share


def slider(description: str, value: float, low: float, high: float, step: float = 0.01):
    """A float slider that redraws when it is let go, in the explorers' look."""
    return ipywidgets.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        readout_format=".2f",
        style=CONTROL_STYLE,
        layout=CONTROL_LAYOUT,
    )


def int_slider(description: str, value: int, low: int, high: int):
    """An integer slider that redraws when it is let go, in the explorers' look."""
    return ipywidgets.IntSlider(
        value=value,
        min=low,
        max=high,
        description=description,
        continuous_update=False,
        style=CONTROL_STYLE,
        layout=CONTROL_LAYOUT,
    )


def dropdown(description: str, options, value):
    """A dropdown in the explorers' look; ``options``: labels, or (label, value) pairs."""
    return ipywidgets.Dropdown(
        options=options,
        value=value,
        description=description,
        style=CONTROL_STYLE,
        layout=CONTROL_LAYOUT,
    )


def toggle(description: str, options, value) -> ipywidgets.ToggleButtons:
    """Toggle buttons, described on their left like the sliders."""
    buttons = ipywidgets.ToggleButtons(
        options=options,
        value=value,
        description=description,
        style={**CONTROL_STYLE, "button_width": "10em"},
    )
    # ipywidgets 8 puts the description above the buttons; the class every inline control of
    # ipywidgets has puts it on their left, right-aligned like the sliders' descriptions.
    buttons.add_class("widget-inline-hbox")
    return buttons


def few_ticks(ax, x, y) -> None:
    """Few, small tick labels. ``x``, ``y``: the positions, or how many at most."""
    for axis, ticks in ((ax.xaxis, x), (ax.yaxis, y)):
        if isinstance(ticks, int):
            axis.set_major_locator(MaxNLocator(ticks))
        else:
            axis.set_ticks(ticks)
    ax.tick_params(labelsize=7)


def add_axes(figure, left: float, bottom: float, width: float, height: float, **kwargs):
    """An Axes placed in inches from the figure's bottom-left corner (a square stays square)."""
    fig_w, fig_h = figure.get_size_inches()
    return figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h), **kwargs)


@functools.cache
def explorer_photo() -> np.ndarray:
    """The square sample photo, shrunk once, smoothly (Lanczos), to EXPLORER_PHOTO_PIXELS:
    (H, W, 4) uint8 RGBA. Every call returns the same array, so it is read-only."""
    photo = PIL.Image.fromarray(np.round(sample_photo() * 255).astype(np.uint8))
    size = (EXPLORER_PHOTO_PIXELS, EXPLORER_PHOTO_PIXELS)
    photo = np.array(photo.resize(size, PIL.Image.Resampling.LANCZOS).convert("RGBA"))
    photo.flags.writeable = False
    return photo
