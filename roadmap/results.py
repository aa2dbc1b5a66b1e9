"""Read a run's results from disk into tables, and write its report.

The only input is the on-disk format of docs/results-format.md (run.json plus one folder per
step and seed); nothing here imports training code, so a report works on a copied or partial run.

Row comparison ("change"): a main-path row is compared with the previous main-path row. A
branch row (`branch_of` set, e.g. kernel5 of kernel) is compared with the row its branch starts
from, i.e. the main-path row before its parent (kernel5 -> move_up), because the branch applies
its step to the same spec as its parent does. Branch rows never become the base of a later row.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from roadmap.files import UnreadableFile
from roadmap.captions import PAPER_MODE, distinct_text, figure_caption, table_caption  # re-exported
from roadmap.codesign import write_codesign
from roadmap.agreement import agreement, paper_reference, summary_text, write_agreement
from roadmap.reference import paper_table
from roadmap.statistics import seeds_to_resolve, verdict, welch_interval
from roadmap.tables import write_tables  # re-exported: part of this module's public surface

# `failed`: the trainer wrote a result.json whose status says the job ended without a result.
AGREEMENT_FILE = "agreement.json"
STATUSES = ("done", "diverged", "failed", "running", "missing")
FINISHED = ("done", "diverged", "failed")

# Cost per step: the full-size network timed at 224 px after training (result.json `cost_*`).
COST_FIELDS = ("cost_train_images_per_s", "cost_infer_images_per_s", "cost_peak_memory_mb", "cost_device",
               "cost_batch", "cost_dtype")
# How a step was computed (written by newer trainers; absent from older results).
SETTING_FIELDS = ("precision", "channels_last", "compiled", "deterministic", "pixels")
ROW_FIELDS = ("step", "label", "group", "branch_of", "gflops", "params", "key")
RESULT_FIELDS = (
    "top1", "top5", "best_top1", "epochs", "proxy_gflops", "proxy_params",
    "train_images_per_s", "infer_images_per_s", "wall_time_s", "device",
    *COST_FIELDS, *SETTING_FIELDS, "environment", "reason", "pretrain_loss",
)
COLLECT_COLUMNS = (
    "order", "step", "label", "group", "branch_of", "gflops", "params", "seed", "status", "stale",
    *RESULT_FIELDS, "epochs_done", "last_top1",
)
TABLE_COLUMNS = (
    "step", "label", "paper_label", "group", "branch_of", "compared_with",
    "top1_mean", "top1_std", "pretrain_loss", "seeds_done", "seeds", "change", "change_ci_low", "change_ci_high", "verdict",
    "seeds_to_resolve", "spread_source",
    "gflops", "params", "paper_top1", "paper_top1_std", "paper_change", "paper_gflops",
    "proxy_gflops", "proxy_params", "train_images_per_s", "infer_images_per_s", "device",
    *COST_FIELDS, "wall_time_s", "precision", "channels_last", "compiled", "pixels", "status",
)


class RunNotFound(FileNotFoundError):
    """A run folder without run.json; the message names the runs that do exist."""

    def __init__(self, run_dir: str | Path) -> None:
        run_dir = Path(run_dir)
        # The caller may have passed the results folder itself instead of one of its runs.
        existing = available_runs(run_dir) or available_runs(run_dir.parent)
        where = run_dir if available_runs(run_dir) else run_dir.parent
        names = ", ".join(existing) if existing else "none"
        super().__init__(f"no run at {run_dir} (run.json not found); runs in {where}: {names}")
        self.run_dir = run_dir
        self.existing = existing


def available_runs(results_dir: str | Path) -> list[str]:
    """Names of the runs (folders holding a run.json) directly under `results_dir`."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return sorted(path.parent.name for path in results_dir.glob("*/run.json"))


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's plan (run.json); RunNotFound when there is none."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise RunNotFound(run_dir)
    info = _read_strict(path, "delete it and rerun the training command with the run's options: it writes "
                              "run.json again and keeps every finished step")
    if not isinstance(info, dict) or not isinstance(info.get("rows", []), list):
        raise UnreadableFile(path, "it is not a run plan; delete it and rerun the training command")
    return info


def _read_strict(path: Path, what_to_do: str) -> Any:
    """A JSON file that must be whole (written atomically): garbage is UnreadableFile, naming the file."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        raise UnreadableFile(path, what_to_do) from None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        return None
    except ValueError:
        # spec.json and progress files may be caught mid-write or damaged: treat as absent.
        return None
    return data if isinstance(data, dict) else None


def _read_result(path: Path) -> dict[str, Any] | None:
    """A step's result.json; None when absent. It is written atomically, so garbage is damage:
    UnreadableFile naming it (the training command counts such a step as unfinished)."""
    if not path.is_file():
        return None
    result = _read_strict(path, "delete it, or rerun the training command, which trains that step again "
                                "(resuming from its checkpoint)")
    if not isinstance(result, dict):
        raise UnreadableFile(path, "it is not a step result; delete it and rerun the training command")
    return result


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Epoch records of a metrics.jsonl; stops at a line still being written."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def _is_set(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""


def _group(row: Mapping[str, Any], run_info: Mapping[str, Any], paper: pd.DataFrame) -> str:
    """The row's stage group; rows of other modes and custom steps share one group named after the mode."""
    if _is_set(row.get("group")):
        return str(row["group"])
    if row["step"] in paper.index:
        return str(paper.at[row["step"], "group"])
    return str(run_info.get("mode") or "custom")


def _paper(run_info: Mapping[str, Any]) -> pd.DataFrame:
    if run_info.get("mode", PAPER_MODE) != PAPER_MODE:
        return paper_table("")  # empty, same columns
    return paper_table(str(run_info.get("roadmap", "")))


def _seed_state(folder: Path, expected_key: str | None) -> dict[str, Any]:
    result = _read_result(folder / "result.json")
    spec = _read_json(folder / "spec.json")
    metrics = read_metrics(folder / "metrics.jsonl")
    if result is not None and _is_set(result.get("status")):
        # A result.json means the job ended: any status other than done/diverged counts as failed,
        # so a crashed or unknown outcome is never drawn as still running.
        status = result["status"] if result["status"] in FINISHED else "failed"
    elif spec is not None or metrics:
        status = "running"
    else:
        status = "missing"
    key = (result or spec or {}).get("key")
    # A result written for another spec (the plan changed since) does not answer this row.
    stale = _is_set(expected_key) and _is_set(key) and key != expected_key
    state: dict[str, Any] = {name: (result or {}).get(name) for name in RESULT_FIELDS}
    state.update(
        status="missing" if stale else status,
        stale=bool(stale),
        epochs_done=len(metrics),
        last_top1=metrics[-1].get("top1") if metrics else None,
    )
    if result is not None:
        state.update(gflops=result.get("gflops"), params=result.get("params"))
    return state


def collect(run_dir: str | Path) -> pd.DataFrame:
    """One row per (step, seed) of the run's plan, with its status and result fields.

    Status: done/diverged from result.json; running when spec.json (or metrics) exists without
    result.json; missing when nothing exists, or when the files belong to another key (`stale`).
    """
    run_dir = Path(run_dir)
    records = []
    for order, row, seed, identity in _planned_seeds(load_run(run_dir)):
        # Results are keyed per seed (run.json `seed_keys`); `key` alone serves hand-made plans.
        expected = (row.get("seed_keys") or {}).get(str(seed), row.get("key"))
        state = _seed_state(run_dir / row["step"] / str(seed), expected)
        planned = {name: row.get(name) for name in ROW_FIELDS}
        # The plan's full-size complexity wins; the result's is a fallback for hand-made plans.
        for name in ("gflops", "params"):
            planned[name] = planned[name] if _is_set(planned[name]) else state.get(name)
        state.pop("gflops", None)
        state.pop("params", None)
        planned.update(identity)
        records.append({"order": order, **planned, "seed": seed, **state})
    return pd.DataFrame.from_records(records, columns=list(COLLECT_COLUMNS))


def _planned_seeds(run_info: Mapping[str, Any]):
    """(order, row, seed, {group, label, branch_of}) for every planned row x seed, in table order."""
    paper = _paper(run_info)
    for order, row in enumerate(run_info.get("rows", [])):
        identity = {
            "group": _group(row, run_info, paper),
            "label": row.get("label") or row["step"],
            "branch_of": row.get("branch_of") if _is_set(row.get("branch_of")) else None,
        }
        for seed in run_info.get("seeds", [0]):
            yield order, row, seed, identity


def comparison_rows(steps: Sequence[str], branch_of: Sequence[Any]) -> list[int | None]:
    """Position of the row each row is compared with (see the module docstring), None for the first."""
    previous_main: int | None = None
    start_of: dict[str, int | None] = {}
    bases: list[int | None] = []
    for position, (step, parent) in enumerate(zip(steps, branch_of)):
        if _is_set(parent):
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
    reasons = [str(reason) for reason in failed.get("reason", []) if _is_set(reason)]
    if not reasons:
        return ""
    reason = reasons[0] if len(reasons[0]) <= 100 else reasons[0][:99] + "…"
    return f" ({reason})"


def _mean(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _summarise(seeds: pd.DataFrame) -> dict[str, Any]:
    first = seeds.iloc[0]
    done = seeds[seeds.status == "done"]
    measured = seeds[seeds.status.isin(["done", "diverged"])]
    top1 = pd.to_numeric(done.top1, errors="coerce").dropna()
    devices = [str(device) for device in dict.fromkeys(measured.device) if _is_set(device)]
    return {
        "step": first.step,
        "label": first.label,
        "group": first.group,
        "branch_of": first.branch_of if _is_set(first.branch_of) else None,
        "top1_mean": float(top1.mean()) if len(top1) else math.nan,
        # Sample std (ddof=1), as for the paper's "mean +- std over 3 seeds"; undefined for one seed.
        "top1_std": float(top1.std(ddof=1)) if len(top1) > 1 else math.nan,
        "seeds_done": len(top1),
        "seeds": len(seeds),
        "pretrain_loss": _mean(done.pretrain_loss),  # FCMAE rows: validation reconstruction loss
        "gflops": _mean(seeds.gflops),
        "params": _mean(seeds.params),
        "proxy_gflops": _mean(measured.proxy_gflops),
        "proxy_params": _mean(measured.proxy_params),
        "train_images_per_s": _mean(measured.train_images_per_s),
        "infer_images_per_s": _mean(measured.infer_images_per_s),
        "device": ", ".join(devices) if devices else None,
        **{name: _mean(measured[name]) for name in COST_FIELDS if name not in ("cost_device", "cost_dtype")},
        "cost_device": ", ".join(str(v) for v in dict.fromkeys(measured.cost_device) if _is_set(v)) or None,
        "cost_dtype": ", ".join(str(v) for v in dict.fromkeys(measured.cost_dtype) if _is_set(v)) or None,
        # Mean per seed, so rows with different seed counts stay comparable.
        "wall_time_s": _mean(measured.wall_time_s),
        **{name: distinct_text(measured[name]) for name in SETTING_FIELDS},
        "status": status_text(list(seeds.status)) + _failure(seeds),
        "top1_values": list(top1),  # per-seed values for the change's interval; not a table column
    }


def _change(values: pd.Series, bases: list[int | None]) -> list[float]:
    return [
        float(values.iloc[position] - values.iloc[base]) if base is not None else math.nan
        for position, base in enumerate(bases)
    ]


def _spread(table: pd.DataFrame, position: int, base: int) -> tuple[float, str | None]:
    """The seed std to plan with for one change: the run's own (root mean square of the two rows'
    stds where known), else the paper's std for the row; with the name of the source."""
    stds = [table.top1_std.iloc[index] for index in (position, base) if math.isfinite(table.top1_std.iloc[index])]
    if stds:
        return math.sqrt(sum(std**2 for std in stds) / len(stds)), "run"
    paper_std = table.paper_top1_std.iloc[position]
    if _is_set(paper_std) and math.isfinite(paper_std):
        return float(paper_std), "paper"
    return math.nan, None


def add_noise_columns(table: pd.DataFrame, bases: list[int | None]) -> pd.DataFrame:
    """Welch 95% interval and verdict of each change (two or more done seeds on both rows); for a
    change without an interval, the seeds per row that would resolve it and where the spread came from."""
    low, high, verdicts, needed, sources = [], [], [], [], []
    for position, base in enumerate(bases):
        interval = (math.nan, math.nan, math.nan)
        if base is not None:
            interval = welch_interval(table.top1_values.iloc[position], table.top1_values.iloc[base])
        low.append(interval[1])
        high.append(interval[2])
        verdicts.append(verdict(interval[1], interval[2]))
        seeds, source = None, None
        if base is not None and math.isfinite(interval[0]) and verdicts[-1] is None:
            std, source = _spread(table, position, base)
            seeds = seeds_to_resolve(interval[0], std)
        needed.append(seeds)
        sources.append(source)
    return table.assign(change_ci_low=low, change_ci_high=high, verdict=verdicts,
                        seeds_to_resolve=pd.array(needed, dtype="Int64"), spread_source=sources)


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
    table["compared_with"] = [table.step.iloc[base] if base is not None else None for base in bases]
    table["change"] = _change(table.top1_mean, bases)
    paper = _paper(run_info)
    for column in ("paper_label", "paper_top1", "paper_top1_std", "paper_gflops"):
        table[column] = [paper.at[step, column] if step in paper.index else None for step in table.step]
    for column in ("paper_top1", "paper_top1_std", "paper_gflops"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["paper_change"] = _change(table.paper_top1, bases)
    table = add_noise_columns(table, bases)
    return table[list(TABLE_COLUMNS)]


def soft_targets(spec: Mapping[str, Any] | None) -> bool | None:
    """Whether the step trained on Mixup/CutMix soft targets (its loss is then on another scale
    than a plain cross-entropy); None when spec.json is absent or does not say."""
    recipe = ((spec or {}).get("spec") or {}).get("recipe")
    if not isinstance(recipe, Mapping):
        return None
    return bool((recipe.get("mixup") or 0) > 0 or (recipe.get("cutmix") or 0) > 0)


def training_curves(run_dir: str | Path) -> pd.DataFrame:
    """Every epoch record of every (step, seed): order, step, label, group, branch_of, seed,
    soft_targets, epoch, metrics..."""
    run_dir = Path(run_dir)
    records = []
    for order, row, seed, identity in _planned_seeds(load_run(run_dir)):
        folder = run_dir / row["step"] / str(seed)
        metrics = read_metrics(folder / "metrics.jsonl")
        soft = soft_targets(_read_json(folder / "spec.json")) if metrics else None
        for record in metrics:
            records.append({"order": order, "step": row["step"], **identity, "seed": seed, "soft_targets": soft,
                            **record})
    columns = ["order", "step", "label", "group", "branch_of", "seed", "soft_targets", "epoch", "top1"]
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)


def _paper_agreement(run_info: Mapping[str, Any], table: pd.DataFrame) -> dict[str, Any] | None:
    """Agreement with the paper's table: cumulative mode of a roadmap that has one, else None."""
    if run_info.get("mode", PAPER_MODE) != PAPER_MODE or not table.paper_top1.notna().any():
        return None
    reference = paper_reference(table, str(run_info.get("roadmap", "")))
    return agreement(table, reference, str(run_info.get("run", "")))


def report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write table.csv/.md/.tex, agreement.json (when the paper has a table for the run) and every
    figure (PNG + PDF) into run_dir/report/; works on partial runs. summary() says what it found."""
    from roadmap.plots import write_figures  # matplotlib only when figures are wanted

    run_dir = Path(run_dir)
    run_info = load_run(run_dir)
    frame = collect(run_dir)
    table = aggregate(frame, run_info)
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "report"
    found = _paper_agreement(run_info, table)
    notes = summary_text(found) if found is not None else ""
    paths = write_tables(table, out_dir, table_caption(run_info, table, frame), notes=notes)
    paths.update(write_codesign(table, out_dir, figure_caption(run_info)))
    agreement_path = out_dir / AGREEMENT_FILE
    if found is not None:
        paths["agreement_json"] = write_agreement(found, agreement_path)
    else:
        agreement_path.unlink(missing_ok=True)  # from an earlier report of a plan that had a paper table
    paths.update(
        write_figures(
            table,
            training_curves(run_dir),
            out_dir,
            caption=figure_caption(run_info),
            title=f"{run_info.get('roadmap', '')} roadmap, run {run_info.get('run', run_dir.name)}",
            same_scale=run_info.get("dataset") == "imagenet",
            agreement=found,
        )
    )
    return paths


def summary(run_dir: str | Path, out_dir: str | Path | None = None) -> str:
    """The agreement summary of the run's last report (agreement.json), '' when there is none:
    what the report command and the end of a training run print under the table."""
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    found = _read_json(out_dir / AGREEMENT_FILE)
    return summary_text(found) if found else ""
