"""The result record of a trained step (result.json): accuracy, complexity, speed, numerics,
environment, its pre-training where it had one, and the full-size network's cost when asked."""

from __future__ import annotations

from typing import Any

import numpy as np

from roadmap.cost.measure import measure_settings
from roadmap.cost.numerics import describe_device, environment
from roadmap.cost.settings import default_cost_settings
from roadmap.files.records import StepResult
from roadmap.network.complexity import complexity

# With an EMA, every epoch records these figures of both weights (roadmap.train.trainer.Trainer.evaluate).
EMA_WEIGHTS = ("raw", "ema")
EMA_FIELDS = ("top1", "top5")


def weights_figures(last: dict[str, Any], reported: str) -> dict[str, Any]:
    """top1_raw, top5_raw, top1_ema, top5_ema of the last epoch: a row without an EMA evaluated only
    its raw model (recorded under the plain names), so its EMA figures are None."""
    return {
        f"{name}_{weights}": last.get(f"{name}_{weights}", last.get(name) if weights == reported else None)
        for weights in EMA_WEIGHTS
        for name in EMA_FIELDS
    }


def step_result(trainer: Any, status: str) -> StepResult:
    """The record of `trainer` (a roadmap.train.trainer.Trainer) after its last epoch, ending with `status`."""
    task, history = trainer.task, trainer.history
    last = history[-1] if history else {}
    proxy = complexity(trainer.spec, task.resolution)
    pretrain = {}
    if trainer.parent is not None:
        # The pre-training phase is part of the row: its loss, its record and its time.
        pretrain = {"pretrain_loss": trainer.parent.get("val_loss"), "pretrain": trainer.parent}
    cost = {}
    if task.cost_spec is not None and trainer.distributed.main:
        settings = task.cost_settings or default_cost_settings(trainer.device)
        cost = measure_settings(task.cost_spec, settings, trainer.device)
    return StepResult(
        status=status,
        step=task.step,
        seed=task.seed,
        key=task.key,
        top1=last.get("top1"),
        top5=last.get("top5"),
        best_top1=trainer.best_top1 if history else None,
        reported_weights=trainer.reported_weights,
        **weights_figures(last, trainer.reported_weights),
        ema_decay=trainer.ema_decay,
        epochs=trainer.epoch,
        gflops=task.gflops,
        params=task.params,
        proxy_gflops=proxy.gflops,
        proxy_params=proxy.params,
        resolution=task.resolution,
        **speed_figures(history),
        wall_time_s=trainer.wall_time + ((trainer.parent or {}).get("wall_time_s") or 0.0),
        **run_settings(trainer),
        **pretrain,
        cost=cost,
    )


def speed_figures(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Median training and inference speed over the epochs, and the share of time spent waiting for data."""

    def median(field: str) -> float | None:
        return float(np.median([record[field] for record in history])) if history else None

    waited = sum(record["data_wait_s"] for record in history)
    return {
        "train_images_per_s": median("images_per_s"),
        "infer_images_per_s": median("infer_images_per_s"),
        "data_wait_fraction": waited / sum(record["epoch_time_s"] for record in history) if history else None,
    }


def run_settings(trainer: Any) -> dict[str, Any]:
    """Where and how the step ran: device, processes, data, numerics, start-up and the environment."""
    history, numerics = trainer.history, trainer.numerics
    return {
        "device": describe_device(trainer.device),
        "world_size": trainer.distributed.world_size,
        "dataset": trainer.task.data.dataset,
        "preset": trainer.task.preset,
        "precision": numerics.precision,
        "channels_last": numerics.channels_last,
        "compiled": numerics.compile,
        "deterministic": numerics.deterministic,
        "startup_time_s": sum(r.get("startup_time_s", 0.0) + r.get("eval_startup_time_s", 0.0) for r in history),
        "recompiles_after_first_epoch": sum(r.get("recompiles", 0) for r in history),
        "pixels": trainer.pixels,
        "environment": environment(trainer.device),
    }
