"""Where a step's job runs: submitit's executors (local, debug, SLURM), the job itself (`StepJob`)
and the choice of executor. Each step x seed is one submitit job running a `StepJob`, a
Checkpointable callable: when SLURM signals a time limit or preemption, submitit requeues the same
call, and the trainer resumes from its newest epoch checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import submitit
import torch

from roadmap.errors import UserError
from roadmap.launch.job import run_step
from roadmap.train.task import StepTask

log = logging.getLogger("roadmap.launch")

EXECUTORS = ("auto", "local", "debug", "slurm")


class LaunchError(UserError, RuntimeError):
    """SLURM refused the submission (bad partition, impossible request, ...)."""


@dataclass(frozen=True)
class ClusterOptions:
    """What a SLURM job asks for; names follow sbatch's options."""

    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int = 1
    cpus_per_task: int | None = None
    mem_gb: float | None = None
    time_min: int = 24 * 60
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch_args: dict[str, str] = field(default_factory=dict)
    max_parallel: int | None = None


def controller_answers() -> bool:
    """True when a SLURM controller answers `scontrol ping` (an installed `srun` is not enough)."""
    if shutil.which("scontrol") is None:
        return False
    try:
        answer = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return answer.returncode == 0 and "UP" in answer.stdout


def choose_executor(kind: str, say: Callable[[str], None] = log.info) -> str:
    """Resolve `auto`: SLURM when a controller answers (said in one line), else the local executor,
    silently: a machine without SLURM is the usual case and needs no line before every run."""
    if kind != "auto":
        return kind
    if controller_answers():
        say("executor auto: a SLURM controller answers `scontrol ping`; using slurm")
        return "slurm"
    log.debug("executor auto: no SLURM controller answers `scontrol ping`; using local")
    return "local"


def watch_launcher(pid: int) -> None:
    """End this job when the launching process is gone (checked every second, in a daemon thread)."""

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="watch-launcher", daemon=True).start()


class StepJob(submitit.helpers.Checkpointable):
    """Train one step x seed inside a submitit job.

    Checkpointable's `checkpoint` resubmits this same call on SLURM's timeout or preemption
    signal; the trainer checkpoints every epoch and the requeued call resumes from the newest
    checkpoint on disk, so nothing beyond the current epoch is lost.
    """

    def __call__(self, task: StepTask) -> dict[str, Any]:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        if task.launcher_pid is not None:
            watch_launcher(task.launcher_pid)
        if submitit.JobEnvironment().num_tasks > 1:
            # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK for torch.distributed.
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        return run_step(task)


def make_executor(kind: str, folder: Path, cluster: ClusterOptions, devices: int) -> submitit.Executor:
    if kind == "debug":
        return submitit.DebugExecutor(folder=folder)
    if kind == "local":
        executor = submitit.LocalExecutor(folder=folder)
        gpus = _local_gpus()
        executor.update_parameters(
            timeout_min=cluster.time_min, tasks_per_node=devices, gpus_per_node=gpus, stderr_to_stdout=True
        )
        return executor
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    additional = {
        key: value
        for key, value in (("account", cluster.account), ("qos", cluster.qos), ("constraint", cluster.constraint))
        if value
    }
    additional.update(cluster.sbatch_args)
    parameters: dict[str, Any] = {
        "timeout_min": cluster.time_min,
        "nodes": cluster.nodes,
        "tasks_per_node": cluster.tasks_per_node,
        "slurm_signal_delay_s": 120,
        "slurm_additional_parameters": additional,
    }
    if cluster.partition:
        parameters["slurm_partition"] = cluster.partition
    if cluster.gpus_per_node:
        parameters["gpus_per_node"] = cluster.gpus_per_node
    if cluster.cpus_per_task:
        parameters["cpus_per_task"] = cluster.cpus_per_task
    if cluster.mem_gb:
        parameters["mem_gb"] = cluster.mem_gb
    if cluster.max_parallel:
        parameters["slurm_array_parallelism"] = cluster.max_parallel
    executor.update_parameters(**parameters)
    return executor


def local_cuda() -> bool:
    """True when jobs run here would get a GPU."""
    return torch.cuda.is_available()


def _local_gpus() -> int:
    return torch.cuda.device_count() if local_cuda() else 0


# -- progress -----------------------------------------------------------------------------------
