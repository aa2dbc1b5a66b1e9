"""Train and evaluate one step x seed: the loop a submitit job runs.

Every piece of the recipe comes from timm (transforms, Mixup/CutMix, losses, optimizer, scheduler,
EMA); this module only wires them. Each epoch is seeded from (seed, epoch) and checkpointed
atomically, so a run killed at any moment and restarted reaches bit-identical final metrics.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, accuracy, random_seed
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from roadmap.build import build
from roadmap.complexity import complexity
from roadmap.data import Transformed, build_transforms, load_datasets
from roadmap.files import StepPaths, read_json, write_atomic, write_json, write_json_lines
from roadmap.spec import Spec

log = logging.getLogger("roadmap.train")

# How often (optimizer steps) the loss is checked for NaN/inf and progress is written.
CHECK_EVERY = 10


@dataclass(frozen=True)
class StepTask:
    """Everything a job needs to train one step x seed; plain data so that submitit can pickle it."""

    run_dir: str
    step: str
    seed: int
    key: str
    spec: dict
    preset: str
    dataset: str
    data_path: str | None
    resolution: int
    per_device_batch: int
    accumulation: int
    lr: float
    workers: int
    gflops: float  # full-size network at 224 (paper convention)
    params: int
    synthetic: dict  # sizes and seed of the embedded dataset
    # Local runs: the launching process; the job stops when it dies, so a killed run leaves no
    # orphan trainer behind (submitit's local controller is made to outlive its launcher).
    launcher_pid: int | None = None
    # Full-size network whose throughput and peak memory are measured after training (cost per
    # step, on the machine that ran the step); None to skip.
    cost_spec: dict | None = None

    @property
    def paths(self) -> StepPaths:
        return StepPaths(Path(self.run_dir), self.step, self.seed)


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(use_cuda: bool) -> Distributed:
    """Join the process group when the job has several tasks (env set by submitit's helper)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def cpu_threads(workers: int) -> int:
    """CPU threads for this process's compute: SLURM's allotment, else the machine's CPUs shared by
    the job's local processes, less one per data-loader worker. More busy threads than cores makes
    every one of them slower (on 2 cores, 1 compute thread + 1 worker trains the CPU proxies about
    1.5x faster than 2 threads + 1 worker)."""
    allotted = os.environ.get("SLURM_CPUS_PER_TASK")
    if allotted:
        cores = int(allotted)
    else:
        cores = len(os.sched_getaffinity(0)) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, cores - workers)


def seed_worker(worker_id: int) -> None:
    # torch seeds each worker's torch and `random`; numpy (used by RandAugment) needs it too.
    np.random.seed(torch.initial_seed() % 2**32)


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


class Trainer:
    """State of one training job: model, optimizer, scheduler, EMA, data, and its files."""

    def __init__(self, task: StepTask) -> None:
        self.task = task
        self.paths = task.paths
        self.spec = Spec.from_dict(task.spec)
        self.recipe = self.spec.recipe
        use_cuda = torch.cuda.is_available()
        self.distributed = init_distributed(use_cuda)
        self.device = torch.device("cuda", self.distributed.local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        else:
            torch.set_num_threads(cpu_threads(task.workers))
        # bf16 autocast and channels-last where they pay off (GPU); fp32 NCHW on CPU.
        self.memory_format = torch.channels_last if use_cuda else torch.contiguous_format
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_cuda)

        data = load_datasets(task.dataset, task.data_path, **task.synthetic)
        self.num_classes = data.num_classes
        self.train_set = Transformed(data.train, build_transforms(self.recipe, task.resolution, True))
        val_set = Transformed(data.val, build_transforms(self.recipe, task.resolution, False))
        self.val_set = Subset(val_set, range(self.distributed.rank, len(val_set), self.distributed.world_size))
        self.generator = torch.Generator()
        # One shuffle for any number of ranks: rank r takes positions r, r + R, ... of the same
        # permutation, so a global batch of R ranks holds exactly the images of the
        # single-process batch of the same size (the equivalence the DDP test checks).
        self.sampler = DistributedSampler(self.train_set, self.distributed.world_size, self.distributed.rank,
                                          shuffle=True, seed=task.seed, drop_last=True)
        self.loader = DataLoader(self.train_set, batch_size=task.per_device_batch, sampler=self.sampler,
                                 num_workers=task.workers, drop_last=True, worker_init_fn=seed_worker,
                                 generator=self.generator, pin_memory=use_cuda)
        self.batches = len(self.loader)
        self.updates_per_epoch = max(1, self.batches // task.accumulation)
        if self.batches < task.accumulation:
            raise ValueError(f"{task.step}: {len(self.train_set)} training images give fewer batches than accumulation steps")

        random_seed(task.seed, 0)  # the same initial weights on every rank
        self.model = build(self.spec).to(self.device, memory_format=self.memory_format)
        self.ema = ModelEmaV3(self.model, decay=self.recipe.ema_decay) if self.recipe.ema else None
        self.network = self.model
        if self.distributed.world_size > 1:
            self.network = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if use_cuda else None)
        self.optimizer = create_optimizer_v2(
            self.model, opt=self.recipe.opt, lr=task.lr, weight_decay=self.recipe.weight_decay,
            momentum=self.recipe.momentum, filter_bias_and_bn=self.recipe.no_decay_1d,
            **({"eps": self.recipe.opt_eps, "betas": self.recipe.opt_betas} if self.recipe.opt.endswith("adamw") else {}),
        )
        self.scheduler, _ = create_scheduler_v2(
            self.optimizer, sched=self.recipe.sched, num_epochs=self.recipe.epochs,
            decay_epochs=self.recipe.decay_epochs, decay_rate=self.recipe.decay_rate,
            warmup_epochs=self.recipe.warmup_epochs, warmup_lr=self.recipe.warmup_lr, min_lr=self.recipe.min_lr,
            step_on_epochs=False, updates_per_epoch=self.updates_per_epoch,
        )
        self.mixup = None
        if self.recipe.mixup > 0 or self.recipe.cutmix > 0:
            if task.per_device_batch % 2:
                raise ValueError(f"{task.step}: Mixup/CutMix need an even batch per device, got {task.per_device_batch}")
            self.mixup = Mixup(mixup_alpha=self.recipe.mixup, cutmix_alpha=self.recipe.cutmix,
                               prob=self.recipe.mixup_prob, switch_prob=self.recipe.mixup_switch_prob,
                               mode="batch", label_smoothing=self.recipe.label_smoothing, num_classes=self.num_classes)
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        elif self.recipe.label_smoothing > 0:
            self.criterion = LabelSmoothingCrossEntropy(smoothing=self.recipe.label_smoothing)
        else:
            self.criterion = nn.CrossEntropyLoss()
        self.epoch = 0
        self.updates = 0
        self.best_top1 = -1.0
        self.history: list[dict] = []
        self.wall_time = 0.0
        self.train_rate: list[float] = []
        self.infer_rate: list[float] = []

    # -- checkpoints ------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "key": self.task.key, "epoch": self.epoch, "updates": self.updates, "best_top1": self.best_top1,
            "history": self.history, "wall_time_s": self.wall_time,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "scaler": None,  # bf16 autocast needs no loss scaler
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        }

    def save_checkpoint(self) -> None:
        if not self.distributed.main:
            return
        write_atomic(self.paths.checkpoint, lambda handle: torch.save(self.state(), handle), binary=True)
        # metrics.jsonl is rebuilt from the checkpoint's history, so the two never disagree.
        write_json_lines(self.paths.metrics, self.history)

    def load_checkpoint(self) -> bool:
        if not self.paths.checkpoint.exists():
            return False
        state = torch.load(self.paths.checkpoint, map_location=self.device, weights_only=False)
        if state.get("key") != self.task.key:
            log.warning("%s: checkpoint belongs to another configuration; starting over", self.paths.folder)
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch, self.updates, self.best_top1 = state["epoch"], state["updates"], state["best_top1"]
        self.history, self.wall_time = state["history"], state["wall_time_s"]
        self.train_rate = [record["images_per_s"] for record in self.history]
        self.infer_rate = [record["infer_images_per_s"] for record in self.history]
        return True

    # -- one epoch --------------------------------------------------------------------------

    def train_epoch(self) -> dict[str, float] | None:
        """Train one epoch; None when the loss became NaN or infinite."""
        seed = epoch_seed(self.task.seed, self.epoch)
        random_seed(seed, self.distributed.rank)
        self.generator.manual_seed(seed)
        self.sampler.set_epoch(self.epoch)
        self.train_set.seed = seed  # per-image augmentation seeds (workers get a fresh copy each epoch)
        self.network.train()
        loss_sum, total_loss = torch.zeros((), device=self.device), 0.0
        images_seen, data_wait, last_progress = 0, 0.0, 0.0
        started = time.perf_counter()
        iterator = iter(self.loader)
        for index in range(self.batches):
            waited = time.perf_counter()
            images, labels = next(iterator)
            data_wait += time.perf_counter() - waited
            images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
            labels = labels.to(self.device, non_blocking=True)
            targets = labels
            if self.mixup is not None:
                images, targets = self.mixup(images, labels)
            with self.autocast:
                loss = self.criterion(self.network(images), targets)
            (loss / self.task.accumulation).backward()
            loss_sum += loss.detach()
            images_seen += images.shape[0]
            if (index + 1) % self.task.accumulation == 0:
                if self.recipe.gradient_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.gradient_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.updates += 1
                self.scheduler.step_update(num_updates=self.updates)
                if self.ema is not None:
                    self.ema.update(self.model, step=self.updates)
            if (index + 1) % CHECK_EVERY == 0 or index + 1 == self.batches:
                # Summed over ranks so that every rank sees the same value and stops together; the
                # last batch always passes here, so the epoch's mean loss below reuses this sum.
                total_loss = self.summed(loss_sum).item()
                if not math.isfinite(total_loss):
                    return None
                if time.perf_counter() - last_progress > 1.0 and self.distributed.main:
                    last_progress = time.perf_counter()
                    write_json(self.paths.folder / "progress.json",
                               {"epoch": self.epoch, "batch": index + 1, "batches": self.batches})
        self.scheduler.step(self.epoch + 1)
        elapsed = time.perf_counter() - started
        mean_loss = total_loss / (self.batches * self.distributed.world_size)
        return {"train_loss": mean_loss, "epoch_time_s": elapsed, "data_wait_s": data_wait,
                "images_per_s": images_seen * self.distributed.world_size / elapsed,
                "lr": self.optimizer.param_groups[0]["lr"]}

    def summed(self, value: torch.Tensor) -> torch.Tensor:
        """`value` summed over all ranks (itself in a single process)."""
        if self.distributed.world_size == 1:
            return value
        total = value.detach().clone()
        dist.all_reduce(total)
        return total

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        loader = DataLoader(self.val_set, batch_size=self.task.per_device_batch * 2, num_workers=self.task.workers)
        topk = (1, min(5, self.num_classes))
        totals = torch.zeros(4, dtype=torch.float64, device=self.device)  # loss, top1, top5, count
        started = time.perf_counter()
        for images, labels in loader:
            images = images.to(self.device, memory_format=self.memory_format)
            labels = labels.to(self.device)
            with self.autocast:
                logits = model(images).float()
            top1, top5 = accuracy(logits, labels, topk=topk)
            count = labels.shape[0]
            totals += torch.tensor([nn.functional.cross_entropy(logits, labels, reduction="sum").item(),
                                    top1.item() * count / 100, top5.item() * count / 100, count],
                                   dtype=torch.float64, device=self.device)
        elapsed = time.perf_counter() - started
        loss, top1, top5, count = self.summed(totals).tolist()
        return {"val_loss": loss / count, "top1": 100 * top1 / count, "top5": 100 * top5 / count,
                "infer_images_per_s": count / elapsed}

    # -- the whole step ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        task = self.task
        if self.load_checkpoint():
            log.info("%s seed %d: resuming after epoch %d", task.step, task.seed, self.epoch)
        status = "done"
        while self.epoch < self.recipe.epochs:
            started = time.perf_counter()
            trained = self.train_epoch()
            if trained is None:
                status = "diverged"
                log.warning("%s seed %d: loss is not finite in epoch %d; stopping this step", task.step, task.seed, self.epoch + 1)
                break
            evaluated = self.evaluate()
            self.epoch += 1
            self.wall_time += time.perf_counter() - started
            record = {"epoch": self.epoch, **trained, **evaluated}
            self.history.append(record)
            self.best_top1 = max(self.best_top1, evaluated["top1"])
            self.save_checkpoint()
            log.info("%s seed %d epoch %d/%d: loss %.3f top-1 %.2f%% (data wait %.0f%%)", task.step, task.seed,
                     self.epoch, self.recipe.epochs, trained["train_loss"], evaluated["top1"],
                     100 * trained["data_wait_s"] / trained["epoch_time_s"])
        return self.result(status)

    def result(self, status: str) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        proxy = complexity(self.spec, self.task.resolution)
        result = {
            "status": status, "step": self.task.step, "seed": self.task.seed, "key": self.task.key,
            "top1": last.get("top1"), "top5": last.get("top5"),
            "best_top1": self.best_top1 if self.history else None, "epochs": self.epoch,
            "gflops": self.task.gflops, "params": self.task.params,
            "proxy_gflops": proxy.gflops, "proxy_params": proxy.params, "resolution": self.task.resolution,
            "train_images_per_s": float(np.median([r["images_per_s"] for r in self.history])) if self.history else None,
            "infer_images_per_s": float(np.median([r["infer_images_per_s"] for r in self.history])) if self.history else None,
            "data_wait_fraction": (sum(r["data_wait_s"] for r in self.history) / sum(r["epoch_time_s"] for r in self.history)
                                   if self.history else None),
            "wall_time_s": self.wall_time, "device": describe_device(self.device),
            "world_size": self.distributed.world_size, "dataset": self.task.dataset, "preset": self.task.preset,
        }
        if self.task.cost_spec is not None and self.distributed.main:
            from roadmap.cost import measure

            batch = 128 if self.device.type == "cuda" else 32
            cost = measure(Spec.from_dict(self.task.cost_spec), batch=batch, resolution=224, device=self.device)
            result.update({f"cost_{key}": value for key, value in cost.to_dict().items()})
        if self.distributed.main:
            write_json(self.paths.result, result)
            (self.paths.folder / "progress.json").unlink(missing_ok=True)
        return result


def run_step(task: StepTask) -> dict[str, Any]:
    """Train one step x seed unless its result exists already; returns the result record."""
    paths = task.paths
    if paths.completed_key() == task.key:
        return read_json(paths.result)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(paths.spec, asdict(task))
    return Trainer(task).run()
