"""Figure `codesign`: FCMAE's gain with the V1 and the V2 block, this run beside the paper.

Bars start at zero and each panel marks chance: a proxy's co-design rows can sit a few points
above a guess, and an axis cut just below the bars would draw tenths of a point as large gains.
The gains themselves are printed above the bars.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from roadmap.report.plots.style import (
    NEUTRAL,
    OURS_COLOUR,
    PAPER_COLOUR,
    SMALL_FONT_SIZE,
    apply_style,
    chance_handle,
    chance_level,
    chance_line,
    figure_legend,
    new_figure,
)

BAR_WIDTH = 0.36
PAPER_CLASSES = 1000  # the paper's columns are ImageNet-1K


def _panel(axis, frame: pd.DataFrame, prefix: str, colour: str, title: str, classes: int | None) -> None:
    blocks = frame[frame["supervised"].notna() | frame["paper supervised"].notna()].iloc[:2]
    positions = np.arange(len(blocks))
    supervised = blocks[f"{prefix}supervised"].to_numpy(float)
    fcmae = blocks[f"{prefix}FCMAE"].to_numpy(float)
    axis.bar(positions - BAR_WIDTH / 2, supervised, BAR_WIDTH, color=NEUTRAL)
    axis.bar(positions + BAR_WIDTH / 2, fcmae, BAR_WIDTH, color=colour)
    for position, base, value in zip(positions, supervised, fcmae):
        if not (math.isnan(base) or math.isnan(value)):
            axis.annotate(
                f"{value - base:+.2f}",
                (position + BAR_WIDTH / 2, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=SMALL_FONT_SIZE,
            )
    values = np.concatenate([supervised, fcmae])
    values = values[~np.isnan(values)]
    # From zero, with room above the tallest bar for its gain.
    axis.set_ylim(0, max(1.0, values.max() * 1.12) if len(values) else 100.0)
    chance_line(axis, classes)
    axis.set_xticks(positions, list(blocks["block"]))
    axis.set_ylabel("top-1 (%)")
    axis.set_title(title)


def codesign_figure(frame: pd.DataFrame, caption: str, classes: int | None = None) -> Figure:
    """Two panels (this run, the paper): top-1 of each block supervised and with FCMAE, gains
    annotated, chance marked (the run's `classes`; ImageNet-1K's for the paper)."""
    figure = new_figure(3.0)
    ours, paper = figure.subplots(1, 2)
    _panel(ours, frame, "", OURS_COLOUR, "this run", classes)
    _panel(paper, frame, "paper ", PAPER_COLOUR, "paper: ConvNeXt-B, ImageNet-1K", PAPER_CLASSES)
    handles = [
        Patch(color=NEUTRAL, label="supervised"),
        Patch(color=OURS_COLOUR, label="FCMAE + fine-tuning, this run"),
        Patch(color=PAPER_COLOUR, label="FCMAE + fine-tuning, paper"),
    ]
    handles += [chance_handle(count) for count in dict.fromkeys((classes, PAPER_CLASSES)) if chance_level(count)]
    figure_legend(figure, handles, ncols=3)
    return apply_style(figure, caption)
