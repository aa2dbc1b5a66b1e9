"""Train and evaluate one step x seed: the loop a submitit job runs.

Every piece of the recipe comes from timm (transforms, fast collate and prefetching loader,
Mixup/CutMix, losses, optimizer, scheduler, EMA); this module only wires them. Each epoch is seeded
from (seed, epoch) and checkpointed atomically, so a run killed at any moment and restarted reaches
bit-identical final metrics on the CPU (and on a GPU with --deterministic; otherwise a GPU resume
is statistically, not bitwise, equivalent: cuDNN's autotuned kernels do not fix their order of
summation).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import torch
from timm.utils import ModelEmaV3, random_seed
from torch import nn

from roadmap.cost.measure import synchronise
from roadmap.cost.numerics import Numerics, compiled_graphs, describe_device, padded_to
from roadmap.cost.processes import cpu_threads, init_distributed
from roadmap.files.atomic import write_json
from roadmap.network.build import build
from roadmap.train.checkpoints import Checkpointing
from roadmap.train.experiment_log import ExperimentLog
from roadmap.train.init_weights import load_init
from roadmap.train.loss import recipe_loss
from roadmap.train.optimisation import build_optimisation, scheduled_lr
from roadmap.train.progress import StepProgress, epoch_line
from roadmap.train.result import step_result
from roadmap.train.step_data import step_data
from roadmap.train.task import StepTask

log = logging.getLogger("roadmap.train")

# How often (optimizer steps) the loss is checked for NaN/inf and progress is written.
CHECK_EVERY = 10


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class Trainer(Checkpointing):
    """State of one training job: model, optimizer, scheduler, EMA, data, and its files."""

    # Weight decay on GRN's gamma and beta (the official FCMAE pre-training only).
    decay_grn = False
    # The figures of evaluate() that TensorBoard's hparams view lists beside the settings.
    evaluated_figures = ("top1", "top5", "val_loss")

    def __init__(self, task: StepTask, parent: dict[str, Any] | None = None) -> None:
        self.task = task
        self.paths = task.paths
        self.spec = task.spec
        self.recipe = self.spec.recipe
        # The result of the finished phase this row continues (its FCMAE pre-training), else None.
        self.parent = parent
        use_cuda = torch.cuda.is_available()
        self.distributed = init_distributed(use_cuda)
        self.device = torch.device("cuda", self.distributed.local_rank) if use_cuda else torch.device("cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        else:
            torch.set_num_threads(cpu_threads(task.workers))
        # Defaults per device: bf16 autocast, channels-last and compiled on a GPU; fp32, NCHW, eager
        # on the CPU. Recorded in result.json whatever they resolve to.
        self.numerics = Numerics(**task.numerics).for_device(self.device)
        self.numerics.apply(self.device)
        self.autocast = self.numerics.autocast(self.device)
        self.scaler = self.numerics.grad_scaler(self.device)
        self._build_data()
        random_seed(task.seed, 0)  # the same initial weights on every rank
        self._build_model()
        self._build_optimisation()
        self._build_ema()
        self.epoch = 0
        self.updates = 0
        self.best_top1 = -1.0
        self.history: list[dict] = []
        self.wall_time = 0.0
        # Graphs built so far (new ones after the first epoch are recompilations), and whether the
        # process's first train / eval step (or start of the evaluation workers) is still ahead: it
        # is start-up (it compiles, autotunes cuDNN's kernels, waits for the workers' first batch).
        self.graphs_seen = 0
        self.first_step_ahead = {"train": True, "eval": True, "val_workers": True}
        self.started_epoch: int | None = None  # the epoch whose loader pass start_epoch began
        # progress.json and, where stderr is no terminal (a batch log), a progress line a minute.
        self.progress = StepProgress(task, log.info if not sys.stderr.isatty() else None)
        self.experiment = ExperimentLog()  # TensorBoard (and W&B): opened by run() on rank 0

    def _build_model(self) -> None:
        self.model: nn.Module = build(self.spec).to(self.device, memory_format=self.numerics.memory_format)
        # A resumed job's checkpoint replaces the starting weights: it needs no file they come from.
        fresh = (self.spec.pretrain is None and self.task.init is None) or self.resume_state is None
        if fresh:
            self.load_starting_weights()
        if self.recipe.head_init_scale != 1.0:
            with torch.no_grad():  # the classifier starts near zero on the pre-trained features
                for parameter in self.model.head.fc.parameters():
                    parameter.mul_(self.recipe.head_init_scale)
        if self.task.init is not None and fresh:  # --init's weights replace all of the above
            load_init(self.model, self.task.init)
        # timm's order: compile, then wrap for data parallel. `self.model` stays the plain module:
        # the optimizer, EMA and checkpoints use its parameter names, so a checkpoint written by a
        # compiled run resumes an eager one and the other way round.
        self.train_model: nn.Module = self._compiled(self.model)
        # Evaluation runs the module without the DDP wrapper: each rank scores its own shard, whose
        # batch count may differ from another rank's, and the figures are summed once at the end.
        self.eval_models: dict[str, nn.Module] = {"raw": self.train_model}
        self._wrap_for_data_parallel()

    def _build_ema(self) -> None:
        """The EMA of the weights where the recipe has one, with the decay fitted to the run.

        Every epoch evaluates the raw model and its EMA, as the official fine-tuning does; the
        figure a table reports is the EMA's (what the papers report for recipes with EMA), the
        other is recorded beside it."""
        self.ema = ModelEmaV3(self.model, decay=self.ema_decay) if self.ema_decay is not None else None
        if self.ema is not None:
            self.eval_models["ema"] = self._compiled(self.ema.module)

    @property
    def reported_weights(self) -> str:
        """The weights whose figures a table reports: the EMA's where there is one, else the raw model's."""
        return "raw" if self.ema is None else "ema"

    def _compiled(self, module: nn.Module) -> nn.Module:
        return torch.compile(module) if self.numerics.compile else module

    def _wrap_for_data_parallel(self) -> None:
        if self.distributed.world_size > 1:
            self.train_model = nn.parallel.DistributedDataParallel(
                self.train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )

    def load_starting_weights(self) -> None:
        """Weights the network starts from before the recipe's head scaling and --init: none here (its
        initialisation); a phase that continues another overrides it (roadmap.fcmae.trainer.FineTuner)."""
        if self.parent is not None:  # the phase before would be ignored: the row would train from scratch
            raise TypeError("a row that continues a pre-training phase is trained by roadmap.fcmae.trainer.FineTuner")

    def _build_data(self) -> None:
        task = self.task
        data = step_data(task, self.device, self.distributed.rank, self.distributed.world_size)
        self.num_classes, self.pixels = data.num_classes, data.pixels
        self.train_set, self.sampler, self.generator = data.train_set, data.sampler, data.generator
        self.loader, self.val_loader = data.loader, data.val_loader
        self.train_pass, self.val_pass = data.train_pass, data.val_pass
        self.batches = len(self.loader)
        self.pad_eval_to = self.val_pass.batch_size if self.numerics.compile else None
        # Evaluation's pass starts once training's has handed its last batch to a worker: from then
        # on training workers run out of work one by one while the device still trains on the batches
        # queued, so the evaluation workers' first batches fill on the freed cores. Where the CPU
        # binds, the same work is done in the same time; where the device binds, the fill is hidden.
        self.val_starts_after = max(1, self.batches - self.train_pass.batches_ahead())
        if self.batches < task.accumulation:
            raise ValueError(
                f"{task.step}: {len(self.train_set)} training images give fewer batches than accumulation steps"
            )
        self.updates_per_epoch = max(1, self.batches // task.accumulation)

    def _build_optimisation(self) -> None:
        recipe, task = self.recipe, self.task
        # The official parameter groups, per-iteration schedule and EMA decay (roadmap.train.optimisation).
        self.optimizer, self.scheduler, self.ema_decay = build_optimisation(
            self.model, recipe, task.lr, self.spec.network.depths, self.updates_per_epoch, self.decay_grn
        )
        self.mixup, self.criterion = recipe_loss(recipe, task.step, task.per_device_batch, self.num_classes)

    # -- one epoch --------------------------------------------------------------------------

    def _timed_first_step(self, kind: str, started: float) -> float:
        """Seconds the first (start-up) step of `kind` took, once per process; 0 otherwise."""
        if not self.first_step_ahead[kind]:
            return 0.0
        self.first_step_ahead[kind] = False
        synchronise(self.device)
        return time.perf_counter() - started

    def optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        if self.recipe.gradient_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.gradient_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.updates += 1
        self.scheduler.step_update(num_updates=self.updates)
        if self.ema is not None:
            self.ema.update(self.model, step=self.updates)

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch (Mixup/CutMix, then the recipe's criterion)."""
        targets = labels
        if self.mixup is not None:
            images, targets = self.mixup(images, labels)
        with self.autocast:
            return self.criterion(self.train_model(images), targets)

    def seed_epoch(self, seed: int) -> None:
        """Seed every random stream of the epoch from (seed, epoch): a resumed epoch is the same."""
        random_seed(seed, self.distributed.rank)
        self.generator.manual_seed(seed)

    def start_epoch(self, epoch: int) -> None:
        """Seed `epoch`'s streams and start its loader pass (workers begin decoding at once).

        The run starts the next epoch before evaluating the current one, so that the pass fills
        while the device evaluates. Evaluation draws from no random stream, so the streams that
        training then finds are the ones a resumed process gets by starting the epoch afresh."""
        seed = epoch_seed(self.task.seed, epoch)
        self.seed_epoch(seed)
        # Per-image augmentation seeds and the epoch's training resolution travel with the keys.
        self.sampler.set_epoch(epoch, seed, self.task.train_resolution(epoch))
        self.train_pass.start()
        self.started_epoch = epoch

    def train_epoch(self) -> dict[str, float] | None:
        """Train one epoch; None when the loss became NaN or infinite."""
        if self.started_epoch != self.epoch:
            self.start_epoch(self.epoch)
        self.started_epoch = None
        self.train_model.train()
        loss_sum, total_loss = torch.zeros((), device=self.device), 0.0
        data_wait, startup_time, startup_images = 0.0, 0.0, 0
        started = time.perf_counter()
        iterator = iter(self.loader)
        for index in range(self.batches):
            waited = time.perf_counter()
            images, labels = next(iterator)  # on the device, normalised and erased (roadmap.data.loaders)
            batch_wait = time.perf_counter() - waited
            data_wait += batch_wait
            if index + 1 == self.val_starts_after:  # the process's first start forks its workers: start-up
                starting = time.perf_counter()
                self.val_pass.start()
                startup_time += self._timed_first_step("val_workers", starting)
            loss = self.batch_loss(images.contiguous(memory_format=self.numerics.memory_format), labels)
            scaled = loss / self.task.accumulation
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            loss_sum += loss.detach()
            if (index + 1) % self.task.accumulation == 0:
                self.optimizer_step()
            startup = self._timed_first_step("train", waited)
            if startup:  # the start-up step's wait for data is start-up too, not a data-bound loop
                startup_time, data_wait, startup_images = startup_time + startup, data_wait - batch_wait, len(labels)
            if (index + 1) % CHECK_EVERY == 0 or index + 1 == self.batches:
                # Summed over ranks so that every rank sees the same value and stops together; the
                # last batch always passes here, so the epoch's mean loss below reuses this sum.
                total_loss = self.distributed.summed(loss_sum).item()
                if not math.isfinite(total_loss):
                    return None
                if self.distributed.main:
                    seconds = time.perf_counter() - started - startup_time
                    self._report_progress(index + 1, total_loss, data_wait, seconds, startup_images)
        self.scheduler.step(self.epoch + 1)
        elapsed = time.perf_counter() - started - startup_time
        images_seen = self.batches * self.task.per_device_batch * self.distributed.world_size
        # The start-up step is left out of the rate: it is not training speed, and an ImageNet
        # epoch of 10,000 batches would dilute it anyway while a proxy's few dozen would not.
        timed_images = images_seen - startup_images * self.distributed.world_size
        return {
            "train_loss": total_loss / (self.batches * self.distributed.world_size),
            "epoch_time_s": elapsed,
            "data_wait_s": data_wait,
            "images_per_s": timed_images / max(elapsed, 1e-9),
            "startup_time_s": startup_time,
            "lr": scheduled_lr(self.optimizer),  # the schedule's, not the stem's under layer decay
        }

    def _report_progress(self, batch: int, loss_sum: float, data_wait: float, seconds: float, startup: int) -> None:
        """At a loss check of rank 0: the iteration scalars, progress.json and the progress line."""
        ranks, lr = self.distributed.world_size, scheduled_lr(self.optimizer)
        self.experiment.iteration(self.epoch * self.batches, batch, loss_sum, lr, ranks)
        images = (batch * self.task.per_device_batch - startup) * ranks
        per_s = 1 / max(seconds, 1e-9)
        rates = {"images_per_s": images * per_s, "data_wait_share": data_wait * per_s, "seconds": seconds}
        self.progress.update(self.epoch, self.recipe.epochs, batch, self.batches, rates, self.wall_time)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss, top-1 and top-5 on the validation set of every evaluated weights (raw, EMA), in one
        pass over its batches; one host sync at the end, not one per batch.

        The reported weights' figures are `val_loss`, `top1` and `top5`; with an EMA each weights'
        figures are also recorded under their name (`top1_raw`, `top1_ema`, ...)."""
        for module in self.eval_models.values():
            module.eval()
        # Per weights: loss, top-1 hits, top-k hits.
        totals = torch.zeros(len(self.eval_models), 3, dtype=torch.float64, device=self.device)
        count, startup_time, startup_images = 0, 0.0, 0
        started = batch_started = time.perf_counter()
        for images, labels in self.val_loader:
            if self.pad_eval_to is not None:
                images = padded_to(images, self.pad_eval_to)
            images = images.contiguous(memory_format=self.numerics.memory_format)
            for index, module in enumerate(self.eval_models.values()):
                with self.autocast:
                    logits = module(images)[: labels.shape[0]].float()
                totals[index] += self._scores(logits, labels)
            count += labels.shape[0]
            startup = self._timed_first_step("eval", batch_started)
            if startup:  # neither its time (workers' first batch included) nor its images count
                startup_time, startup_images = startup, labels.shape[0] * self.distributed.world_size
            batch_started = time.perf_counter()
        # One reduction and one host sync for the figures of all ranks.
        *figures, count = self.distributed.summed(torch.cat([totals.flatten(), totals.new_tensor([count])])).tolist()
        elapsed = time.perf_counter() - started - startup_time
        evaluated: dict[str, float] = {}
        for index, weights in enumerate(self.eval_models):
            loss, top1, top5 = figures[3 * index : 3 * index + 3]
            scores = {"val_loss": loss / count, "top1": 100 * top1 / count, "top5": 100 * top5 / count}
            if weights == self.reported_weights:
                evaluated.update(scores)
            if len(self.eval_models) > 1:
                evaluated.update({f"{name}_{weights}": value for name, value in scores.items()})
        # Images through the whole pass: with an EMA the pass runs two networks on each batch.
        evaluated["infer_images_per_s"] = (count - startup_images) / max(elapsed, 1e-9)
        evaluated["eval_startup_time_s"] = startup_time
        return evaluated

    def _scores(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy, top-1 hits and top-5 hits (top-k for fewer classes) of one batch."""
        hits = logits.topk(min(5, self.num_classes), dim=1).indices.eq(labels[:, None])
        return torch.stack(
            [
                nn.functional.cross_entropy(logits, labels, reduction="sum").double(),
                hits[:, 0].sum().double(),
                hits.sum().double(),
            ]
        )

    # -- the whole step ---------------------------------------------------------------------

    def _count_recompiles(self, first_epoch_of_process: bool) -> int:
        """Graphs compiled during this epoch, counted from the end of the process's first epoch."""
        if not self.numerics.compile:
            return 0
        before, self.graphs_seen = self.graphs_seen, compiled_graphs()
        return 0 if first_epoch_of_process else self.graphs_seen - before

    def run(self) -> dict[str, Any]:
        task = self.task
        if self.load_checkpoint():
            log.info("%s seed %d: resuming after epoch %d", task.step, task.seed, self.epoch)
        log.info(
            "%s seed %d: %s on %s; pixels: %s",
            task.step,
            task.seed,
            self.numerics.describe(),
            describe_device(self.device),
            self.pixels,
        )
        start = self.epoch * self.batches  # after the checkpoint: a resumed job's scalars go on from its end
        with self.experiment.opened(task, start, self.evaluated_figures, self.distributed.main):
            status = self._train_epochs()
        return self.result(status)

    def _train_epochs(self) -> str:
        """Train, evaluate and checkpoint the epochs left; `done`, or `diverged` on a non-finite loss."""
        task, status, first_epoch_of_process = self.task, "done", True
        while self.epoch < self.recipe.epochs:
            started = time.perf_counter()
            trained = self.train_epoch()
            if trained is None:
                status = "diverged"
                what = "%s seed %d: loss is not finite in epoch %d; stopping this step"
                log.warning(what, task.step, task.seed, self.epoch + 1)
                break
            if self.epoch + 1 < self.recipe.epochs:
                self.start_epoch(self.epoch + 1)  # its first batches decode during evaluation
            evaluated = self.evaluate()
            self.epoch += 1
            self.wall_time += time.perf_counter() - started
            recompiles = self._count_recompiles(first_epoch_of_process)
            first_epoch_of_process = False
            record = {"epoch": self.epoch, **trained, **evaluated, "recompiles": recompiles}
            self.history.append(record)
            if evaluated.get("top1") is not None:
                self.best_top1 = max(self.best_top1, evaluated["top1"])
            self.save_checkpoint()
            self.experiment.epoch(self.epoch * self.batches, record)  # after its checkpoint, as metrics.jsonl
            log.info(epoch_line(task.step, task.seed, task.phase, self.recipe.epochs, record))
        return status

    def result(self, status: str) -> dict[str, Any]:
        """The step's result record (roadmap.train.result), written as result.json by rank 0."""
        result = step_result(self, status).to_json()
        if self.distributed.main:
            write_json(self.paths.result, result)
            self.paths.progress.unlink(missing_ok=True)
        return result
