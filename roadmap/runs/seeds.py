"""A run's plan and the state of each of its step x seed folders, read from disk.

The only input is the on-disk format of docs/results-format.md (roadmap.files.layout); nothing here
imports training code, so this works on a copied or partial run. roadmap.report.run_table aggregates the
per-seed frame into the run's table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from roadmap.errors import UserError
from roadmap.files.atomic import UnreadableFile, check_format, check_readable, claim_holder, read_json_checked
from roadmap.files.layout import RunPaths, StepPaths, available_runs, finished, is_set
from roadmap.network.paper_values import paper_table
from roadmap.network.roadmaps import PAPER_MODE

# `failed`: the trainer wrote a result.json whose status says the job ended without a result.
# `interrupted`: started (task.json or metrics) but no process holds its claim: the job was killed
# or its launcher stopped; the next run resumes it from its checkpoint.
STATUSES = ("done", "diverged", "failed", "running", "interrupted", "missing")
FINISHED = ("done", "diverged", "failed")

# Cost per step: the full-size network timed at 224 px after training (result.json `cost_*`).
COST_FIELDS = (
    "cost_train_images_per_s",
    "cost_infer_images_per_s",
    "cost_peak_memory_mb",
    "cost_device",
    "cost_batch",
    "cost_dtype",
)
# How a step was computed (written by newer trainers; absent from older results).
SETTING_FIELDS = ("precision", "channels_last", "compiled", "deterministic", "pixels")
ROW_FIELDS = ("step", "label", "group", "branch_of", "gflops", "params", "key")
RESULT_FIELDS = (
    "top1",
    "top5",
    # Which weights `top1` comes from ("raw" / "ema"), and each weights' top-1 (EMA rows evaluate both).
    "reported_weights",
    "top1_raw",
    "top1_ema",
    "best_top1",
    "epochs",
    "proxy_gflops",
    "proxy_params",
    "train_images_per_s",
    "infer_images_per_s",
    "wall_time_s",
    "device",
    *COST_FIELDS,
    *SETTING_FIELDS,
    "environment",
    "reason",
    "pretrain_loss",
)
COLLECT_COLUMNS = (
    "order",
    "step",
    "label",
    "group",
    "branch_of",
    "gflops",
    "params",
    "seed",
    "status",
    "stale",
    *RESULT_FIELDS,
    "epochs_done",
    "last_top1",
)


class RunNotFound(UserError, FileNotFoundError):
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


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's plan (run.json); RunNotFound when there is none. It is written atomically, so a
    file that is not a plan is damage: UnreadableFile naming it."""
    path = RunPaths(run_dir).plan
    if not path.exists():  # a run.json that is there but cannot be opened is named below, not "not found"
        raise RunNotFound(run_dir)
    info = read_json_checked(
        path,
        "delete it and rerun the training command with the run's options: it "
        "writes run.json again and keeps every finished step",
    )
    check_format(path, info)
    if not isinstance(info, dict) or not isinstance(info.get("rows", []), list):
        raise UnreadableFile(path, "it is not a run plan; delete it and rerun the training command")
    return info


def read_step_result(paths: StepPaths) -> dict[str, Any] | None:
    """A step's result.json for the report; None when absent. It is written atomically, so a file that
    holds no result is damage: UnreadableFile naming it (training counts such a step as unfinished)."""
    check_readable(paths.result)
    if paths.result_unreadable():
        raise UnreadableFile(
            paths.result,
            "delete it, or rerun the training command, which trains that step again (resuming from its checkpoint)",
        )
    result = paths.read_result()
    check_format(paths.result, result)
    return result


def run_paper_table(run_info: Mapping[str, Any]) -> pd.DataFrame:
    """The paper's table for the run: its roadmap's in the paper's (cumulative) mode, else empty."""
    if run_info.get("mode", PAPER_MODE) != PAPER_MODE:
        return paper_table("")  # empty, same columns
    return paper_table(str(run_info.get("roadmap", "")))


def _group(row: Mapping[str, Any], run_info: Mapping[str, Any], paper: pd.DataFrame) -> str:
    """The row's stage group; rows of other modes and custom steps share one group named after the mode."""
    if is_set(row.get("group")):
        return str(row["group"])
    if row["step"] in paper.index:
        return str(paper.at[row["step"], "group"])
    return str(run_info.get("mode") or "custom")


def planned_seeds(run_info: Mapping[str, Any]):
    """(order, row, seed, {group, label, branch_of}) for every planned row x seed, in table order."""
    paper = run_paper_table(run_info)
    for order, row in enumerate(run_info.get("rows", [])):
        identity = {
            "group": _group(row, run_info, paper),
            "label": row.get("label") or row["step"],
            "branch_of": row.get("branch_of") if is_set(row.get("branch_of")) else None,
        }
        for seed in run_info.get("seeds", [0]):
            yield order, row, seed, identity


def _status(result: Mapping[str, Any] | None, task: Mapping[str, Any] | None, metrics: list, paths: StepPaths) -> str:
    if result is not None and is_set(result.get("status")):
        # A result.json means the job ended: any status other than done/diverged counts as failed,
        # so a crashed or unknown outcome is never drawn as still running.
        # A done result without its figures is not a finished one either (it is trained again).
        return result["status"] if finished(result) else "failed"
    if task is None and not metrics:
        return "missing"
    # A training job holds the step's claim (flock) for its whole life and the kernel drops it when
    # the job dies, kill -9 included: started without a holder means nobody is training it.
    return "running" if claim_holder(paths) is not None else "interrupted"


def seed_state(paths: StepPaths, expected_key: str | None) -> dict[str, Any]:
    """Status, result fields and epochs done of one step x seed (the per-seed columns of collect)."""
    result = read_step_result(paths)
    task = paths.read_task()
    metrics = paths.read_metrics()
    key = (result or task or {}).get("key")
    # A result written for another spec (the plan changed since) does not answer this row.
    stale = is_set(expected_key) and is_set(key) and key != expected_key
    state: dict[str, Any] = {name: (result or {}).get(name) for name in RESULT_FIELDS}
    state.update(
        status="missing" if stale else _status(result, task, metrics, paths),
        stale=bool(stale),
        epochs_done=len(metrics),
        last_top1=metrics[-1].get("top1") if metrics else None,
    )
    if result is not None:
        state.update(gflops=result.get("gflops"), params=result.get("params"))
    return state


def collect(run_dir: str | Path, run_info: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per (step, seed) of the run's plan (`run_info`, read from run.json when not given),
    with its status and result fields.

    Status: done/diverged from result.json; running when task.json (spec.json in runs written
    before) or metrics exist without result.json and a process holds the step's claim, interrupted
    when none does; missing when nothing exists, or when the files
    belong to another key (`stale`).
    """
    run = RunPaths(run_dir)
    records = []
    for order, row, seed, identity in planned_seeds(run_info or load_run(run_dir)):
        # Results are keyed per seed (run.json `seed_keys`); `key` alone serves hand-made plans.
        expected = (row.get("seed_keys") or {}).get(str(seed), row.get("key"))
        state = seed_state(run.step(row["step"], seed), expected)
        planned = {name: row.get(name) for name in ROW_FIELDS}
        # The plan's full-size complexity wins; the result's is a fallback for hand-made plans.
        for name in ("gflops", "params"):
            planned[name] = planned[name] if is_set(planned[name]) else state.get(name)
        state.pop("gflops", None)
        state.pop("params", None)
        planned.update(identity)
        records.append({"order": order, **planned, "seed": seed, **state})
    return pd.DataFrame.from_records(records, columns=list(COLLECT_COLUMNS))


def soft_targets(task: Mapping[str, Any] | None) -> bool | None:
    """Whether the step trained on Mixup/CutMix soft targets (its loss is then on another scale
    than a plain cross-entropy); None when the task file is absent or does not say."""
    recipe = ((task or {}).get("spec") or {}).get("recipe")
    if not isinstance(recipe, Mapping):
        return None
    return bool((recipe.get("mixup") or 0) > 0 or (recipe.get("cutmix") or 0) > 0)


def training_curves(run_dir: str | Path, run_info: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Every epoch record of every (step, seed) of the plan (`run_info`, read when not given): order,
    step, label, group, branch_of, seed, soft_targets, epoch, metrics..."""
    run = RunPaths(run_dir)
    records = []
    for order, row, seed, identity in planned_seeds(run_info or load_run(run_dir)):
        paths = run.step(row["step"], seed)
        metrics = paths.read_metrics()
        soft = soft_targets(paths.read_task()) if metrics else None
        for record in metrics:
            records.append(
                {"order": order, "step": row["step"], **identity, "seed": seed, "soft_targets": soft, **record}
            )
    columns = ["order", "step", "label", "group", "branch_of", "seed", "soft_targets", "epoch", "top1"]
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
