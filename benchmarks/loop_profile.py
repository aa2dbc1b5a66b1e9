"""Where does the training loop's time go? One row's real trainer, three measurements, one process.

    python benchmarks/loop_profile.py [--out DIR] [--top 20] -- RUN_ROADMAP_ARGUMENTS...

for example, the case issue 10 left open (the compiled loop on the PPM copy, 0.69-0.75 of the
model-only rate with 2% data wait on an H200):

    python benchmarks/loop_profile.py --out $OUT/profile -- --preset paper --dataset folder \\
        --data /tmp/jpeg --upto resnet50 --compile --shrink 256 --shrink-format ppm \\
        --batch-size 128 --workers 14 --accumulation 1 --epochs 4

The arguments after `--` are run_roadmap.py's (`--results` defaults to a new temporary folder); the
last row of the selection is built the way its submitit job builds it (`roadmap.train.trainer.Trainer`).
Then:
1. one epoch of start-up (compilation, cuDNN autotuning, the workers' first batches), not timed;
2. one epoch timed plainly, with the main thread's CPU time beside its wall time: a host-busy
   fraction near 1 means the Python side of the loop, not the device, sets the pace;
3. the trainer's own step (batch_loss, backward, optimizer step) on one batch already on the
   device, no loader: if this is as slow as the loop, the step is the problem, else the loader;
4. one epoch under torch.profiler: device busy fraction (kernel time / wall) and the operators
   that take the most host and device time.
Writes loop_profile.json and loop_profile.txt (the profiler's tables) to --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from torch.profiler import ProfilerActivity, profile

from roadmap.cli.arguments import build_parser
from roadmap.cli.commands import run_options
from roadmap.cost.measure import synchronise, timed
from roadmap.runs.plan import plan_run
from roadmap.train.trainer import Trainer

STEP_ONLY_WARMUP, STEP_ONLY_STEPS = 3, 30


def one_epoch(trainer: Trainer) -> dict[str, float]:
    """Train the trainer's next epoch and move it on, as its run loop does (without evaluating)."""
    record = trainer.train_epoch()
    if record is None:
        sys.exit("the loss became NaN or infinite; nothing to profile")
    trainer.epoch += 1
    return record


def timed_epoch(trainer: Trainer) -> dict[str, float]:
    """One epoch's record plus the main thread's CPU seconds over its wall seconds."""
    cpu, wall = time.thread_time(), time.perf_counter()
    record = one_epoch(trainer)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return {**record, "host_busy": round(cpu / wall, 3)}


def step_only_images_per_s(trainer: Trainer) -> float:
    """The trainer's step on one batch that is already on the device: the loop without its loader."""
    images, labels = next(iter(trainer.loader))
    images = images.contiguous(memory_format=trainer.numerics.memory_format)

    def step() -> None:
        trainer.batch_loss(images, labels).backward()
        trainer.optimizer_step()

    _, seconds = timed(step, STEP_ONLY_WARMUP, STEP_ONLY_STEPS, trainer.device)
    return STEP_ONLY_STEPS * labels.shape[0] / seconds


def profiled_epoch(trainer: Trainer, top: int) -> tuple[dict[str, float], str]:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
    with profile(activities=activities) as profiler:
        wall = time.perf_counter()
        one_epoch(trainer)
        synchronise(trainer.device)
        wall = time.perf_counter() - wall
    events = profiler.key_averages()
    device_us = sum(event.self_device_time_total for event in events)
    tables = "\n\n".join(
        events.table(sort_by=key, row_limit=top) for key in ("self_cpu_time_total", "self_device_time_total")
    )
    busy = round(device_us / 1e6 / wall, 3) if trainer.device.type == "cuda" else None  # no kernels timed on a CPU
    return {"wall_s": round(wall, 3), "device_busy": busy}, tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=".")
    parser.add_argument("--top", type=int, default=20, help="operators per table")
    arguments, roadmap_arguments = parser.parse_known_args()
    roadmap_arguments = [argument for argument in roadmap_arguments if argument != "--"]
    if "--results" not in roadmap_arguments:  # the trainer writes its progress file there
        roadmap_arguments += ["--results", tempfile.mkdtemp(prefix="loop-profile-")]
    options = run_options(build_parser().parse_args(roadmap_arguments))
    task = plan_run(options).tasks[-1]
    trainer = Trainer(task)
    one_epoch(trainer)  # start-up
    plain = timed_epoch(trainer)
    step_only = step_only_images_per_s(trainer)
    profiled, tables = profiled_epoch(trainer, arguments.top)
    summary = {
        "step": task.step,
        "device": str(trainer.device),
        "numerics": trainer.numerics.describe(),
        "pixels": trainer.pixels,
        "loop_images_per_s": round(plain["images_per_s"], 1),
        "data_wait": round(plain["data_wait_s"] / plain["epoch_time_s"], 3),
        "host_busy": plain["host_busy"],
        "step_only_images_per_s": round(step_only, 1),
        "loop_over_step_only": round(plain["images_per_s"] / step_only, 3),
        "profiled": profiled,
    }
    print(json.dumps(summary, indent=1))
    out = Path(arguments.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "loop_profile.json").write_text(json.dumps(summary, indent=2))
    (out / "loop_profile.txt").write_text(tables)


if __name__ == "__main__":
    main()
