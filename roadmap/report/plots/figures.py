"""A run's figures: the roadmap bars (paper Figure 2), the accuracy/GFLOPs trajectory, GFLOPs vs
measured throughput, and the training curves. Each builder returns a Figure; `write_figures`
saves them all as PNG + PDF. Inputs are the tables of roadmap.report.write, nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from roadmap.report.captions import singular_counts
from roadmap.report.codesign import codesign_table
from roadmap.report.plots.agreement import changes_figure
from roadmap.report.plots.codesign import codesign_figure
from roadmap.report.plots.reference import reference_figure
from roadmap.report.plots.roadmap import roadmap_figure
from roadmap.report.plots.style import (
    GRID_COLOUR,
    NEUTRAL,
    OURS_COLOUR,
    PAPER_COLOUR,
    apply_style,
    chance_line,
    figure_legend,
    line_colour,
    new_figure,
    place_point_labels,
    point_label,
    save_figure,
)

__all__ = [
    "changes_figure",
    "curves_figure",
    "reference_figure",
    "roadmap_figure",
    "throughput_figure",
    "trajectory_figure",
    "write_figures",
]


def _main_path(table: pd.DataFrame) -> pd.Series:
    return table.branch_of.isna() | (table.branch_of.astype(object) == "")


def _empty_note(axis: Axes, text: str) -> None:
    axis.text(0.5, 0.5, text, transform=axis.transAxes, ha="center", va="center", color=NEUTRAL, style="italic")


def _trajectory(axis: Axes, table: pd.DataFrame, gflops: str, top1: str, colour: str, name: str) -> None:
    """Main-path rows joined in roadmap order; branch rows as hollow, unjoined markers."""
    main = _main_path(table)
    path = table[main & table[gflops].notna() & table[top1].notna()]
    side = table[~main & table[gflops].notna() & table[top1].notna()]
    if path.empty and side.empty:
        _empty_note(axis, f"no {name} values yet")
        return
    axis.plot(
        path[gflops], path[top1], marker="o", markersize=4, linewidth=1.2, color=colour, label=f"{name}: main path"
    )
    if not side.empty:
        axis.scatter(
            side[gflops],
            side[top1],
            marker="o",
            s=20,
            facecolor="white",
            edgecolor=colour,
            linewidth=1.0,
            zorder=3,
            label=f"{name}: branch",
        )
    for row in pd.concat([path, side]).itertuples():
        point_label(axis, row.step, getattr(row, gflops), getattr(row, top1))
    axis.grid(color=GRID_COLOUR, linewidth=0.6)


def _legend(axis: Axes) -> None:
    if axis.get_legend_handles_labels()[0]:
        axis.legend(loc="best")


def trajectory_figure(
    table: pd.DataFrame, caption: str, title: str = "", same_scale: bool = False, classes: int | None = None
) -> Figure:
    """Top-1 vs GFLOPs along the roadmap, ours beside the paper's.

    Two panels sharing the GFLOPs axis (both counts are full-size at 224, one convention) rather
    than twin y axes: proxy accuracy lives on another scale, and overlaid curves on twin axes
    would suggest comparisons of height and crossings that mean nothing. One panel when the run
    has no paper values, or when it is an ImageNet run (`same_scale`) and both share the axis.
    The run's panel marks chance for its `classes`.
    """
    has_paper = table.paper_top1.notna().any()
    columns = 2 if has_paper and not same_scale else 1
    figure = new_figure(height=3.6)
    axes = figure.subplots(1, columns, sharex=True, squeeze=False)[0]
    _trajectory(axes[0], table, "gflops", "top1_mean", OURS_COLOUR, "ours")
    axes[0].set_xlabel("GFLOPs (full-size network, 224x224)")
    axes[0].set_ylabel("top-1 (%), this run")
    chance_line(axes[0], classes)
    if has_paper:
        paper_axis = axes[-1]
        _trajectory(paper_axis, table, "paper_gflops", "paper_top1", PAPER_COLOUR, "paper")
        paper_axis.set_xlabel("GFLOPs (paper)")
        if columns == 2:
            paper_axis.set_ylabel("top-1 (%), paper ImageNet-1K")
    for axis in axes:
        _legend(axis)
    if title:
        figure.suptitle(title)
    return place_point_labels(apply_style(figure, caption))


def throughput_figure(table: pd.DataFrame, caption: str, title: str = "") -> Figure:
    """GFLOPs against measured throughput, train and inference: the full-size network timed at 224 px
    when the run measured it (`--measure-cost`), otherwise the trained proxy at its own size."""
    figure = new_figure(height=3.6)
    axis = figure.subplots()
    full_size = "cost_train_images_per_s" in table and table.cost_train_images_per_s.notna().any()
    if full_size:
        gflops, train, infer, device = "gflops", "cost_train_images_per_s", "cost_infer_images_per_s", "cost_device"
        x_label, what = "GFLOPs (full-size network, 224x224)", "full-size network, 224x224"
    else:
        # Proxies count a few MFLOPs: in GFLOPs their ticks would read 0.00150, 0.00175, ...
        table = table.assign(proxy_mflops=table.proxy_gflops * 1000)
        gflops, train, infer, device = "proxy_mflops", "train_images_per_s", "infer_images_per_s", "device"
        x_label, what = "MFLOPs (trained proxy, at its resolution)", "trained proxy"
    measured = table[table[gflops].notna() & (table[train].notna() | table[infer].notna())]
    if measured.empty:
        _empty_note(axis, "no throughput measured yet")
    else:
        for column, colour, marker, name in (
            (infer, OURS_COLOUR, "o", "inference"),
            (train, PAPER_COLOUR, "s", "training"),
        ):
            points = measured[measured[column].notna()]
            axis.scatter(points[gflops], points[column], color=colour, marker=marker, s=22, label=name, zorder=3)
            for step, x, y in zip(points.step, points[gflops], points[column]):
                point_label(axis, step, x, y)
        rates = pd.concat([measured[train], measured[infer]]).dropna()
        if len(rates) and rates.min() > 0 and rates.max() / rates.min() > 10:
            axis.set_yscale("log")
        axis.legend(loc="best")
        axis.grid(color=GRID_COLOUR, linewidth=0.6)
    devices = sorted({singular_counts(str(value)) for value in table[device].dropna()}) if device in table else []
    axis.set_xlabel(x_label)
    axis.set_ylabel(f"images / s ({what})" + (f"\non {', '.join(devices)}" if devices else ""))
    if title:
        figure.suptitle(title)
    return place_point_labels(apply_style(figure, caption))


def _loss_panels(curves: pd.DataFrame) -> list[tuple[str, object]]:
    """(y label, soft-target flag) per training-loss panel: Mixup/CutMix soft-target losses sit on
    another scale than plain cross-entropy, so the two kinds never share a panel unlabelled."""
    if "train_loss" not in curves.columns or not curves.train_loss.notna().any():
        return []
    kinds = set(curves.soft_targets.dropna()) if "soft_targets" in curves.columns else set()
    if kinds == {True, False}:
        return [("training loss, hard labels", False), ("training loss, Mixup/CutMix soft targets", True)]
    if kinds == {True}:
        return [("training loss (Mixup/CutMix soft targets)", None)]
    if kinds == {False}:
        return [("training loss (hard labels)", None)]
    return [("training loss", None)]


def curves_figure(curves: pd.DataFrame, caption: str, title: str = "", classes: int | None = None) -> Figure:
    """Validation top-1 (and training loss) per epoch for every row, averaged over seeds; chance
    for `classes` marked on the top-1 panel."""
    losses = _loss_panels(curves)
    figure = new_figure(height=3.8)
    # Shared epochs axis: a panel with a single epoch would otherwise get fractional ticks.
    axes = figure.subplots(1, 1 + len(losses), squeeze=False, sharex=True)[0]
    if curves.empty:
        _empty_note(axes[0], "no finished epoch yet")
    else:
        metrics = ["top1"] + (["train_loss"] if losses else [])
        curves = curves.assign(soft=curves.get("soft_targets", pd.Series(None, index=curves.index)).astype(object))
        mean = curves.groupby(["order", "step", "epoch"], sort=True)[metrics].mean().reset_index()
        soft_of = curves.groupby("order").soft.first()
        branch_steps = set(curves.step[curves.branch_of.notna() & (curves.branch_of.astype(object) != "")])
        # A qualitative palette: neighbouring rows (the ones compared) get clearly different hues.
        for rank, order in enumerate(sorted(mean.order.unique())):
            line = mean[mean.order == order]
            step = line.step.iloc[0]
            style = {
                "color": line_colour(rank),
                "linestyle": "--" if step in branch_steps else "-",
                "linewidth": 1.1,
                "marker": ".",
            }
            axes[0].plot(line.epoch, line.top1, label=step, **style)
            for axis, (_, kind) in zip(axes[1:], losses):
                if kind is None or soft_of.get(order) == kind:
                    axis.plot(line.epoch, line.train_loss, **style)
        chance_line(axes[0], classes)
        figure_legend(figure, below=False)  # beside the panels, above the caption
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("validation top-1 (%)")
    for axis, (label, _) in zip(axes[1:], losses):
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
    for axis in axes:
        axis.grid(color=GRID_COLOUR, linewidth=0.6)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        figure.suptitle(title)
    return apply_style(figure, caption)


def write_figures(
    table: pd.DataFrame,
    curves: pd.DataFrame,
    out_dir: str | Path,
    caption: str,
    title: str = "",
    same_scale: bool = False,
    agreement: dict | None = None,
    classes: int | None = None,
) -> dict[str, Path]:
    """Save every figure of a run as PNG + PDF under `out_dir`; returns {'<figure>_<format>': path}.
    With an `agreement` (roadmap.report.agreement), figure `changes` draws it. `classes` (run.json
    `num_classes`) places the chance line of every accuracy figure."""
    out_dir = Path(out_dir)
    bar_rows = table.assign(label=table.label.fillna(table.step))
    figures = {
        "roadmap": roadmap_figure(
            bar_rows, caption, title=title, paper_values=table.paper_top1, same_scale=same_scale, classes=classes
        ),
        "trajectory": trajectory_figure(table, caption, title=title, same_scale=same_scale, classes=classes),
        "throughput": throughput_figure(table, caption, title=title),
        "curves": curves_figure(curves, caption, title=title, classes=classes),
    }
    if agreement is not None:
        figures["changes"] = changes_figure(agreement["steps"], caption, agreement["reference"], title=title)
    codesign = codesign_table(table)
    if codesign is not None:
        figures["codesign"] = codesign_figure(codesign, caption, classes=classes)
    paths: dict[str, Path] = {}
    for name, figure in figures.items():
        for extension, path in save_figure(figure, out_dir / name).items():
            paths[f"{name}_{extension}"] = path
    return paths
