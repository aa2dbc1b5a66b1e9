"""Figure (e): each step's change in the run, with its 95% interval, beside the reference's change.

Two panels sharing the rows but not the x scale: a proxy's changes can be ten times the paper's,
and one axis would flatten the paper's to a line. Colour says whether the step counts for the sign
agreement and, if so, whether the signs agree; the reference's bar is its seed std (the noise
threshold of roadmap.report.agreement).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from roadmap.report.plots.style import (
    GRID_COLOUR,
    NEUTRAL,
    SMALL_FONT_SIZE,
    apply_style,
    change_interval,
    figure_legend,
    new_figure,
)

AGREE_COLOUR = "#009E73"
DISAGREE_COLOUR = "#D55E00"
UNCOUNTED_COLOUR = "#9A9A9A"


def _colour(record: dict[str, Any]) -> str:
    if not record["compared"]:
        return UNCOUNTED_COLOUR
    return AGREE_COLOUR if record["agrees"] else DISAGREE_COLOUR


def _values(records: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if record.get(key) is None else record[key] for record in records], dtype=float)


def _run_panel(axis, records: Sequence[dict[str, Any]], positions: np.ndarray) -> None:
    change = _values(records, "change")
    low, high = _values(records, "change_ci_low"), _values(records, "change_ci_high")
    for position, record, value, lo, hi in zip(positions, records, change, low, high):
        if not np.isfinite(value):
            axis.text(0, position, " no result", va="center", fontsize=SMALL_FONT_SIZE, color=NEUTRAL, style="italic")
            continue
        colour = _colour(record)
        change_interval(axis, value, position, lo, hi, colour)
        # Hollow marker: no interval (one seed) or an interval that includes zero.
        decided = record["verdict"] in ("gain", "loss")
        axis.plot(
            value,
            position,
            marker="o",
            markersize=5,
            color=colour,
            markerfacecolor=colour if decided else "white",
            zorder=4,
        )


def _reference_panel(axis, records: Sequence[dict[str, Any]], positions: np.ndarray) -> None:
    change, std = _values(records, "reference_change"), _values(records, "reference_std")
    for position, record, value, spread in zip(positions, records, change, std):
        if not np.isfinite(value):
            continue
        colour = _colour(record)
        if np.isfinite(spread) and spread > 0:
            axis.errorbar(value, position, xerr=spread, fmt="none", ecolor=colour, elinewidth=1.2, capsize=3, zorder=3)
        axis.plot(value, position, marker="D", markersize=4.5, color=colour, zorder=4)


def changes_figure(
    records: Sequence[dict[str, Any]], caption: str, reference: str, title: str = "", run_label: str = "this run"
) -> Figure:
    """Rows of agreement.json `steps` (in table order): run change +- 95% CI | reference change +- std."""
    count = len(records)
    positions = np.arange(count)
    figure = new_figure(height=max(2.4, 0.26 * count + 1.8))
    run_axis, reference_axis = figure.subplots(1, 2, sharey=True)
    for axis in (run_axis, reference_axis):
        axis.axvline(0, color=NEUTRAL, linewidth=0.8, zorder=1)
        axis.grid(axis="x", color=GRID_COLOUR, linewidth=0.6)
        axis.set_ylim(max(count, 1) - 0.5, -0.5)
    labels = [record["step"] + (" (branch)" if record.get("branch_of") else "") for record in records]
    run_axis.set_yticks(positions, labels)
    _run_panel(run_axis, records, positions)
    _reference_panel(reference_axis, records, positions)
    run_axis.set_xlabel(f"change in top-1 (points), {run_label}\n(95% Welch interval where 2+ seeds)")
    reference_axis.set_xlabel(f"change in top-1 (points), {reference}\n(bar: its seed std)")
    handles = [
        Line2D([], [], marker="o", linestyle="", color=AGREE_COLOUR, label="sign agrees"),
        Line2D([], [], marker="o", linestyle="", color=DISAGREE_COLOUR, label="sign disagrees"),
        Line2D(
            [], [], marker="o", linestyle="", color=UNCOUNTED_COLOUR, label="not counted (reference within its std)"
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=NEUTRAL,
            markerfacecolor="white",
            label="hollow: no verdict or within noise",
        ),
    ]
    figure_legend(figure, handles, ncols=2)  # above the caption, never on it
    if title:
        figure.suptitle(title)
    return apply_style(figure, caption)
