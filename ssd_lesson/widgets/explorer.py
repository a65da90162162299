"""``Explorer``: the widget every lesson's explorer is made of, and its shared pieces.

In JupyterLab an explorer is a live widget: move a control and the picture is redrawn. Where no
widget manager runs (GitHub, nbconvert HTML, a plain terminal) it shows a PNG snapshot and one
line of text instead. The figure is rendered to PNG (or JPEG) with matplotlib's Agg backend and
shown in an ``ipywidgets.Image``, so no Output widget and no ipympl are needed.
"""

from __future__ import annotations

import base64
import functools
import io
import time
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets
import numpy as np
import PIL.Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ssd_lesson.plotting import render_png, sample_photo

# Resolution of the explorers' pictures. Higher looks sharper but redraws more slowly; the target
# is a redraw (control change -> picture ready) within 100 ms (see benchmarks/bench_matching.py).
FIGURE_DPI = 80
# savefig arguments of the live picture's formats. PNG compression level 1 instead of 6: the
# same pixels, ~10 ms faster here, files ~1.5 times larger (still ~20 kB). JPEG quality 90: no
# visible blur on lines.
PICTURE_FORMATS = {
    "png": {"format": "png", "pil_kwargs": {"compress_level": 1}},
    "jpeg": {"format": "jpeg", "pil_kwargs": {"quality": 90}},
}

# Side, in pixels, of the sample photo in an explorer: about what a 5-inch picture at FIGURE_DPI
# shows of it. More pixels would be thrown away by every redraw, at a cost of ~15 ms each.
EXPLORER_PHOTO_PIXELS = 360


class Explorer:
    """A live widget in JupyterLab; a PNG and one line of text where widgets cannot run.

    Args:
        controls: name -> ipywidgets control; its ``value`` is passed to ``compute`` by name.
        compute: ``compute(**values) -> data``, a pure function.
        draw: ``draw(data, ax)`` draws the data on a matplotlib Axes (on what ``make_axes``
            returned, if given). It draws on its axes only: they are cleared before each redraw,
            the figure is not.
        describe: ``describe(data) -> str``, the one-line readout.
        key: optional HTML shown above the picture (a colour key drawn once, not per redraw).
        draw_snapshot: optional ``draw_snapshot(data, ax)`` for the static picture shown where
            widgets cannot run; it may add what the live widget shows around its picture (a
            legend). The readout becomes its title.
        make_axes: optional ``make_axes(figure) -> axes`` for a picture of several Axes; what it
            returns (an Axes, a tuple of them, ...) is what ``draw`` and ``draw_snapshot``
            receive. It is called once for the live figure and once per snapshot. Without it
            the picture is one Axes.
        picture_format: ``"png"`` (sharp lines, the default) or ``"jpeg"`` for the live picture.
            A photo makes PNG slow to encode (~80 ms here) and large (~200 kB); JPEG takes a few
            ms. The snapshot is always PNG.
        keep_axes: before a redraw, remove only what ``draw`` drew (lines, boxes, texts,
            images, the legend, the title) instead of ``ax.clear()``, which rebuilds every tick
            and costs ~13 ms per Axes here. ``draw`` must then set every limit and label itself.
    """

    def __init__(
        self,
        controls: dict[str, ipywidgets.ValueWidget],
        compute: Callable[..., Any],
        draw: Callable[[Any, Any], object],
        describe: Callable[[Any], str],
        figsize=(5.5, 5.0),
        key: str = "",
        draw_snapshot: Callable[[Any, Any], object] | None = None,
        snapshot_figsize=(5.5, 5.0),
        make_axes: Callable[[Figure], Any] | None = None,
        picture_format: str = "png",
        keep_axes: bool = False,
    ):
        if picture_format not in PICTURE_FORMATS:
            raise ValueError(
                f"expected picture_format among {list(PICTURE_FORMATS)}, got {picture_format!r}"
            )
        self.controls = controls
        self._compute, self._draw, self._describe = compute, draw, describe
        self._draw_snapshot = draw_snapshot or draw
        self._snapshot_figsize = snapshot_figsize
        self._make_axes = make_axes
        self._format = picture_format
        self._clear = _remove_artists if keep_axes else Axes.clear
        # One figure, cleared and redrawn on every change: building a new one costs more than
        # the drawing itself. No pyplot, so nothing leaks into the notebook.
        self._figure = Figure(figsize=figsize, dpi=FIGURE_DPI)
        if make_axes is None:
            self._figure.subplots_adjust(left=0.08, right=0.97, bottom=0.07, top=0.93)
            self._axes = self._figure.add_subplot()
        else:
            self._axes = make_axes(self._figure)
        # Shown at its natural size: stretched to the output's width it would look blurred.
        width, height = (round(inches * FIGURE_DPI) for inches in figsize)
        self.image = ipywidgets.Image(
            format=picture_format, layout={"width": f"{width}px", "height": f"{height}px"}
        )
        self.readout = ipywidgets.Label()
        for control in controls.values():
            control.observe(self._on_change, names="value")
        parts = [ipywidgets.VBox(list(controls.values())), self.readout]
        if key:
            parts.append(ipywidgets.HTML(key))
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
        """Recompute the data from the controls and redraw the picture and the readout."""
        self.data = self._compute(**self.values)
        self.text = self._describe(self.data)
        for ax in self._figure.axes:
            self._clear(ax)
        self._draw(self.data, self._axes)
        buffer = io.BytesIO()
        self._figure.savefig(buffer, **PICTURE_FORMATS[self._format])
        self.picture = buffer.getvalue()
        self.image.value = self.picture
        self.readout.value = self.text
        return self.data

    @property
    def png(self) -> bytes:
        """The live picture, for explorers whose picture_format is "png"."""
        if self._format != "png":
            raise AttributeError(f"this explorer draws {self._format}: use .picture")
        return self.picture

    _holding = False

    def _on_change(self, _change) -> None:
        if not self._holding:
            self.update()

    def snapshot_png(self) -> bytes:
        """The static picture for GitHub and nbconvert: the figure, titled with the readout."""
        if self._make_axes is not None:
            figure = Figure(figsize=self._snapshot_figsize, dpi=FIGURE_DPI)
            self._draw_snapshot(self.data, self._make_axes(figure))
            # Just above the figure (bbox_inches="tight" takes it in), clear of the Axes' titles.
            figure.suptitle(self.text, fontsize=9, y=1.0, va="bottom")
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", bbox_inches="tight")
            return buffer.getvalue()

        def draw(ax):
            self._draw_snapshot(self.data, ax)
            ax.set_title(self.text, fontsize=9)

        return render_png(draw, size=self._snapshot_figsize)

    def redraw_ms(self, control: str, values: Sequence[Any], n: int = 20) -> list[float]:
        """Time ``n`` redraws (control change -> picture ready), in ms; ``control`` takes ``values``
        in turn. Consecutive values should differ, or the control does not fire."""
        times = []
        for i in range(n):
            start = time.perf_counter()
            self.controls[control].value = values[i % len(values)]
            times.append((time.perf_counter() - start) * 1000)
        return times

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["image/png"] = base64.b64encode(self.snapshot_png()).decode("ascii")
        bundle["text/plain"] = self.text
        return bundle


def _slider(description: str, value: float, low: float, high: float, step: float = 0.01):
    return ipywidgets.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        readout_format=".2f",
        style={"description_width": "9em"},
        layout={"width": "28em"},
    )


def _few_ticks(ax, x, y) -> None:
    """Few tick labels: each costs ~3 ms per redraw here. ``x``, ``y``: positions, or a count."""
    for axis, ticks in ((ax.xaxis, x), (ax.yaxis, y)):
        if isinstance(ticks, int):
            axis.set_major_locator(MaxNLocator(ticks))
        else:
            axis.set_ticks(ticks)
    ax.tick_params(labelsize=7)


def _add_axes(figure, left: float, bottom: float, width: float, height: float, **kwargs):
    """An Axes placed in inches from the figure's bottom-left corner (a square stays square)."""
    fig_w, fig_h = figure.get_size_inches()
    return figure.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h), **kwargs)


def _remove_artists(ax: Axes) -> None:
    """Undo what a draw function drew on ``ax``, keeping the axes, their ticks and labels."""
    for artist in [*ax.lines, *ax.collections, *ax.patches, *ax.texts, *ax.images]:
        artist.remove()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    ax.set_title("")
    ax.relim()  # forget the removed artists' extent
    ax.autoscale(True)  # ...and limits set by the last draw


@functools.cache
def explorer_photo() -> np.ndarray:
    """The square sample photo, shrunk to EXPLORER_PHOTO_PIXELS: (H, W, 4) uint8 RGBA.

    Shrunk once, smoothly (Lanczos), rather than by matplotlib at every redraw.
    """
    photo = PIL.Image.fromarray(np.round(sample_photo() * 255).astype(np.uint8))
    size = (EXPLORER_PHOTO_PIXELS, EXPLORER_PHOTO_PIXELS)
    return np.asarray(photo.resize(size, PIL.Image.Resampling.LANCZOS).convert("RGBA"))
