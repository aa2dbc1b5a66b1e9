"""The process's place in a data-parallel step, how many CPU threads it may use, and its warning filters."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def summed(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over all ranks (itself in a single process)."""
        if self.world_size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total


def init_distributed(use_cuda: bool) -> Distributed:
    """Join the process group when the job has several tasks (env set by submitit's helper)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def slurm_cpus() -> int | None:
    """The CPUs SLURM allotted to this task; None outside SLURM (or without a usable value)."""
    allotted = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(allotted) if allotted and allotted.isdigit() and int(allotted) > 0 else None


def available_cpus() -> int:
    """The CPUs this process may run on: SLURM's allotment, else its affinity mask (a container or
    taskset may allow fewer than the machine has), else the machine's count."""
    allotted = slurm_cpus()
    if allotted is not None:
        return allotted
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform has an affinity mask
        return os.cpu_count() or 1


def usable_workers(asked: int) -> int:
    """Data-loader workers capped at the CPUs available here: each worker is a process holding a copy
    of the dataset's state (hundreds of MB), so `--workers 100000` would fork until the OOM killer
    fires, and more workers than CPUs only queue for them."""
    return min(asked, available_cpus())


def cpu_threads(workers: int) -> int:
    """CPU threads for this process's compute: SLURM's allotment, else the machine's CPUs shared by
    the job's local processes, less one per data-loader worker. More busy threads than cores makes
    every one of them slower (on 2 cores, 1 compute thread + 1 worker trains the CPU proxies about
    1.5x faster than 2 threads + 1 worker)."""
    cores = available_cpus()
    if slurm_cpus() is None:  # the machine's CPUs are shared by the job's local processes
        cores //= int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cores - workers)


def quiet_third_party_warnings() -> None:
    """Silence what says nothing about this package: timm and fvcore still call torch.jit, which
    recent torch flags on every import and trace, burying the progress output of every job. Called
    by the command line and by each job, never at import."""
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
