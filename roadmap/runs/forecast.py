"""`--plan`: what each row of a run will cost, predicted from what the loop will actually do.

A row trains at the slower of two rates, both measured here before anything trains:

- the model: its train step (forward, loss, backward, optimizer) at the run's per-device batch and
  resolution, under the run's numerics, after an untimed warm-up long enough for cuDNN autotuning
  and compilation (roadmap.cost.measure); or `--throughput` when given;
- the loader: the run's own dataset, transforms, workers and batch, through the same pipeline the
  trainer reads (roadmap.train.step_data.step_data), timed after its workers have started. Rows that share
  a recipe share their transforms, so the loader is timed once per recipe.

    device-hours = seeds x epochs x images per epoch / min(model, loader) images per second

The row is `data-bound` when the loader is the slower of the two, else `compute-bound`.
Evaluation and start-up are not included. On a CPU the model and the loader's workers share the
cores, so there the prediction is an upper bound on speed.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

import pandas as pd
import torch

from roadmap.cost.measure import measure
from roadmap.cost.numerics import Numerics
from roadmap.cost.processes import usable_workers
from roadmap.fcmae.trainer import pretrain_task
from roadmap.runs.plan import RunPlan
from roadmap.train.step_data import step_data
from roadmap.train.task import StepTask

# The loader is timed for at least this many batches and seconds (in whole rounds of one batch per
# worker), within one epoch.
LOADER_BATCHES = 3
LOADER_SECONDS = 5.0


def device_hours(train_images_per_s: float, epochs: int, images_per_epoch: int, seeds: int = 1) -> float:
    """Training time of one step: epochs x images / throughput, per seed (evaluation not included)."""
    return seeds * epochs * images_per_epoch / train_images_per_s / 3600


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def loader_images_per_s(task: StepTask, device: torch.device | None = None, resolution: int | None = None) -> float:
    """Images/s the task's training loader delivers to `device` when the consumer waits for nothing.

    Timed from the moment the loader starts, in whole rounds of one batch per worker: W workers
    deliver their first W batches together after one batch's work each, so rounds measure the
    steady rate without the bias of timing batches that were already half made.
    """
    device = device or _device()
    data = step_data(task, device)
    data.sampler.set_epoch(0, task.seed, resolution)
    batches, round_size = len(data.loader), max(1, task.workers)
    started = time.perf_counter()
    timed = 0
    for _ in data.loader:
        timed += 1
        elapsed = time.perf_counter() - started
        whole_round = timed % round_size == 0
        if timed == batches or (whole_round and timed >= LOADER_BATCHES and elapsed >= LOADER_SECONDS):
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    del data  # stops the workers
    return timed * task.per_device_batch / max(elapsed, 1e-9)


def model_images_per_s(task: StepTask, device: torch.device | None = None, resolution: int | None = None) -> float:
    """Train images/s of the task's trained network at its batch and resolution, under its numerics."""
    device = device or _device()
    numerics = Numerics(**task.numerics)
    cost = measure(
        task.spec,
        batch=task.per_device_batch,
        resolution=resolution or task.resolution,
        device=device,
        numerics=numerics,
    )
    return cost.train_images_per_s


def over_the_schedule(task: StepTask, epochs: int, rate_at: Callable[[int], float]) -> float:
    """Images/s over a whole step: with progressive resizing, each resolution's rate weighted by the
    share of epochs trained at it (time adds up, so the rates combine harmonically)."""
    resolutions = [task.train_resolution(epoch) for epoch in range(epochs)]
    shares = {resolution: resolutions.count(resolution) / epochs for resolution in dict.fromkeys(resolutions)}
    return 1 / sum(share / rate_at(resolution) for resolution, share in shares.items())


def _say_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def plan_table(
    plan: RunPlan,
    throughput: float | None = None,
    say: Callable[[str], None] = _say_to_stderr,
    loader_throughput: float | None = None,
    images_per_epoch: int | None = None,
) -> pd.DataFrame:
    """Per row: model and loader rates, the rate the loop will reach, what binds, and device-hours.

    `throughput` / `loader_throughput`: the model's / the loader's images/s when known (e.g.
    measured on the target machine, which a laptop planning for a cluster is not); measured here
    otherwise. `images_per_epoch`: the real dataset's size where the run plans on a sample of it
    (default: the run's training images). An FCMAE row's pre-training phase is timed as well and its
    hours are part of the row's
    (`pretrain_device_hours`); its model rate is the encoder's dense train step at the pre-training
    batch (the one-block decoder adds about 4% of ConvNeXt-T's FLOPs and is not timed)."""
    info = plan.info
    images, seeds = images_per_epoch or info.train_images, len(info.seeds)
    first_task = {task.step: task for task in reversed(plan.tasks)}
    rates = _Rates(throughput, loader_throughput, say)
    records = []
    for number, row in enumerate(info.rows, start=1):
        task = first_task[row.step]
        say(f"plan: [{number}/{len(info.rows)}] {row.step}")
        model, loader = rates.of(task, row.recipe, row.epochs)
        rate = min(model, loader)
        hours = device_hours(rate, row.epochs, images, seeds)
        pretrain_hours = 0.0
        if row.pretrain_epochs:
            phase = pretrain_task(task)
            pretrain_rate = min(rates.of(phase, "fcmae pre-training", row.pretrain_epochs))
            pretrain_hours = device_hours(pretrain_rate, row.pretrain_epochs, images, seeds)
        records.append(
            {
                "step": row.step,
                "epochs": row.epochs,
                "images_per_epoch": images,
                "seeds": seeds,
                "model_images_per_s": round(model, 1),
                "loader_images_per_s": round(loader, 1),
                "images_per_s": round(rate, 1),
                "bound": "data-bound" if loader < model else "compute-bound",
                "device_hours": hours + pretrain_hours,
                "pretrain_device_hours": pretrain_hours,
                "model_source": "given (--throughput)" if throughput is not None else "measured here",
                "loader_source": "given (--loader-throughput)" if loader_throughput is not None else "measured here",
            }
        )
    return pd.DataFrame.from_records(records)


class _Rates:
    """Model and loader images/s of a task, measured (or given); loaders timed once per recipe."""

    def __init__(self, throughput: float | None, loader_throughput: float | None, say: Callable[[str], None]) -> None:
        self.throughput, self.loader_throughput, self.say = throughput, loader_throughput, say
        self.loaders: dict[str, float] = {}

    def of(self, task: StepTask, recipe: str, epochs: int) -> tuple[float, float]:
        where = f"batch {task.per_device_batch}, {'/'.join(map(str, task.train_resolutions))} px"
        if self.loader_throughput is not None:
            self.loaders[recipe] = self.loader_throughput
        elif recipe not in self.loaders:
            workers = usable_workers(task.workers)
            capped = f", --workers {task.workers} capped at the CPUs here" if workers < task.workers else ""
            self.say(f"plan: timing the {recipe} recipe's loader ({workers} worker(s){capped}, {where})")
            self.loaders[recipe] = over_the_schedule(
                task, epochs, lambda resolution: loader_images_per_s(task, resolution=resolution)
            )
        if self.throughput is not None:
            return self.throughput, self.loaders[recipe]
        self.say(f"plan: timing the {task.phase or 'train'} step at {where}")
        model = over_the_schedule(task, epochs, lambda resolution: model_images_per_s(task, resolution=resolution))
        return model, self.loaders[recipe]
