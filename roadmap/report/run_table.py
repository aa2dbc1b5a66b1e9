"""The run's table: the per-seed frame of roadmap.runs.seeds aggregated to one row per planned step.

Row comparison ("change"): a main-path row is compared with the previous main-path row. A
branch row (`branch_of` set, e.g. kernel5 of kernel) is compared with the row its branch starts
from, i.e. the main-path row before its parent (kernel5 -> move_up), because the branch applies
its step to the same spec as its parent does. Branch rows never become the base of a later row.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import pandas as pd

from roadmap.files.layout import is_set
from roadmap.report.captions import distinct_text
from roadmap.report.intervals import WITHIN_NOISE, seeds_to_resolve, verdict, welch_interval
from roadmap.report.measured_spread import (
    RUN_POOLED_SOURCE,
    RUN_SOURCE,
    MeasuredSpread,
    measured_spread,
    root_mean_square,
)
from roadmap.report.tables import trained_labels
from roadmap.runs.seeds import COST_FIELDS, SETTING_FIELDS, STATUSES, run_paper_table

TABLE_COLUMNS = (
    "step",
    "label",
    "paper_label",
    "group",
    "branch_of",
    "compared_with",
    "top1_mean",
    "top1_std",
    "weights",
    "top1_other_mean",
    "pretrain_loss",
    "seeds_done",
    "seeds",
    "change",
    "change_ci_low",
    "change_ci_high",
    "verdict",
    "seeds_to_resolve",
    "spread_source",
    "gflops",
    "params",
    "paper_top1",
    "paper_top1_std",
    "paper_change",
    "paper_gflops",
    "proxy_gflops",
    "proxy_params",
    "train_images_per_s",
    "infer_images_per_s",
    "device",
    *COST_FIELDS,
    "wall_time_s",
    "precision",
    "channels_last",
    "compiled",
    "pixels",
    "status",
)
# Cost fields that are text: their distinct values are listed, the others averaged.
COST_TEXT_FIELDS = ("cost_device", "cost_dtype")


def comparison_rows(steps: Sequence[str], branch_of: Sequence[Any]) -> list[int | None]:
    """Position of the row each row is compared with (see the module docstring), None for the first."""
    previous_main: int | None = None
    start_of: dict[str, int | None] = {}
    bases: list[int | None] = []
    for position, (step, parent) in enumerate(zip(steps, branch_of)):
        if is_set(parent):
            bases.append(start_of.get(str(parent)))
            continue
        bases.append(previous_main)
        start_of[step] = previous_main
        previous_main = position
    return bases


def status_text(statuses: Sequence[str]) -> str:
    """'done' for one seed; per-status counts such as 'done 2/3, diverged 1/3' for several."""
    statuses = list(statuses)
    if len(statuses) == 1:
        return statuses[0]
    total = len(statuses)
    return ", ".join(f"{name} {statuses.count(name)}/{total}" for name in STATUSES if name in statuses)


def _failure(seeds: pd.DataFrame) -> str:
    """' (why)' after the status of a row with a failed seed: the first reason its result.json gives."""
    failed = seeds[seeds.status == "failed"]
    reasons = [str(reason) for reason in failed.get("reason", []) if is_set(reason)]
    if not reasons:
        return ""
    reason = reasons[0] if len(reasons[0]) <= 100 else reasons[0][:99] + "…"
    return f" ({reason})"


def _mean(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _listed(values: pd.Series) -> str | None:
    """The distinct set values, in order, joined by ', '; None when there is none."""
    return ", ".join(str(value) for value in dict.fromkeys(values) if is_set(value)) or None


def _summarise(seeds: pd.DataFrame) -> dict[str, Any]:
    first = seeds.iloc[0]
    done = seeds[seeds.status == "done"]
    measured = seeds[seeds.status.isin(["done", "diverged"])]
    top1 = pd.to_numeric(done.top1, errors="coerce").dropna()
    return {
        "step": first.step,
        "label": first.label,
        "group": first.group,
        "branch_of": first.branch_of if is_set(first.branch_of) else None,
        "top1_mean": float(top1.mean()) if len(top1) else math.nan,
        # Sample std (ddof=1), as for the paper's "mean +- std over 3 seeds"; undefined for one seed.
        "top1_std": float(top1.std(ddof=1)) if len(top1) > 1 else math.nan,
        **_other_weights(done),
        "seeds_done": len(top1),
        "seeds": len(seeds),
        "pretrain_loss": _mean(done.pretrain_loss),  # FCMAE rows: validation reconstruction loss
        "gflops": _mean(seeds.gflops),
        "params": _mean(seeds.params),
        "proxy_gflops": _mean(measured.proxy_gflops),
        "proxy_params": _mean(measured.proxy_params),
        "train_images_per_s": _mean(measured.train_images_per_s),
        "infer_images_per_s": _mean(measured.infer_images_per_s),
        "device": _listed(measured.device),
        **{name: _mean(measured[name]) for name in COST_FIELDS if name not in COST_TEXT_FIELDS},
        **{name: _listed(measured[name]) for name in COST_TEXT_FIELDS},
        # Mean per seed, so rows with different seed counts stay comparable.
        "wall_time_s": _mean(measured.wall_time_s),
        **{name: distinct_text(measured[name]) for name in SETTING_FIELDS},
        "status": status_text(list(seeds.status)) + _failure(seeds),
        "top1_values": list(top1),  # per-seed values for the change's interval; not a table column
    }


def _other_weights(done: pd.DataFrame) -> dict[str, Any]:
    """Which weights the row's top-1 comes from, and the mean top-1 of the other ones where the row
    evaluated both (EMA rows: the EMA is reported, the raw model beside it); older results: unknown."""
    reported = done.get("reported_weights", pd.Series(dtype=object)).dropna()
    weights = _listed(reported)
    if weights not in ("raw", "ema"):
        return {"weights": weights, "top1_other_mean": math.nan}
    other = "raw" if weights == "ema" else "ema"
    return {"weights": weights, "top1_other_mean": _mean(done.get(f"top1_{other}", pd.Series(dtype=float)))}


def _change(values: pd.Series, bases: list[int | None]) -> list[float]:
    return [
        float(values.iloc[position] - values.iloc[base]) if base is not None else math.nan
        for position, base in enumerate(bases)
    ]


def _spread(table: pd.DataFrame, position: int, base: int, measured: MeasuredSpread | None) -> tuple[float, str | None]:
    """The seed std to plan one change with, and where it came from (spread_source), first found of:
    the run's own std of the two rows (root mean square of those with 2+ done seeds); the run's
    std pooled over all its rows; the std measured for the run's preset and dataset, pooled over its
    rows (one row's std from a few seeds has too few degrees of freedom to plan with); none. Never
    the paper's std: ImageNet's seed noise at full length says nothing about a proxy's."""
    rows = (position, base)
    own = root_mean_square(table.top1_std.iloc[index] for index in rows)
    if math.isfinite(own):
        return own, RUN_SOURCE
    pooled = root_mean_square(table.top1_std)
    if math.isfinite(pooled):
        return pooled, RUN_POOLED_SOURCE
    if measured is None:
        return math.nan, None
    return measured.pooled_std, measured.source()


def add_noise_columns(
    table: pd.DataFrame, bases: list[int | None], measured: MeasuredSpread | None = None
) -> pd.DataFrame:
    """Welch 95% interval and verdict of each change (two or more done seeds on both rows); for a
    change without a verdict or within noise, the seeds per row that would resolve it (95%
    confidence, 80% power) and where its spread came from (`_spread`; `measured`: the preset and
    dataset's measurement)."""
    low, high, verdicts, needed, sources = [], [], [], [], []
    for position, base in enumerate(bases):
        interval = (math.nan, math.nan, math.nan)
        if base is not None:
            interval = welch_interval(table.top1_values.iloc[position], table.top1_values.iloc[base])
        low.append(interval[1])
        high.append(interval[2])
        verdicts.append(verdict(interval[1], interval[2]))
        seeds, source = None, None
        if base is not None and math.isfinite(interval[0]) and verdicts[-1] in (None, WITHIN_NOISE):
            std, source = _spread(table, position, base, measured)
            seeds = seeds_to_resolve(interval[0], std) if source is not None else None
        needed.append(seeds)
        sources.append(source)
    return table.assign(
        change_ci_low=low,
        change_ci_high=high,
        verdict=verdicts,
        seeds_to_resolve=pd.array(needed, dtype="Int64"),
        spread_source=sources,
    )


def aggregate(frame: pd.DataFrame, run_info: Mapping[str, Any]) -> pd.DataFrame:
    """The run's table, one row per planned step in plan order (see TABLE_COLUMNS).

    Top-1 mean/std use done seeds only. `change` and `paper_change` follow the comparison rule
    of the module docstring; `compared_with` names the row compared with. Paper columns are
    filled for the cumulative mode of a roadmap with a paper table, where the step exists.
    """
    records = [_summarise(seeds) for _, seeds in frame.groupby("order", sort=True)]
    table = pd.DataFrame.from_records(records)
    if table.empty:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    bases = comparison_rows(list(table.step), list(table.branch_of))
    # A proxy's rows say what was trained; the paper's row names stay in paper_label (where it has the row).
    table["label"] = trained_labels(list(table.step), list(table.label), run_info)
    table["compared_with"] = [table.step.iloc[base] if base is not None else None for base in bases]
    table["change"] = _change(table.top1_mean, bases)
    paper = run_paper_table(run_info)
    for column in ("paper_label", "paper_top1", "paper_top1_std", "paper_gflops"):
        table[column] = [paper.at[step, column] if step in paper.index else None for step in table.step]
    for column in ("paper_top1", "paper_top1_std", "paper_gflops"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["paper_change"] = _change(table.paper_top1, bases)
    measured = measured_spread(run_info.get("preset"), run_info.get("dataset"))
    table = add_noise_columns(table, bases, measured)
    return table[list(TABLE_COLUMNS)]
