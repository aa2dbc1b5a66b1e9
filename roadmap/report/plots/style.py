"""The one look of every figure: palette, sizes, caption, and saving as PNG + PDF.

Figures are built as `matplotlib.figure.Figure` objects, never through pyplot, so nothing depends
on (or changes) the global backend or rcParams: safe under Agg, in tests and in notebooks.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Iterable

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

# Okabe & Ito (2008): eight colours told apart under the common colour-vision deficiencies.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")
OURS_COLOUR = "#0072B2"
PAPER_COLOUR = "#D55E00"
NEUTRAL = "#6E6E6E"
BAND_COLOUR = "#F2F2F2"
GRID_COLOUR = "#DDDDDD"
FONT_SIZE = 8.5
SMALL_FONT_SIZE = 7.0
BRANCH_HATCH = "////"
FIGURE_WIDTH = 7.0  # inches: a full page width, readable when shrunk to one column
# Qualitative palette for many neighbouring lines (training curves): tab20's ten saturated hues
# first, then their light partners, so rows next to each other in the roadmap never share a hue.
_TAB20 = (
    "#1f77b4",
    "#aec7e8",
    "#ff7f0e",
    "#ffbb78",
    "#2ca02c",
    "#98df8a",
    "#d62728",
    "#ff9896",
    "#9467bd",
    "#c5b0d5",
    "#8c564b",
    "#c49c94",
    "#e377c2",
    "#f7b6d2",
    "#7f7f7f",
    "#c7c7c7",
    "#bcbd22",
    "#dbdb8d",
    "#17becf",
    "#9edae5",
)
LINE_COLOURS = _TAB20[0::2] + _TAB20[1::2]
CHANCE_COLOUR = "#444444"
CHANCE = "chance"  # gid of chance_line's line
CHANCE_DASHES = (0, (4, 2))
_CHANCE_STYLE = {"color": CHANCE_COLOUR, "linestyle": CHANCE_DASHES, "linewidth": 0.9}  # line and legend entry
CAPTION = "caption"  # gid of the caption text
LEGEND_BELOW, LEGEND_RIGHT = "legend-below", "legend-right"  # gids of figure_legend's legends
POINT_LABEL = "point-label"  # gid of the point labels that place_point_labels arranges
# Candidate label offsets (points): rings of growing distance, eight directions each, nearest first.
_DIRECTIONS = (
    (1, 1),
    (1, -1),
    (-1, 1),
    (-1, -1),
    (1, 0),
    (-1, 0),
    (0, 1),
    (0, -1),
    (2, 1),
    (2, -1),
    (-2, 1),
    (-2, -1),
    (1, 2),
    (1, -2),
    (-1, 2),
    (-1, -2),
)
_RINGS = (3, 8, 14, 22, 32, 44, 58, 74, 92)


def line_colour(index: int) -> str:
    return LINE_COLOURS[index % len(LINE_COLOURS)]


def wrap_words(text: str, width: int) -> list[str]:
    """Wrap at spaces only: a name such as 'leave_one_out' is one word, kept whole on one line even
    when it is longer than `width` (a line cut at '_' or '-' reads as a word broken in two)."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def chance_level(classes: int | None) -> float | None:
    """Top-1 (%) of a uniform guess over `classes` classes; None when the count is unknown."""
    return 100.0 / classes if classes and classes > 0 else None


def chance_line(axis: Axes, classes: int | None, vertical: bool = False) -> float | None:
    """A dashed line at chance accuracy (100 / classes %) on the accuracy axis (y, or x when
    `vertical`), inside that axis' limits: without it a proxy's 12% cannot be told from a guess.
    An autoscaled axis takes the line in by itself; fixed limits are widened to it. Returns the
    chance level (None: nothing drawn)."""
    chance = chance_level(classes)
    if chance is None:
        return None
    draw = axis.axvline if vertical else axis.axhline
    draw(chance, gid=CHANCE, label=chance_text(classes), zorder=2.5, **_CHANCE_STYLE)  # over bars, under labels
    if not (axis.get_autoscalex_on() if vertical else axis.get_autoscaley_on()):
        low, high = axis.get_xlim() if vertical else axis.get_ylim()
        pad = 0.03 * abs(high - low)
        inverted = low > high
        low, high = sorted((low, high))
        # Only where the line would fall outside; never below zero (bars start there).
        low = max(0.0, chance - pad) if chance <= low else low
        high = chance + pad if chance >= high else high
        (axis.set_xlim if vertical else axis.set_ylim)(*((high, low) if inverted else (low, high)))
    return chance


def chance_text(classes: int) -> str:
    return f"chance (100/{classes} classes = {100.0 / classes:.3g}%)"


def chance_handle(classes: int) -> Line2D:
    """A legend entry for chance_line."""
    return Line2D([], [], label=chance_text(classes), **_CHANCE_STYLE)


def group_colours(groups: Iterable[str]) -> dict[str, str]:
    """A palette colour per group, in order of first appearance."""
    unique = list(dict.fromkeys(groups))
    return {group: OKABE_ITO[index % len(OKABE_ITO)] for index, group in enumerate(unique)}


def new_figure(height: float, width: float = FIGURE_WIDTH) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)  # a renderer to measure text with (label placement), without pyplot
    return figure


def apply_style(figure: Figure, caption: str) -> Figure:
    """Give every axes of `figure` the shared look and put the wrapped caption under the figure,
    with figure_legend's legends between the caption and the axes."""
    for axis in figure.axes:
        axis.set_axisbelow(True)
        axis.tick_params(labelsize=FONT_SIZE, length=3, width=0.6, color=NEUTRAL)
        axis.xaxis.label.set_size(FONT_SIZE)
        axis.yaxis.label.set_size(FONT_SIZE)
        axis.title.set_size(FONT_SIZE + 1)
        for spine in axis.spines.values():
            spine.set_color(NEUTRAL)
            spine.set_linewidth(0.6)
        legend = axis.get_legend()
        if legend is not None:
            legend.get_frame().set_edgecolor(GRID_COLOUR)
            for text in legend.get_texts():
                text.set_fontsize(SMALL_FONT_SIZE)
    for text in figure.texts:
        text.set_fontsize(FONT_SIZE + 1)
    bottom = 0.0
    if caption:
        # Roughly 0.5 em per character; the layout reserves the caption's height at the bottom.
        characters = max(40, int(figure.get_figwidth() * 72 / (0.5 * SMALL_FONT_SIZE)))
        lines = textwrap.wrap(caption, characters)
        bottom = (len(lines) * SMALL_FONT_SIZE * 1.3 + 8) / 72 / figure.get_figheight()
        figure.text(
            0.01,
            0.005,
            "\n".join(lines),
            ha="left",
            va="bottom",
            fontsize=SMALL_FONT_SIZE,
            color="#333333",
            gid=CAPTION,
        )
    bottom, right = _place_legends(figure, bottom)
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.set(rect=(0, bottom, right, 1 - bottom))
    return figure


def figure_legend(figure: Figure, handles: list | None = None, below: bool = True, **style) -> Legend:
    """A legend for the whole figure, under the axes (`below`) or right of them. apply_style puts it
    above the caption and keeps the axes off it: matplotlib's "outside" legends sit at the figure's
    edge, which is where the caption is."""
    options = {"fontsize": SMALL_FONT_SIZE, "frameon": False, "borderaxespad": 0.0, **style}
    if handles is not None:
        options["handles"] = handles
    legend = figure.legend(loc="lower center" if below else "center left", **options)
    legend.set_gid(LEGEND_BELOW if below else LEGEND_RIGHT)
    return legend


def _place_legends(figure: Figure, bottom: float) -> tuple[float, float]:
    """Anchor figure_legend's legends in the space above the caption (`bottom`, a fraction of the
    figure's height): a legend below sits right on the caption, one on the right beside the axes.
    Returns the (bottom, right) edges of what is left for the axes. Legends are measured before
    the layout: their size does not depend on where they go."""
    renderer = figure.canvas.get_renderer()
    to_figure = figure.transFigure.inverted()
    gap_x, gap_y = 6 / 72 / figure.get_figwidth(), 6 / 72 / figure.get_figheight()  # 6 points of air
    right = 1.0
    legends = [legend for legend in figure.legends if legend.get_gid() in (LEGEND_BELOW, LEGEND_RIGHT)]
    for legend in sorted(legends, key=lambda legend: legend.get_gid() != LEGEND_BELOW):  # below ones first
        box = legend.get_window_extent(renderer).transformed(to_figure)
        if legend.get_gid() == LEGEND_BELOW:
            legend.set_bbox_to_anchor((0, bottom + gap_y / 2, 1, box.height), transform=figure.transFigure)
            bottom += box.height + gap_y
        else:
            right -= box.width + gap_x
            legend.set_bbox_to_anchor((right + gap_x / 2, bottom, box.width, 1 - bottom), transform=figure.transFigure)
    return bottom, right


def save_figure(figure: Figure, stem: str | Path, formats: Iterable[str] = ("png", "pdf")) -> dict[str, Path]:
    """Write `stem`.png and `stem`.pdf (or the given formats); returns {format: path}."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    for extension in formats:
        path = stem.with_name(f"{stem.name}.{extension}")
        figure.savefig(path, dpi=200, bbox_inches="tight", pad_inches=0.05)
        paths[extension] = path
    return paths


def change_interval(
    axis: Axes,
    value: float,
    position: float,
    low: float,
    high: float,
    colour: str,
    width: float = 1.2,
    cap: float = 3.0,
) -> None:
    """A change's confidence interval as a horizontal error bar at `position`, when both ends are known."""
    if math.isfinite(low) and math.isfinite(high):
        axis.errorbar(
            value,
            position,
            xerr=[[value - low], [high - value]],
            fmt="none",
            ecolor=colour,
            elinewidth=width,
            capsize=cap,
            zorder=3,
        )


def point_label(axis: Axes, text: str, x: float, y: float, **style) -> Annotation:
    """A label for the point (x, y), placed later by place_point_labels; outside the layout, so
    moving it never changes the axes it must fit in."""
    annotation = axis.annotate(
        text,
        (x, y),
        xytext=(_RINGS[0], _RINGS[0]),
        textcoords="offset points",
        gid=POINT_LABEL,
        fontsize=style.pop("fontsize", SMALL_FONT_SIZE - 1),
        color=style.pop("color", "#333333"),
        arrowprops={"arrowstyle": "-", "color": "#999999", "linewidth": 0.5, "shrinkA": 0, "shrinkB": 3},
        **style,
    )
    annotation.set_in_layout(False)
    return annotation


def _overlap(box: Bbox, others: list[Bbox]) -> float:
    """Total area of `box` covered by `others` (pixels squared)."""
    area = 0.0
    for other in others:
        width = min(box.x1, other.x1) - max(box.x0, other.x0)
        height = min(box.y1, other.y1) - max(box.y0, other.y0)
        if width > 0 and height > 0:
            area += width * height
    return area


def _candidates():
    """(offset in points, horizontal, vertical alignment) in the order they are tried."""
    for ring in _RINGS:
        for dx, dy in _DIRECTIONS:
            scale = ring / max(abs(dx), abs(dy))
            yield (
                (dx * scale, dy * scale),
                "left" if dx > 0 else "right" if dx < 0 else "center",
                "bottom" if dy > 0 else "top" if dy < 0 else "center",
            )


def _place(annotation: Annotation, renderer, labels: list[Bbox], markers: list[Bbox], frame: Bbox) -> Bbox:
    """Try each candidate offset in turn; keep the first that touches nothing and stays inside the
    axes, else the cheapest: overlapping another label costs far more than covering a marker or
    leaving the axes, so labels stay apart whenever any candidate allows it. Deterministic.

    The text is measured once; candidate boxes are that size moved by the offset (pixels)."""
    size = Text.get_window_extent(annotation, renderer)
    width, height = size.width + 4.0, size.height + 4.0  # 2 px of air on each side
    x, y = annotation.axes.transData.transform(annotation.xy)
    pixels = renderer.points_to_pixels(1.0)
    best: tuple[float, tuple, Bbox] | None = None
    for candidate in _candidates():
        (dx, dy), horizontal, vertical = candidate
        left = x + dx * pixels - {"left": 0.0, "right": width, "center": width / 2}[horizontal]
        bottom = y + dy * pixels - {"bottom": 0.0, "top": height, "center": height / 2}[vertical]
        box = Bbox.from_bounds(left, bottom, width, height)
        outside = width * height - _overlap(box, [frame])
        cost = 1000 * _overlap(box, labels) + _overlap(box, markers) + 4 * outside
        if best is None or cost < best[0]:
            best = (cost, candidate, box)
        if cost == 0:
            break
    (offset, horizontal, vertical), box = best[1], best[2]
    annotation.set_position(offset)
    annotation.set_horizontalalignment(horizontal)
    annotation.set_verticalalignment(vertical)
    if max(abs(offset[0]), abs(offset[1])) <= _RINGS[1]:
        annotation.arrowprops = annotation.arrow_patch = None  # close enough: no leader line
    return box


def place_point_labels(figure: Figure) -> Figure:
    """Arrange every point label (point_label) so that none overlaps another label, a marker or a
    legend: a greedy search over offsets of growing distance, after the layout is final."""
    for axis in figure.axes:
        if any(child.get_gid() == POINT_LABEL for child in axis.texts):
            axis.margins(x=0.08, y=0.08)  # room for the labels of the outermost points
    figure.draw_without_rendering()  # fixes the constrained layout: labels are not part of it
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        labels = [child for child in axis.texts if child.get_gid() == POINT_LABEL]
        if not labels:
            continue
        frame = axis.get_window_extent(renderer)
        points = [axis.transData.transform(label.xy) for label in labels]
        markers = [Bbox.from_bounds(x - 3, y - 3, 6, 6) for x, y in points]
        legend = axis.get_legend()
        placed = []
        if legend is not None:
            box = legend.get_window_extent(renderer)
            # Freeze loc="best" where it is now: labels placed around it must not make it move.
            legend.set_loc(tuple(axis.transAxes.inverted().transform((box.x0, box.y0))))
            placed.append(box)
        for label in labels:
            placed.append(_place(label, renderer, placed, markers, frame))
    return figure


def label_boxes(figure: Figure) -> list[Bbox]:
    """Window extents of every point label, drawn: for overlap checks."""
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    return [
        text.get_window_extent(renderer) for axis in figure.axes for text in axis.texts if text.get_gid() == POINT_LABEL
    ]
