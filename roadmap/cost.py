"""Cost per step: measured throughput and peak memory of a spec's full-size network on this machine.

FLOPs are not speed: depthwise convolutions and large kernels have few FLOPs and low arithmetic
intensity. This module times what a step costs where it runs: a warm-up, then timed train steps
(forward, loss, backward, AdamW) and inference batches, recording device, dtype, batch and memory
format with the figures. `plan_costs` turns throughput into device-hours for `--plan`.
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from roadmap.build import build
from roadmap.spec import Spec


@dataclass(frozen=True)
class Cost:
    train_images_per_s: float
    infer_images_per_s: float
    peak_memory_mb: float  # CUDA: max allocated; CPU: growth of the process's peak resident size
    device: str
    dtype: str
    batch: int
    resolution: int
    memory_format: str

    def to_dict(self) -> dict:
        return asdict(self)


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_resident_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(spec: Spec, batch: int = 32, resolution: int = 224, warmup: int = 2, iterations: int = 5,
            device: str | torch.device | None = None) -> Cost:
    """Time train and inference steps of `spec`'s network (bf16 + channels-last on GPU, fp32 on CPU)."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_gpu = device.type == "cuda"
    memory_format = torch.channels_last if on_gpu else torch.contiguous_format
    dtype = torch.bfloat16 if on_gpu else torch.float32
    baseline = _peak_resident_mb()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    model = build(spec).to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.randn(batch, spec.network.in_channels, resolution, resolution, device=device).to(memory_format=memory_format)
    labels = torch.randint(0, spec.network.num_classes, (batch,), device=device)
    loss_function = nn.CrossEntropyLoss()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=on_gpu):
            loss = loss_function(model(images), labels)
        loss.backward()
        optimizer.step()

    def infer_step() -> None:
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=on_gpu):
            model(images)

    rates = []
    for step, training in ((train_step, True), (infer_step, False)):
        model.train(training)
        for _ in range(warmup):
            step()
        _synchronise(device)
        started = time.perf_counter()
        for _ in range(iterations):
            step()
        _synchronise(device)
        rates.append(iterations * batch / (time.perf_counter() - started))
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if on_gpu else _peak_resident_mb() - baseline
    name = torch.cuda.get_device_name(device) if on_gpu else f"cpu ({torch.get_num_threads()} threads)"
    return Cost(rates[0], rates[1], peak, name, str(dtype).removeprefix("torch."), batch, resolution,
                "channels_last" if on_gpu else "contiguous")


def device_hours(train_images_per_s: float, epochs: int, images_per_epoch: int, seeds: int = 1) -> float:
    """Training time of one step: epochs x images / throughput, per seed (evaluation not included)."""
    return seeds * epochs * images_per_epoch / train_images_per_s / 3600


def plan_table(plan: "RunPlan", throughput: float | None = None, measure_batch: int = 16) -> "pd.DataFrame":
    """Estimated device-hours of every row of a planned run, before anything trains.

    Throughput is `throughput` images/s when given (e.g. measured on the target GPU), otherwise
    measured here on each row's trained network (its preset's size and resolution) with a batch of
    at most `measure_batch`, one warm-up and two timed train steps.
    """
    import pandas as pd

    from roadmap.runs import RunPlan  # noqa: F401  (type only)

    info = plan.info
    images = info["train_images"]
    seeds = len(info["seeds"])
    records = []
    first_task = {task.step: task for task in reversed(plan.tasks)}
    for row in info["rows"]:
        task = first_task[row["step"]]
        if throughput is None:
            cost = measure(Spec.from_dict(task.spec), batch=min(task.per_device_batch, measure_batch),
                           resolution=task.resolution, warmup=1, iterations=2)
            rate, source = cost.train_images_per_s, f"measured here, {cost.device}, batch {cost.batch}"
        else:
            rate, source = throughput, "given (--throughput)"
        hours = device_hours(rate, row["epochs"], images, seeds)
        records.append({"step": row["step"], "epochs": row["epochs"], "images_per_epoch": images,
                        "seeds": seeds, "train_images_per_s": round(rate, 1), "device_hours": hours,
                        "throughput_source": source})
    return pd.DataFrame.from_records(records)
