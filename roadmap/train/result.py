"""The result record of a trained step (result.json): accuracy, complexity, speed, numerics,
environment, its pre-training where it had one, and the full-size network's cost when asked."""

from __future__ import annotations

from typing import Any

import numpy as np

from roadmap.cost.measure import measure_settings
from roadmap.cost.numerics import describe_device, environment
from roadmap.cost.settings import default_cost_settings
from roadmap.files.layout import FORMAT_KEY, FORMAT_VERSION
from roadmap.network.complexity import complexity
from roadmap.spec import Spec

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


def step_result(trainer: Any, status: str) -> dict[str, Any]:
    """The record of `trainer` (a roadmap.train.trainer.Trainer) after its last epoch, ending with `status`."""
    history = trainer.history
    last = history[-1] if history else {}
    proxy = complexity(trainer.spec, trainer.task.resolution)

    def median(field: str) -> float | None:
        return float(np.median([record[field] for record in history])) if history else None

    result = {
        FORMAT_KEY: FORMAT_VERSION,
        "status": status,
        "step": trainer.task.step,
        "seed": trainer.task.seed,
        "key": trainer.task.key,
        "top1": last.get("top1"),
        "top5": last.get("top5"),
        "best_top1": trainer.best_top1 if history else None,
        # Which weights `top1` / `top5` come from ("raw" or "ema"); with an EMA both are recorded.
        "reported_weights": trainer.reported_weights,
        **weights_figures(last, trainer.reported_weights),
        "ema_decay": trainer.ema_decay,
        "epochs": trainer.epoch,
        "gflops": trainer.task.gflops,
        "params": trainer.task.params,
        "proxy_gflops": proxy.gflops,
        "proxy_params": proxy.params,
        "resolution": trainer.task.resolution,
        "train_images_per_s": median("images_per_s"),
        "infer_images_per_s": median("infer_images_per_s"),
        "data_wait_fraction": (
            sum(r["data_wait_s"] for r in history) / sum(r["epoch_time_s"] for r in history) if history else None
        ),
        "wall_time_s": trainer.wall_time,
        "device": describe_device(trainer.device),
        "world_size": trainer.distributed.world_size,
        "dataset": trainer.task.dataset,
        "preset": trainer.task.preset,
        "precision": trainer.numerics.precision,
        "channels_last": trainer.numerics.channels_last,
        "compiled": trainer.numerics.compile,
        "deterministic": trainer.numerics.deterministic,
        "startup_time_s": sum(r.get("startup_time_s", 0.0) + r.get("eval_startup_time_s", 0.0) for r in history),
        "recompiles_after_first_epoch": sum(r.get("recompiles", 0) for r in history),
        "pixels": trainer.pixels,
        "environment": environment(trainer.device),
    }
    if trainer.parent is not None:
        # The pre-training phase is part of the row: its loss, its files and its time.
        result.update(
            pretrain_loss=trainer.parent.get("val_loss"),
            pretrain=trainer.parent,
            wall_time_s=trainer.wall_time + (trainer.parent.get("wall_time_s") or 0.0),
        )
    if trainer.task.cost_spec is not None and trainer.distributed.main:
        result.update(
            measure_settings(
                Spec.from_dict(trainer.task.cost_spec),
                trainer.task.cost_settings or default_cost_settings(trainer.device),
                trainer.device,
            )
        )
    return result
