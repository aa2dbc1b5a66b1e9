"""`run_roadmap.py eval`: a finished step's saved weights scored again on its own validation data.

The step's own trainer (roadmap.train.trainer.Trainer, built from the step's task.json) provides the data,
the network, the EMA and the numerics, and its `evaluate` scores them: the same loader, batch,
transforms and figures as training used, so on the same device the figures equal result.json's to
the last digit. Only the weights come from the step's last checkpoint instead of training.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from roadmap.cost.numerics import Numerics, describe_device
from roadmap.runs.step_weights import FinishedStep, final_checkpoint
from roadmap.train.checkpoints import checkpoint_weights
from roadmap.train.trainer import Trainer

FIGURES = ("top1", "top5")


def trained_on_cuda(result: dict[str, Any]) -> bool:
    """result.json names the CPU as `cpu (...)` and a GPU by its device name (roadmap.cost.numerics.describe_device)."""
    return not str(result.get("device", "cpu")).startswith("cpu")


def eval_task(step: FinishedStep) -> tuple[Any, str | None]:
    """The step's task for evaluation here, and a note when this machine cannot compute as the step did.

    On the kind of device the step trained on, its task's numerics resolve as they did in training.
    On another kind, this device's defaults (eager) are used: the figures may then differ slightly."""
    task = dataclasses.replace(step.task, init=None)  # the checkpoint replaces any starting weights
    if trained_on_cuda(step.result) == torch.cuda.is_available():
        return task, None
    task = dataclasses.replace(task, numerics=dataclasses.asdict(Numerics(compile=False)))
    here = "a GPU" if torch.cuda.is_available() else "the CPU"
    return task, (
        f"{step.name} trained on {step.result.get('device')} ({step.result.get('precision') or 'default'} "
        f"precision) and is evaluated on {here}: the figures may differ from result.json's in the last digits"
    )


def evaluate_step(step: FinishedStep) -> tuple[dict[str, dict[str, float]], Trainer, str | None]:
    """Top-1, top-5 and loss of each saved weights (`raw`, and `ema` where the step has one), the
    trainer that scored them, and the note of eval_task."""
    task, note = eval_task(step)
    trainer = Trainer(task)
    state = final_checkpoint(step, trainer.device)
    trainer.model.load_state_dict(checkpoint_weights(state, "raw"))
    if trainer.ema is not None:
        trainer.ema.module.load_state_dict(checkpoint_weights(state, "ema"))
    evaluated = trainer.evaluate()
    figures = {}
    for weights in trainer.eval_models:
        # evaluate() names each weights' figures `<figure>_<weights>` when there are two, else plainly.
        suffix = f"_{weights}" if len(trainer.eval_models) > 1 else ""
        figures[weights] = {name: evaluated[f"{name}{suffix}"] for name in (*FIGURES, "val_loss")}
    return figures, trainer, note


def recorded(step: FinishedStep, weights: str, name: str) -> float | None:
    """result.json's figure `name` of `weights` (top1_raw, top5_ema, ...)."""
    value = step.result.get(f"{name}_{weights}")
    return step.result.get(name) if value is None and weights == step.reported_weights else value


def report_lines(step: FinishedStep, figures: dict[str, dict[str, float]], trainer: Trainer) -> list[str]:
    """What `eval` prints: where and on what it evaluated, then one line per weights with the figures
    at full precision beside result.json's."""
    task = trainer.task
    resolution = task.eval_resolution or task.resolution
    lines = [
        f"{step.name}: {len(trainer.val_loader.dataset)} validation images ({task.data.dataset}; pixels: "
        f"{trainer.pixels}) at {resolution} px, batch {trainer.val_pass.batch_size}, "
        f"{trainer.numerics.describe()} on {describe_device(trainer.device)}"
    ]
    for weights, scores in figures.items():
        reported = " (reported)" if weights == step.reported_weights else ""
        mine = ", ".join(f"{name.replace('top', 'top-')} {scores[name]!r}" for name in FIGURES)
        theirs = [recorded(step, weights, name) for name in FIGURES]
        same = all(scores[name] == value for name, value in zip(FIGURES, theirs))
        verdict = "equal to result.json" if same else f"result.json: {', '.join(map(repr, theirs))}"
        lines.append(f"{weights}{reported}: {mine} (%); {verdict}")
    return lines
