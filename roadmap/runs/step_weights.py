"""A finished step x seed of a run and the weights it saved: what `eval` and `export` read.

A finished step keeps its last epoch's checkpoint (roadmap.train.checkpoints): the raw model's weights and,
where the recipe has an EMA, the EMA's. Both are checked against the step's result.json (same key,
same epoch), so the weights read here are the ones its recorded figures were measured on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from roadmap.errors import one_line
from roadmap.files.layout import StepPaths
from roadmap.runs.info import RunInfo
from roadmap.runs.options import check_run_name
from roadmap.runs.seeds import load_run, read_step_result
from roadmap.spec import Spec
from roadmap.train.checkpoints import StepWeightsError, UnsafeCheckpoint, is_training_checkpoint, load_torch_file
from roadmap.train.task import StepTask
from steps import canonical_name

WEIGHTS = ("raw", "ema")


@dataclass(frozen=True)
class FinishedStep:
    """A done step x seed: the run's plan, the step's files, its task and its result."""

    info: RunInfo
    paths: StepPaths
    task: StepTask
    result: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.paths.step} (seed {self.paths.seed}) of run {self.info.run}"

    @property
    def spec(self) -> Spec:
        """The network as trained (the preset's proxy size, the dataset's classes)."""
        return self.task.spec

    @property
    def reported_weights(self) -> str:
        """The weights the step's figures report: the EMA's where it has one (result.json says)."""
        return self.result.get("reported_weights") or "raw"

    @property
    def has_ema(self) -> bool:
        return self.result.get("top1_ema") is not None or self.reported_weights == "ema"


def _row_and_seed(info: RunInfo, step: str, seed: int) -> str:
    rows = [row.step for row in info.rows]
    name = canonical_name(step)
    if name not in rows:
        raise StepWeightsError(f"run {info.run} has no row {step!r}; its rows: {', '.join(rows)}")
    if seed not in info.seeds:
        seeds = ", ".join(map(str, info.seeds))
        raise StepWeightsError(f"run {info.run} has no seed {seed} (its seeds: {seeds}); give --seed one of them")
    return name


def finished_step(results: str | Path, run: str, step: str, seed: int = 0) -> FinishedStep:
    """The done step x seed `step` of run `run` under `results`; RunNotFound for an unknown run,
    StepWeightsError for an unknown row or seed, or a step that has not finished training."""
    check_run_name(run)
    run_dir = Path(results) / run
    info = RunInfo.from_json(load_run(run_dir))
    name = _row_and_seed(info, step, seed)
    paths = StepPaths(run_dir, name, seed)
    result = read_step_result(paths)
    task = paths.read_task()
    if result is None or task is None or result.get("status") != "done":
        status = "not started" if task is None else (result or {}).get("status", "not finished")
        raise StepWeightsError(
            f"{name} (seed {seed}) of run {info.run} has not finished training (status: {status}); "
            f"only a done step has final weights"
        )
    return FinishedStep(info, paths, StepTask.from_json(task, run_dir), result)


def final_checkpoint(step: FinishedStep, device: torch.device | str = "cpu") -> dict[str, Any]:
    """The step's last checkpoint, checked to be the one its result.json was written from."""
    path = step.paths.checkpoint
    try:
        state = load_torch_file(path, map_location=device)
    except FileNotFoundError:
        raise StepWeightsError(f"{step.name} has no checkpoint ({path} is gone); its weights were not kept") from None
    except UnsafeCheckpoint as error:
        raise StepWeightsError(str(error)) from None
    except Exception as error:  # cut short, overwritten: unusable either way
        raise StepWeightsError(f"{path} is unreadable ({one_line(error)})") from None
    if not is_training_checkpoint(state):
        raise StepWeightsError(f"{path} is not a training checkpoint (it lacks the model, optimizer, epoch or key)")
    if state.get("key") != step.result.get("key"):
        raise StepWeightsError(f"{path} is not the checkpoint of {step.name}'s result (another key)")
    if state.get("epoch") != step.result.get("epochs"):
        raise StepWeightsError(
            f"{path} holds epoch {state.get('epoch')}, the result was measured after epoch {step.result.get('epochs')}"
        )
    return state
