"""The paper's Figure 2: one horizontal bar per roadmap row, grouped into the roadmap's stages.

Bars run top to bottom in table order, coloured by stage group (named in a column on the left),
accuracy printed on the bar, GFLOPs printed to the right. Branch rows (variants the roadmap did
not adopt, e.g. kernel 5/9/11) are hatched, as in the paper. Rows without a result keep their
place with a zero-width bar and their status written instead of a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from roadmap.files.layout import is_set
from roadmap.report.plots.style import (
    BAND_COLOUR,
    BRANCH_HATCH,
    FIGURE_WIDTH,
    GRID_COLOUR,
    NEUTRAL,
    PAPER_COLOUR,
    SMALL_FONT_SIZE,
    apply_style,
    chance_handle,
    chance_level,
    chance_line,
    change_interval,
    group_colours,
    new_figure,
    wrap_words,
)
from roadmap.report.tables import PROXY_MARK

# Verdict of a change (roadmap.report.intervals): within noise is drawn hollow.
VERDICT_COLOURS = {"gain": "#009E73", "loss": "#D55E00", "within noise": "#6E6E6E"}
FAILED_COLOUR = "#C0392B"


def _contiguous_groups(groups: list[str]) -> list[tuple[str, int, int]]:
    """(group, first position, last position) for each run of equal consecutive groups."""
    runs: list[tuple[str, int, int]] = []
    for position, group in enumerate(groups):
        if runs and runs[-1][0] == group:
            runs[-1] = (group, runs[-1][1], position)
        else:
            runs.append((group, position, position))
    return runs


def _value_limits(values: np.ndarray, zero_based: bool = False) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 100.0
    low, high = float(finite.min()), float(finite.max())
    span = high - low
    if zero_based:
        # A run's bars start at zero: a bar's length is then its accuracy, never a difference.
        return 0.0, max(1.0, high * 1.08)
    # Like the paper's axis, start well below the lowest bar so that differences stay visible.
    return max(0.0, low - max(1.0, 0.6 * span)), high + max(0.5, 0.12 * span)


def _numbers(rows: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(rows.get(column, pd.Series(np.nan, index=rows.index)), errors="coerce").to_numpy(float)


# Row labels wrap at this many characters, at spaces (wrap_words: never inside a word).
ROW_LABEL_WIDTH = 28


def row_labels(labels) -> list[str]:
    """The rows' tick labels: a proxy row's name on one line and what was trained on the next
    ("ResNet-50 (PyTorch)" / "proxy, 4 ep, 32 px"), other labels wrapped at spaces."""
    shown = []
    for label in map(str, labels):
        name, mark, trained = label.partition(PROXY_MARK)
        lines = wrap_words(name, ROW_LABEL_WIDTH) + ([mark.strip() + " " + trained] if mark else [])
        shown.append("\n".join(lines) or label)
    return shown


def _draw_groups(group_axis, axis, groups: list[str], colours: dict[str, str]) -> None:
    """Alternating bands behind the bars and a labelled bracket per stage group in the left column."""
    group_axis.set_xlim(0, 1)
    group_axis.set_axis_off()
    for index, (group, first, last) in enumerate(_contiguous_groups(groups)):
        if index % 2 == 0:
            axis.axhspan(first - 0.5, last + 0.5, color=BAND_COLOUR, zorder=0, linewidth=0)
        group_axis.plot(
            [0.95, 0.95], [first - 0.35, last + 0.35], color=colours[group], linewidth=3, solid_capstyle="butt"
        )
        group_axis.text(
            0.88,
            (first + last) / 2,
            "\n".join(wrap_words(group, 12)),
            ha="right",
            va="center",
            fontsize=SMALL_FONT_SIZE,
            color="#222222",
            fontweight="bold",
        )


def _label_bars(axis, rows: pd.DataFrame, values: np.ndarray, positions: np.ndarray, limits) -> None:
    """The value at the end of each bar, or the row's state where it has no value (failed in red)."""
    pad = 0.01 * (limits[1] - limits[0])
    for position, value, status in zip(positions, values, rows.get("status", ["done"] * len(rows))):
        if np.isfinite(value):
            axis.text(
                value - pad,
                position,
                f"{value:.2f}",
                ha="right",
                va="center",
                fontsize=SMALL_FONT_SIZE,
                zorder=4,
                clip_on=True,
                bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
            )
        else:
            status = str(status).split(" (")[0]  # the table gives the reason; the figure the state
            failed = "failed" in status  # a failed row must not read as one still running
            axis.text(
                limits[0] + pad,
                position,
                status,
                ha="left",
                va="center",
                fontsize=SMALL_FONT_SIZE,
                color=FAILED_COLOUR if failed else NEUTRAL,
                style="normal" if failed else "italic",
                fontweight="bold" if failed else "normal",
                zorder=4,
            )


def _draw_bars(axis, rows: pd.DataFrame, values: np.ndarray, colours: dict[str, str], limits) -> list[bool]:
    """Bars (hatched for branches), seed std whiskers, the value on each bar or the row's status."""
    positions = np.arange(len(rows))
    groups = [str(group) for group in rows.group]
    branches = [is_set(parent) for parent in rows.get("branch_of", [None] * len(rows))]
    bars = axis.barh(
        positions,
        np.nan_to_num(values, nan=0.0),
        height=0.68,
        color=[colours[g] for g in groups],
        edgecolor=[colours[g] for g in groups],
        linewidth=0.8,
        zorder=2,
    )
    for bar, branch in zip(bars, branches):
        if branch:  # hatch in the group colour on white: "tried, not adopted"
            bar.set_facecolor("white")
            bar.set_hatch(BRANCH_HATCH)
    stds = _numbers(rows, "top1_std")
    with_std = np.isfinite(values) & np.isfinite(stds)
    if with_std.any():
        axis.errorbar(
            values[with_std],
            positions[with_std],
            xerr=stds[with_std],
            fmt="none",
            ecolor="#333333",
            elinewidth=0.8,
            capsize=2,
            zorder=3,
        )
    _label_bars(axis, rows, values, positions, limits)
    return branches


def _draw_changes(axis, rows: pd.DataFrame) -> None:
    """Each row's change against its compared row, with the 95% interval where seeds allow one."""
    positions = np.arange(len(rows))
    change, low, high = _numbers(rows, "change"), _numbers(rows, "change_ci_low"), _numbers(rows, "change_ci_high")
    verdicts = list(rows.get("verdict", [None] * len(rows)))
    axis.axvline(0, color=NEUTRAL, linewidth=0.8, zorder=1)
    for position, value, lo, hi, verdict in zip(positions, change, low, high, verdicts):
        if not np.isfinite(value):
            continue
        colour = VERDICT_COLOURS.get(verdict, "#333333")
        change_interval(axis, value, position, lo, hi, colour, width=1.1, cap=2.5)
        axis.plot(
            value,
            position,
            marker="o",
            markersize=4.5,
            color=colour,
            markerfacecolor=colour if verdict in ("gain", "loss") else "white",
            zorder=4,
        )
    axis.grid(axis="x", color=GRID_COLOUR, linewidth=0.6)
    axis.set_xlabel("change vs compared\nrow (points),\nbar: 95% interval")
    axis.tick_params(axis="y", labelleft=False)


def _draw_paper(axis, rows: pd.DataFrame, paper: np.ndarray, label: str) -> None:
    """The paper's top-1 (+- its std) on a scale of its own."""
    positions = np.arange(len(rows))
    shown = np.isfinite(paper)
    stds = _numbers(rows, "paper_top1_std")
    with_std = shown & np.isfinite(stds)
    axis.errorbar(
        paper[with_std],
        positions[with_std],
        xerr=stds[with_std],
        fmt="none",
        ecolor=PAPER_COLOUR,
        elinewidth=0.9,
        capsize=2,
        zorder=3,
    )
    axis.scatter(
        paper[shown], positions[shown], marker="D", s=18, color=PAPER_COLOUR, edgecolor="white", linewidth=0.5, zorder=5
    )
    axis.set_xlim(*_value_limits(paper))
    axis.grid(axis="x", color=GRID_COLOUR, linewidth=0.6)
    axis.set_xlabel(label)
    axis.tick_params(axis="y", labelleft=False)


def _draw_gflops(axis, gflops: np.ndarray) -> None:
    """GFLOPs column right of the bars: x in axes units, y in data units."""
    right = blended_transform_factory(axis.transAxes, axis.transData)
    axis.text(
        1.02, -0.5, "GFLOPs", transform=right, ha="left", va="bottom", fontsize=SMALL_FONT_SIZE, fontweight="bold"
    )
    for position, value in enumerate(gflops):
        axis.text(
            1.02,
            position,
            f"{value:.2f}" if np.isfinite(value) else "-",
            transform=right,
            ha="left",
            va="center",
            fontsize=SMALL_FONT_SIZE,
        )


def _legend_handles(branches: bool, paper_markers: bool, changes: bool, classes: int | None) -> list:
    branch = Patch(facecolor="white", edgecolor=NEUTRAL, hatch=BRANCH_HATCH, label="branch (not adopted)")
    handles = [branch] if branches else []
    if chance_level(classes) is not None:
        handles.append(chance_handle(classes))
    if paper_markers:
        handles.append(Line2D([], [], marker="D", linestyle="", color=PAPER_COLOUR, label="paper value"))
    if changes:
        handles += [
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color=colour,
                label=name,
                markerfacecolor=colour if name != "within noise" else "white",
            )
            for name, colour in VERDICT_COLOURS.items()
        ]
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color="#333333",
                markerfacecolor="white",
                label="no interval (< 2 seeds)",
            )
        )
    return handles


def _panels(count: int, panels: list[str], lines: int = 1) -> tuple[Figure, Any, dict[str, Any]]:
    """A figure of `count` rows (row labels of up to `lines` lines): the stage column, then one
    axis per panel, all sharing the rows."""
    ratios = {"bars": 4.0, "changes": 2.2, "paper": 2.2}
    width = FIGURE_WIDTH + (1.6 if len(panels) > 2 else 0.0)
    row = 0.27 if lines < 2 else 0.36  # two-line labels need the room of two lines of text
    figure = new_figure(height=max(2.4, row * count + 1.8), width=width)
    grid = figure.add_gridspec(1, 1 + len(panels), width_ratios=(1.2, *(ratios[panel] for panel in panels)))
    group_axis = figure.add_subplot(grid[0])
    axes = {panel: figure.add_subplot(grid[index + 1], sharey=group_axis) for index, panel in enumerate(panels)}
    return figure, group_axis, axes


_LEGEND_STYLE = {"fontsize": SMALL_FONT_SIZE, "frameon": False, "borderaxespad": 0.2}
# Markers stand out on bars and grid lines: a thin white edge, drawn above everything else.
_MARKER_EDGE = {"edgecolor": "white", "linewidth": 0.5, "zorder": 5}


def _set_bar_axis(
    axis,
    rows: pd.DataFrame,
    values: np.ndarray,
    paper: np.ndarray | None,
    zero_based: bool,
    value_label: str | None,
    same_scale: bool,
) -> tuple[float, float]:
    """Limits, rows and labels of the bars' axis (shared with the paper's values when `paper` is given)."""
    count = len(rows)
    scale = values if paper is None else np.concatenate([values, paper])
    limits = _value_limits(scale, zero_based)
    axis.set_xlim(*limits)
    axis.set_ylim(max(count, 1) - 0.5, -0.5)  # first row on top
    axis.set_yticks(np.arange(count), row_labels(rows.label))
    axis.grid(axis="x", color=GRID_COLOUR, linewidth=0.6)
    axis.set_xlabel(value_label or ("top-1 (%), this run" if same_scale else "top-1 (%), this run (proxy)"))
    return limits


def roadmap_figure(
    rows: pd.DataFrame,
    caption: str,
    title: str = "",
    value_label: str | None = None,
    paper_values: pd.Series | None = None,
    paper_label: str = "paper ImageNet-1K\ntop-1 (%) +- std",
    same_scale: bool = False,
    zero_based: bool = True,
    classes: int | None = None,
) -> Figure:
    """Figure 2 from `rows` (columns step, label, group, branch_of, top1_mean, top1_std, gflops, status;
    optionally change, change_ci_low/high, verdict, paper_top1_std).

    The run's bars start at zero (`zero_based`). A panel of changes with their intervals follows when
    rows carry changes. `paper_values` (aligned with rows) get a panel and scale of their own, because
    proxy accuracy lives on another scale; on the bars' axis only for an ImageNet run (`same_scale`).
    With the run's `classes`, a dashed line marks chance on the bars' axis.
    """
    rows = rows.reset_index(drop=True)
    count = len(rows)
    values = _numbers(rows, "top1_mean")
    groups = [str(group) for group in rows.group]
    colours = group_colours(groups)
    paper = None if paper_values is None else pd.to_numeric(paper_values, errors="coerce").to_numpy(float)
    has_paper = paper is not None and np.isfinite(paper).any()
    has_changes = np.isfinite(_numbers(rows, "change")).any()
    panels = ["bars"] + (["changes"] if has_changes else []) + (["paper"] if has_paper and not same_scale else [])
    lines = max((label.count("\n") + 1 for label in row_labels(rows.label)), default=1)
    figure, group_axis, axes = _panels(count, panels, lines)
    axis = axes["bars"]

    limits = _set_bar_axis(
        axis, rows, values, paper if has_paper and same_scale else None, zero_based, value_label, same_scale
    )
    if chance_line(axis, classes, vertical=True) is not None:
        limits = axis.get_xlim()  # widened when every bar is below chance
    _draw_groups(group_axis, axis, groups, colours)
    branches = _draw_bars(axis, rows, values, colours, limits)
    _draw_gflops(axis, _numbers(rows, "gflops"))
    if has_changes:
        _draw_changes(axes["changes"], rows)
    if has_paper and same_scale:
        shown = np.isfinite(paper)
        axis.scatter(paper[shown], np.arange(count)[shown], marker="D", s=18, color=PAPER_COLOUR, **_MARKER_EDGE)
    elif has_paper:
        _draw_paper(axes["paper"], rows, paper, paper_label)
    handles = _legend_handles(any(branches), has_paper and same_scale, has_changes, classes)
    if handles:
        # Under the stage column, beside the x tick labels: inside the axes it would hide the last
        # rows, which carry the highest accuracies; at the top it would clash with the title. An
        # axes legend is part of the layout, which keeps the caption below it.
        group_axis.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 0.0), **_LEGEND_STYLE)
    if title:
        figure.suptitle(title)
    return apply_style(figure, caption)
