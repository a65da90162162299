"""Pictures of images, boxes, anchors and matches, drawn with matplotlib.

Every function draws on a matplotlib ``Axes`` you pass in, in image-fraction coordinates
(0..1 across, 0..1 down), so the same function serves a notebook figure and a widget.
Colours come from the Okabe-Ito palette, which colour-blind readers can tell apart.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import NamedTuple

import matplotlib.cbook
import matplotlib.image
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ssd_lesson import checks

GROUND_TRUTH_COLOR = "#009E73"  # bluish green
FORCED_COLOR = "#D55E00"  # vermillion: rule 1, an object's best anchor
THRESHOLD_COLOR = "#0072B2"  # blue: rule 2, IoU above the threshold
BACKGROUND_COLOR = "#999999"  # grey: matched nothing
ANCHOR_COLOR = "#E69F00"  # orange: an anchor, before any matching
PREDICTION_COLOR = "#CC79A7"  # reddish purple: a box made of offsets (predicted or decoded)
MINED_COLOR = "#F0E442"  # yellow: a hard negative, mined for the loss (lesson 05)
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
# Colours for telling objects or classes apart (object 0, object 1...; ellipse, rectangle...):
# none of them is one of the series' colours above, so a colour never means two things.
OBJECT_PALETTE = ("#332288", "#882255", "#999933", "#88CCEE", "#44AA99")


def sample_photo(square: bool = True) -> np.ndarray:
    """A real photograph shipped with matplotlib (Grace Hopper), as an (H, W, 3) float array.

    With ``square=True`` (the default) it is cropped to its top square, as SSD300 sees a square
    300 x 300 input; otherwise it is the full 600 x 512 photograph.
    """
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
        photo = matplotlib.image.imread(file).astype(np.float32) / 255.0
    if square:
        side = min(photo.shape[:2])
        photo = photo[:side, :side]
    return photo


def show_image(ax: Axes, image=None, title: str | None = None) -> Axes:
    """Show an image stretched over [0, 1] x [0, 1], or a blank canvas if ``image`` is None.

    ``image`` may be an (H, W, 3) array or a (3, H, W) tensor. The y axis points down, as in
    image coordinates, and the axes keep the image's proportions.
    """
    ax.set_xlim(0, 1)
    ax.set_ylim(1, 0)
    if image is None:
        ax.set_facecolor("white")
        ax.set_aspect("equal")
    else:
        if not hasattr(image, "ndim"):
            raise ValueError(
                f"expected an image as an (H, W, 3) array or a (3, H, W) tensor, got "
                f"{type(image).__name__}; to show a file, read it first (matplotlib.image.imread)"
            )
        if image.ndim != 3:
            raise ValueError(
                f"expected one image, (H, W, 3) array or (3, H, W) tensor, got shape "
                f"{tuple(image.shape)}; pick one image of the batch, e.g. images[0]"
            )
        if isinstance(image, torch.Tensor):
            image = image.detach().cpu().permute(1, 2, 0).numpy()
        height, width = image.shape[:2]
        ax.imshow(image, extent=(0, 1, 1, 0))
        ax.set_aspect(height / width)
    ax.set_xticks([0, 0.5, 1])
    ax.set_yticks([0, 0.5, 1])
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def draw_boxes(
    ax: Axes,
    boxes_xyxy,
    color: str | Sequence[str] = ANCHOR_COLOR,
    labels: Sequence[str] | None = None,
    linewidth: float = 1.5,
    linestyle: str = "-",
    alpha: float = 1.0,
) -> Axes:
    """Outline xyxy boxes (fractions) on ``ax``, with an optional text label at each corner."""
    boxes = checks.boxes(boxes_xyxy, "boxes_xyxy", fractions=False).detach().cpu().numpy()
    if len(boxes) == 0:
        return ax
    x1, y1, x2, y2 = boxes.T
    corners = np.stack([np.stack(p, axis=-1) for p in ((x1, y1), (x2, y1), (x2, y2), (x1, y2))], 1)
    # One collection for all boxes: thousands of anchors still draw in milliseconds.
    ax.add_collection(
        PolyCollection(
            corners,
            closed=True,
            facecolors="none",
            edgecolors=color,
            linewidths=linewidth,
            linestyles=linestyle,
            alpha=alpha,
        )
    )
    if labels is not None:
        colors = [color] * len(boxes) if isinstance(color, str) else list(color)
        if len(labels) != len(boxes) or len(colors) != len(boxes):
            raise ValueError(
                f"expected one label and one colour per box ({len(boxes)}), got {len(labels)} "
                f"labels and {len(colors)} colours"
            )
        for (bx, by), text, c in zip(corners[:, 0], labels, colors, strict=True):
            ax.text(
                bx,
                by,
                text,
                color="white",
                fontsize=7,
                va="top",  # inside the box, below its top-left corner (y points down)
                ha="left",
                bbox={"facecolor": c, "edgecolor": "none", "pad": 1, "alpha": 0.9},
            )
    return ax


def draw_anchors(ax: Axes, anchors, color: str = ANCHOR_COLOR, **kwargs) -> Axes:
    """Outline anchors (xyxy fractions, as ``make_anchors`` returns them) and dot their centres."""
    anchors = checks.boxes(anchors, "anchors")
    draw_boxes(ax, anchors, color=color, **kwargs)
    centres = ((anchors[:, :2] + anchors[:, 2:]) / 2).unique(dim=0).numpy()
    ax.plot(centres[:, 0], centres[:, 1], ".", color=color, markersize=3)
    return ax


def draw_grid(ax: Axes, rows: int, cols: int, color: str = "white", alpha: float = 0.6) -> Axes:
    """Draw the cell borders of a rows x cols feature map laid over the image."""
    xs = np.linspace(0, 1, cols + 1)
    ys = np.linspace(0, 1, rows + 1)
    segments = [((x, 0), (x, 1)) for x in xs] + [((0, y), (1, y)) for y in ys]
    ax.add_collection(LineCollection(segments, colors=color, linewidths=0.6, alpha=alpha))
    return ax


def object_colors(count: int) -> list[str]:
    """One colour per object (0, 1, 2...), from ``OBJECT_PALETTE``; repeats after five."""
    return [OBJECT_PALETTE[i % len(OBJECT_PALETTE)] for i in range(count)]


def draw_matches(
    ax: Axes, anchors, gt_boxes, explanation, show_background=True, by_object=False
) -> Axes:
    """Draw the matches of ``explanation`` (from explain_matches) over ground truth, green dashed.

    By default anchors are coloured by the rule that picked them: forced matches (rule 1)
    vermillion, threshold matches (rule 2) blue, background grey; an anchor picked by both rules
    is drawn as forced. With ``by_object=True`` each positive anchor takes the colour of its
    object (``object_colors``; forced ones thicker) and each object is tagged "object i".
    """
    anchors = checks.anchors(anchors)
    forced = explanation.forced
    if show_background:
        background = explanation.matched_gt < 0
        draw_boxes(ax, anchors[background], BACKGROUND_COLOR, linewidth=0.5, alpha=0.35)
    if by_object:
        colors = object_colors(len(gt_boxes))
        for index, color in enumerate(colors):
            mine = explanation.matched_gt == index
            draw_boxes(ax, anchors[mine & ~forced], color, linewidth=1.5)
            draw_boxes(ax, anchors[mine & forced], color, linewidth=3)
        draw_boxes(ax, gt_boxes, GROUND_TRUTH_COLOR, linewidth=3, linestyle="--")
        names = [f"object {i}" for i in range(len(colors))]
        return draw_boxes(ax, gt_boxes, colors, names, linewidth=0)  # tags in the objects' colours
    draw_boxes(ax, anchors[explanation.above_threshold & ~forced], THRESHOLD_COLOR, linewidth=1.5)
    draw_boxes(ax, anchors[forced], FORCED_COLOR, linewidth=2.5)
    draw_boxes(ax, gt_boxes, GROUND_TRUTH_COLOR, linewidth=3, linestyle="--")
    return ax


class KeyEntry(NamedTuple):
    """One line of a colour key: what a colour (and line style or marker) means."""

    color: str
    label: str
    linestyle: str = "-"
    linewidth: float = 1.5
    marker: str = ""  # e.g. "." for a key entry that is a dot, not a line


def legend_below(
    ax: Axes, entries: Sequence[KeyEntry], ncol: int = 2, offset: float = -0.07
) -> Axes:
    """A legend of ``entries`` below the picture, so that it never covers a box.

    ``offset``: where its top is, in fractions of the Axes' height below its bottom edge; more
    negative to clear an x label."""
    handles = [
        Line2D(
            [],
            [],
            color=e.color,
            lw=0 if e.marker else e.linewidth,
            ls=e.linestyle,
            marker=e.marker or None,
            label=e.label,
        )
        for e in entries
    ]
    ax.legend(
        handles=handles, loc="upper center", bbox_to_anchor=(0.5, offset), ncol=ncol, fontsize=8
    )
    return ax


def key_html(entries: Sequence[tuple[str, str]] | Sequence[KeyEntry]) -> str:
    """(colour, name) pairs or KeyEntry's as one line of HTML: a widget's key, drawn once."""
    spans = [
        f'<span style="color:{color}; font-weight:bold">■ {name}</span>'
        for color, name, *_ in entries
    ]
    return " &nbsp; ".join(spans)


def matching_legend(ax: Axes) -> Axes:
    """A legend naming the colours of ``draw_matches``."""
    entries = [
        KeyEntry(GROUND_TRUTH_COLOR, "ground truth", "--", 3),
        KeyEntry(FORCED_COLOR, "forced (rule 1; may pass rule 2 too)", linewidth=2.5),
        KeyEntry(THRESHOLD_COLOR, "IoU ≥ threshold (rule 2)", linewidth=1.5),
        KeyEntry(BACKGROUND_COLOR, "background", linewidth=1),
    ]
    return legend_below(ax, entries)


def matching_key_html() -> str:
    """The colours of ``draw_matches`` as one line of HTML, for widgets."""
    return key_html(
        [
            (GROUND_TRUTH_COLOR, "ground truth (dashed)"),
            (FORCED_COLOR, "forced (rule 1; may pass rule 2 too)"),
            (THRESHOLD_COLOR, "IoU ≥ threshold (rule 2)"),
            (BACKGROUND_COLOR, "background"),
        ]
    )


def render_png(draw: Callable[[Axes], object], size=(5.0, 4.0), dpi: int = 80) -> bytes:
    """Draw with ``draw(ax)`` on a fresh figure and return PNG bytes (no pyplot, no display)."""
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    draw(figure.add_subplot())
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def plot_history(history, ax=None):
    """Loss curves: total, localization and classification (train), validation loss and mAP.

    ``history`` is a ``ssd_lesson.train.History`` (or anything with its fields). With per-batch
    losses (what ``fit`` records), the training curves have one point per batch and the x axis
    counts epochs, so that the validation points sit at the end of each epoch. Otherwise each
    curve has one point per epoch. Validation mAP, if any, uses a second axis on the right.
    ``ax`` may be an Axes, a Figure (one Axes is added) or None (a new pyplot figure).
    Returns the Axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4))
    elif hasattr(ax, "add_subplot"):  # a Figure
        ax = ax.add_subplot(1, 1, 1)
    epochs = list(range(1, history.epochs + 1))
    batches = len(history.batch_loss)
    if batches and history.epochs:
        x = [(i + 1) * history.epochs / batches for i in range(batches)]  # in epochs
        train = (history.batch_loss, history.batch_localization, history.batch_classification)
        suffix, style, width = " (each batch)", "-", 1.0
    else:
        x, suffix, style, width = epochs, "", "o-", 1.5
        train = (history.train_loss, history.train_localization, history.train_classification)
    colors = ("black", "tab:blue", "tab:orange")
    parts = ("total", "localization", "classification")
    for values, part, color in zip(train, parts, colors, strict=True):
        ax.plot(x, values, style, color=color, linewidth=width, label=f"train: {part}{suffix}")
    if history.val_loss:
        ax.plot(epochs, history.val_loss, "s-", color="tab:red", label="validation: total")
    ax.set_xlabel("epoch")
    ax.set_xticks(range(0 if batches else 1, history.epochs + 1))
    ax.set_ylabel("loss")
    ax.set_ylim(bottom=0)
    handles, names = ax.get_legend_handles_labels()
    if history.val_map:
        right = ax.twinx()
        (line,) = right.plot(epochs, history.val_map, "^-", color="tab:green")
        right.set_ylabel("validation mAP@0.5")
        right.set_ylim(0, 1)
        handles.append(line)
        names.append("validation mAP@0.5")
    ax.legend(
        handles, names, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize="small"
    )
    return ax


def series_key_entries() -> list[KeyEntry]:
    """The series' colour key, the same in every lesson: what each colour of box means."""
    return [
        KeyEntry(GROUND_TRUTH_COLOR, "ground truth (drawn by a person)", "--", 2.5),
        KeyEntry(ANCHOR_COLOR, "anchor (fixed box)", linewidth=1.5),
        KeyEntry(THRESHOLD_COLOR, "positive: anchor matched to an object (02)", linewidth=2),
        KeyEntry(
            MINED_COLOR, "mined negative: background anchor kept in the loss (05)", linewidth=2
        ),
        KeyEntry(PREDICTION_COLOR, "prediction: a box the network outputs", linewidth=2),
    ]


def series_legend(ax: Axes, which: Sequence[str] | None = None, ncol: int = 2) -> Axes:
    """The series' colour key as a legend below ``ax``; ``which`` picks entries by first word.

    ``series_legend(ax, ["ground", "anchor"])`` keeps the ground-truth and anchor entries only.
    """
    entries = series_key_entries()
    if which is not None:
        names = [e.label.split()[0].rstrip(":") for e in entries]
        unknown = [w for w in which if w not in names]
        if unknown:
            raise ValueError(f"expected entries among {names}, got {unknown}")
        entries = [e for e, name in zip(entries, names, strict=True) if name in which]
    return legend_below(ax, entries, ncol=ncol)


def draw_series_key(ax: Axes) -> Axes:
    """The series' colour key drawn as boxes: one sample box per colour, its meaning beside it."""
    show_image(ax)
    entries = series_key_entries()
    for row, entry in enumerate(entries):
        top = 0.05 + row * 0.19
        box = torch.tensor([[0.03, top, 0.2, top + 0.13]])
        draw_boxes(ax, box, entry.color, linewidth=entry.linewidth + 0.5, linestyle=entry.linestyle)
        ax.text(0.25, top + 0.065, entry.label, va="center", fontsize=9)
    ax.set_aspect("auto")
    ax.axis("off")
    return ax


def draw_pipelines(
    single_shot_ax: Axes, two_stage_ax: Axes, num_anchors: int = 8732, num_proposals: int = 300
) -> tuple[Axes, Axes]:
    """SSD's one pass beside a two-stage detector's propose-then-classify, as two flow charts.

    Each step is a rounded box, arrows show the order; the two-stage detector's per-region steps
    are drawn as a stack of cards, one per region proposal.
    """
    single = [
        ("image", "white"),
        ("backbone", "#DDDDDD"),
        ("feature maps\n(several sizes)", "#DDDDDD"),
        ("heads\n(one per map)", "#DDDDDD"),
        (f"offsets + class scores\nfor every anchor\n({num_anchors} rows)", PREDICTION_COLOR),
    ]
    two = [
        ("image", "white"),
        ("backbone", "#DDDDDD"),
        ("feature map", "#DDDDDD"),
        (f"propose regions\n(~{num_proposals} boxes)", "#DDDDDD"),
        ("crop each region\nout of the\nfeature map", "stack"),
        ("classify each region\n+ correct its box", "stack"),
    ]
    titles = (
        "Single shot (SSD): one pass, every anchor answered at once",
        f"Two-stage (Faster R-CNN): propose, then a second pass per region (×{num_proposals})",
    )
    for ax, steps, title in zip((single_shot_ax, two_stage_ax), (single, two), titles, strict=True):
        ax.set_xlim(0, len(two))
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(title, fontsize=10, loc="left")
        for i, (text, colour) in enumerate(steps):
            x = i + 0.5
            if colour == "stack":
                for k in (2, 1):  # cards behind: one per region
                    ax.text(
                        x + 0.06 * k,
                        0.5 + 0.06 * k,
                        text,
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="none",
                        bbox={"boxstyle": "round", "fc": "#FFF2CC", "ec": "#999999"},
                    )
                colour = "#FFF2CC"
            ax.text(
                x,
                0.5,
                text,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round", "fc": colour, "ec": "black"},
            )
            if i:
                ax.annotate(
                    "",
                    xy=(x - 0.42, 0.5),
                    xytext=(x - 0.58, 0.5),
                    arrowprops={"arrowstyle": "->", "lw": 1.5},
                )
    return single_shot_ax, two_stage_ax
