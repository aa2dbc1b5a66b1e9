"""Figure `codesign`: FCMAE's gain with the V1 and the V2 block, this run beside the paper."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from roadmap.plot_style import NEUTRAL, OURS_COLOUR, PAPER_COLOUR, SMALL_FONT_SIZE, apply_style, new_figure

BAR_WIDTH = 0.36


def _panel(axis, frame: pd.DataFrame, prefix: str, colour: str, title: str) -> None:
    blocks = frame[frame["supervised"].notna() | frame["paper supervised"].notna()].iloc[:2]
    positions = np.arange(len(blocks))
    supervised = blocks[f"{prefix}supervised"].to_numpy(float)
    fcmae = blocks[f"{prefix}FCMAE"].to_numpy(float)
    axis.bar(positions - BAR_WIDTH / 2, supervised, BAR_WIDTH, color=NEUTRAL, label="supervised")
    axis.bar(positions + BAR_WIDTH / 2, fcmae, BAR_WIDTH, color=colour, label="FCMAE + fine-tuning")
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
    if len(values):
        # Bars start near the lowest value: differences of tenths of a point are the claim.
        low, high = values.min(), values.max()
        margin = max(0.5, 0.4 * (high - low))
        axis.set_ylim(low - margin, high + margin)
    axis.set_xticks(positions, list(blocks["block"]))
    axis.set_ylabel("top-1 (%)")
    axis.set_title(title)
    axis.legend(loc="upper left", frameon=False, fontsize=SMALL_FONT_SIZE)


def codesign_figure(frame: pd.DataFrame, caption: str) -> Figure:
    """Two panels (this run, the paper): top-1 of each block supervised and with FCMAE, gains annotated."""
    figure = new_figure(2.8)
    ours, paper = figure.subplots(1, 2)
    _panel(ours, frame, "", OURS_COLOUR, "this run")
    _panel(paper, frame, "paper ", PAPER_COLOUR, "paper: ConvNeXt-B, ImageNet-1K")
    return apply_style(figure, caption)
