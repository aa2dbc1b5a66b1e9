"""The paper's Figure 2: one horizontal bar per roadmap row, grouped into the roadmap's stages.

Bars run top to bottom in table order, coloured by stage group (named in a column on the left),
accuracy printed on the bar, GFLOPs printed to the right. Branch rows (variants the roadmap did
not adopt, e.g. kernel 5/9/11) are hatched, as in the paper. Rows without a result keep their
place with a zero-width bar and their status written instead of a number.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from roadmap.complexity import CONVENTION
from roadmap.plot_style import (
    BAND_COLOUR,
    BRANCH_HATCH,
    GRID_COLOUR,
    NEUTRAL,
    PAPER_COLOUR,
    SMALL_FONT_SIZE,
    apply_style,
    group_colours,
    new_figure,
    save_figure,
)
from roadmap.reference import REFERENCE_TABLES, paper_table
from steps import REGISTRY

# Which paper table and regime each roadmap's reference figure shows.
REFERENCE_TITLES = {
    "resnet50": "Paper Table 10: ResNet-50 -> ConvNeXt-T (ResNet-50 / Swin-T regime)",
    "resnet200": "Paper Table 11: ResNet-200 -> ConvNeXt-B (ResNet-200 / Swin-B regime)",
}
REFERENCE_SEEDS = {"resnet50": "mean +- std over 3 seeds", "resnet200": "single runs"}


def _contiguous_groups(groups: list[str]) -> list[tuple[str, int, int]]:
    """(group, first position, last position) for each run of equal consecutive groups."""
    runs: list[tuple[str, int, int]] = []
    for position, group in enumerate(groups):
        if runs and runs[-1][0] == group:
            runs[-1] = (group, runs[-1][1], position)
        else:
            runs.append((group, position, position))
    return runs


def _value_limits(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 100.0
    low, high = float(finite.min()), float(finite.max())
    span = high - low
    # Like the paper's axis, start well below the lowest bar so that differences stay visible.
    return max(0.0, low - max(1.0, 0.6 * span)), high + max(0.5, 0.12 * span)


def _is_branch(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def roadmap_figure(
    rows: pd.DataFrame,
    caption: str,
    title: str = "",
    value_label: str = "top-1 accuracy (%)",
    paper_values: pd.Series | None = None,
    paper_label: str = "paper ImageNet-1K top-1 (%)",
    same_scale: bool = False,
) -> Figure:
    """Figure 2 from `rows` (columns step, label, group, branch_of, top1_mean, top1_std, gflops, status).

    `paper_values` (aligned with rows) are drawn as markers: on the bars' axis when `same_scale`
    (an ImageNet run), otherwise on a second x axis on top, because proxy accuracy has its own scale.
    """
    rows = rows.reset_index(drop=True)
    count = len(rows)
    positions = np.arange(count)
    values = pd.to_numeric(rows.top1_mean, errors="coerce").to_numpy(float)
    stds = pd.to_numeric(rows.get("top1_std", pd.Series(np.nan, index=rows.index)), errors="coerce").to_numpy(float)
    gflops = pd.to_numeric(rows.gflops, errors="coerce").to_numpy(float)
    groups = [str(group) for group in rows.group]
    colours = group_colours(groups)
    paper = None if paper_values is None else pd.to_numeric(paper_values, errors="coerce").to_numpy(float)
    has_paper = paper is not None and np.isfinite(paper).any()

    figure = new_figure(height=max(2.4, 0.27 * count + 1.6))
    grid = figure.add_gridspec(1, 2, width_ratios=(1.0, 5.0))
    group_axis = figure.add_subplot(grid[0])
    axis = figure.add_subplot(grid[1], sharey=group_axis)

    limits = _value_limits(np.concatenate([values, paper]) if has_paper and same_scale else values)
    axis.set_xlim(*limits)
    axis.set_ylim(max(count, 1) - 0.5, -0.5)  # first row on top
    axis.set_yticks(positions, [str(label) for label in rows.label])
    axis.grid(axis="x", color=GRID_COLOUR, linewidth=0.6)
    axis.set_xlabel(value_label)

    # Stage groups: alternating bands behind the bars and a labelled bracket in the left column.
    group_axis.set_xlim(0, 1)
    group_axis.set_axis_off()
    for index, (group, first, last) in enumerate(_contiguous_groups(groups)):
        if index % 2 == 0:
            axis.axhspan(first - 0.5, last + 0.5, color=BAND_COLOUR, zorder=0, linewidth=0)
        group_axis.plot([0.95, 0.95], [first - 0.35, last + 0.35], color=colours[group], linewidth=3, solid_capstyle="butt")
        group_axis.text(
            0.88, (first + last) / 2, "\n".join(textwrap.wrap(group, 12)),
            ha="right", va="center", fontsize=SMALL_FONT_SIZE, color="#222222", fontweight="bold",
        )

    branches = [_is_branch(parent) for parent in rows.get("branch_of", [None] * count)]
    bars = axis.barh(
        positions, np.nan_to_num(values, nan=0.0), height=0.68,
        color=[colours[group] for group in groups], edgecolor=[colours[group] for group in groups],
        linewidth=0.8, zorder=2,
    )
    for bar, branch in zip(bars, branches):
        if branch:  # hatch in the group colour on white: "tried, not adopted"
            bar.set_facecolor("white")
            bar.set_hatch(BRANCH_HATCH)
    with_std = np.isfinite(values) & np.isfinite(stds)
    if with_std.any():
        axis.errorbar(values[with_std], positions[with_std], xerr=stds[with_std], fmt="none",
                      ecolor="#333333", elinewidth=0.8, capsize=2, zorder=3)

    pad = 0.01 * (limits[1] - limits[0])
    statuses = [str(status) for status in rows.get("status", ["done"] * count)]
    for position, value, status in zip(positions, values, statuses):
        if np.isfinite(value):
            axis.text(value - pad, position, f"{value:.2f}", ha="right", va="center", fontsize=SMALL_FONT_SIZE,
                      zorder=4, clip_on=True, bbox={"boxstyle": "round,pad=0.1", "facecolor": "white",
                                                     "edgecolor": "none", "alpha": 0.75})
        else:
            axis.text(limits[0] + pad, position, status, ha="left", va="center", fontsize=SMALL_FONT_SIZE,
                      color=NEUTRAL, style="italic", zorder=4)

    # GFLOPs column right of the axes: x in axes units, y in data units.
    right = blended_transform_factory(axis.transAxes, axis.transData)
    axis.text(1.02, -0.5, "GFLOPs", transform=right, ha="left", va="bottom", fontsize=SMALL_FONT_SIZE, fontweight="bold")
    for position, value in zip(positions, gflops):
        axis.text(1.02, position, f"{value:.2f}" if np.isfinite(value) else "-", transform=right,
                  ha="left", va="center", fontsize=SMALL_FONT_SIZE)

    handles = [Patch(facecolor="white", edgecolor=NEUTRAL, hatch=BRANCH_HATCH, label="branch (not adopted)")] if any(branches) else []
    if has_paper:
        paper_axis = axis if same_scale else axis.twiny()
        if not same_scale:
            paper_axis.set_xlim(*_value_limits(paper))
            paper_axis.set_xlabel(paper_label)
        shown = np.isfinite(paper)
        paper_axis.scatter(paper[shown], positions[shown], marker="D", s=18, color=PAPER_COLOUR,
                           edgecolor="white", linewidth=0.5, zorder=5)
        handles.append(Line2D([], [], marker="D", linestyle="", color=PAPER_COLOUR, label="paper value"))
    if handles:
        # Under the stage column, beside the x tick labels: inside the axes it would hide the last
        # rows, which carry the highest accuracies; at the top it would clash with the title.
        group_axis.legend(handles=handles, loc="upper right", bbox_to_anchor=(1.0, 0.0), fontsize=SMALL_FONT_SIZE,
                          frameon=False, borderaxespad=0.2)
    if title:
        figure.suptitle(title)
    return apply_style(figure, caption)


def reference_rows(roadmap: str) -> pd.DataFrame:
    """The paper's table for `roadmap` in the columns roadmap_figure reads."""
    paper = paper_table(roadmap)
    if paper.empty:
        raise ValueError(f"no paper table for roadmap {roadmap!r}; choose one of: {', '.join(REFERENCE_TABLES)}")
    rows = paper.reset_index().rename(
        columns={"paper_label": "label", "paper_top1": "top1_mean", "paper_top1_std": "top1_std", "paper_gflops": "gflops"}
    )
    rows["branch_of"] = [REGISTRY[step].branch_of if step in REGISTRY else None for step in rows.step]
    rows["status"] = "done"
    return rows


def reference_figure(roadmap: str, out_path: str | Path | None = None) -> Figure:
    """Figure 2 drawn from the paper's own values (Table 10 for resnet50, Table 11 for resnet200).

    Saves to `out_path` when given: its suffix picks the format; without one, PNG and PDF are written.
    Returns the Figure (a notebook cell displays it).
    """
    rows = reference_rows(roadmap)
    caption = (
        f"{REFERENCE_TITLES.get(roadmap, roadmap)}; ImageNet-1K top-1 (%), {REFERENCE_SEEDS.get(roadmap, '')}. "
        f"GFLOPs as printed in the paper (its convention, reproduced here as: {CONVENTION}). "
        "Hatched: variants tried but not adopted."
    )
    figure = roadmap_figure(rows, caption, title=REFERENCE_TITLES.get(roadmap, roadmap), value_label="ImageNet-1K top-1 (%)")
    if out_path is not None:
        out_path = Path(out_path)
        if out_path.suffix:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(out_path, dpi=200, bbox_inches="tight", pad_inches=0.05)
        else:
            save_figure(figure, out_path)
    return figure

