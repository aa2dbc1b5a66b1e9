"""The one look of every figure: palette, sizes, caption, and saving as PNG + PDF.

Figures are built as `matplotlib.figure.Figure` objects, never through pyplot, so nothing depends
on (or changes) the global backend or rcParams: safe under Agg, in tests and in notebooks.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Iterable

from matplotlib.figure import Figure

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
# Sequential map for many ordered lines (training curves): perceptually uniform and colour-blind safe.
SEQUENTIAL_MAP = "cividis"


def group_colours(groups: Iterable[str]) -> dict[str, str]:
    """A palette colour per group, in order of first appearance."""
    unique = list(dict.fromkeys(groups))
    return {group: OKABE_ITO[index % len(OKABE_ITO)] for index, group in enumerate(unique)}


def new_figure(height: float, width: float = FIGURE_WIDTH) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def apply_style(figure: Figure, caption: str) -> Figure:
    """Give every axes of `figure` the shared look and put the wrapped caption under the figure."""
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
    if caption:
        # Roughly 0.5 em per character; the layout reserves the caption's height at the bottom.
        characters = max(40, int(figure.get_figwidth() * 72 / (0.5 * SMALL_FONT_SIZE)))
        lines = textwrap.wrap(caption, characters)
        height = (len(lines) * SMALL_FONT_SIZE * 1.3 + 8) / 72 / figure.get_figheight()
        figure.text(0.01, 0.005, "\n".join(lines), ha="left", va="bottom", fontsize=SMALL_FONT_SIZE, color="#333333")
        engine = figure.get_layout_engine()
        if engine is not None:
            engine.set(rect=(0, height, 1, 1 - height))
    return figure


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
