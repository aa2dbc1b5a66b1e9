"""The scalars of one step x seed's training, for TensorBoard (always) and W&B (with --wandb).

Each step x seed (and each phase of it: FCMAE pre-training) writes its TensorBoard events into its
own folder (StepPaths.tensorboard), so `tensorboard --logdir results/<run>` shows the whole roadmap
as one experiment with one run per step x seed. The epoch scalars are the metrics.jsonl records,
tag for key (`epoch/top1` is the record's `top1`); `iteration/train_loss` and `iteration/lr` follow
training between them. Every scalar's step is the number of batches trained, so iteration and epoch
curves share one axis. Only rank 0 writes; the other ranks get a log that does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from roadmap.train.task import StepTask

try:
    import wandb
except ImportError:  # the optional extra: --wandb is refused before any training without it (roadmap.runs.options)
    wandb = None

# Iteration scalars every this many batches: on the tiny proxy (8 batches an epoch) the epoch
# records already show everything; on ImageNet (10,000 batches an epoch) 200 points per epoch
# show the warm-up and the loss between evaluations, in an event file of a few MB per step. A
# multiple of roadmap.train.trainer.CHECK_EVERY: the points fall on the loss checks, which cost no extra sync.
ITERATION_LOG_EVERY = 50
# Event files reach the disk at most this long after a write (SummaryWriter's default is 120 s):
# someone watching a run sees the last epoch soon after its line in the log.
FLUSH_SECONDS = 30
# W&B's x axis: the batches trained, logged as a metric of its own. W&B drops a point logged with
# `step=` at or below the run's last step, so a resumed job's redone epochs would be lost; a step
# metric takes any value, so they are kept (charted beside the killed job's points at the same x).
WANDB_STEP = "batches"


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The scalars of one metrics.jsonl record: every number but the epoch itself, as `epoch/<key>`."""
    return {
        f"epoch/{key}": float(value)
        for key, value in record.items()
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def hparam_value(value: Any) -> bool | int | float | str:
    """A value TensorBoard's hparams plugin shows: numbers, flags and text stay, the rest is text."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def run_settings(task: StepTask) -> dict[str, Any]:
    """What sets the step x seed apart: its key, the spec's content hash, preset, data and recipe."""
    spec = task.spec
    return {
        "step": task.step,
        "seed": task.seed,
        "phase": task.phase or "",
        "key": task.key,
        "spec_hash": spec.content_hash(),
        "preset": task.preset,
        "dataset": task.data.dataset,
        "resolution": task.resolution,
        "per_device_batch": task.per_device_batch,
        "accumulation": task.accumulation,
        "lr": task.lr,
        **{f"recipe/{name}": value for name, value in asdict(spec.recipe).items()},
    }


def wandb_run_id(task: StepTask) -> str:
    """The same W&B run for every process of one step x seed and phase (a resumed job continues
    it); another results folder or configuration (key) is another run."""
    where = f"{Path(task.run_dir).resolve()}|{task.step}|{task.seed}|{task.phase}|{task.key}"
    return hashlib.sha256(where.encode()).hexdigest()[:32]


class ExperimentLog:
    """The TensorBoard writer (and W&B run) of one step x seed; does nothing until opened (rank 0)."""

    def __init__(self) -> None:
        self.writer: SummaryWriter | None = None
        self.wandb_run: Any = None
        # (first step of the epoch, batch, loss sum) at the last iteration point: the next point's
        # loss is the mean over the batches since, not over the whole epoch so far.
        self.window: tuple[int, int, float] = (-1, 0, 0.0)

    def open(self, task: StepTask, start_step: int, figures: tuple[str, ...]) -> None:
        """Start writing at `start_step` (batches trained); `figures` are evaluate()'s main figures."""
        # A resumed job restarts after its last checkpoint: the points an earlier process wrote later
        # (the interrupted epoch's iterations, an epoch whose checkpoint was lost) are trained again.
        # purge_step makes TensorBoard's readers drop every earlier point from that step on, so none
        # is doubled; the checkpointed epoch's own points lie at `start_step` and stay. At a fresh
        # start it is 0: a discarded attempt's points all go, as metrics.jsonl starts from scratch.
        purge_step = start_step + 1 if start_step else 0
        self.writer = SummaryWriter(str(task.paths.tensorboard), purge_step=purge_step, flush_secs=FLUSH_SECONDS)
        settings = run_settings(task)
        if start_step == 0:  # a resumed job keeps the hyperparameters its first process wrote
            self._write_hparams(settings, figures)
        if task.wandb_project:
            self._start_wandb(task, settings)

    def _write_hparams(self, settings: dict[str, Any], figures: tuple[str, ...]) -> None:
        """The settings as hparams in this run's own event file. add_hparams would write them into
        a second, timestamped run folder; the three summaries it writes go here instead, and the
        metrics they name are this run's epoch scalars (TensorBoard reads their values itself)."""
        assert self.writer is not None
        values = {name: hparam_value(value) for name, value in settings.items()}
        for summary in hparams(values, {f"epoch/{figure}": 0.0 for figure in figures}):
            self.writer.file_writer.add_summary(summary)
        self.writer.flush()

    def _start_wandb(self, task: StepTask, settings: dict[str, Any]) -> None:
        """One W&B run per step x seed (and phase), grouped by the run's name; WANDB_MODE (offline,
        disabled) and the other WANDB_* variables apply as everywhere."""
        if wandb is None:  # a task built past the run's option checks
            raise RuntimeError(f'--wandb {task.wandb_project} needs W&B: pip install ".[wandb]"')
        phase = f"-{task.phase}" if task.phase else ""
        self.wandb_run = wandb.init(
            project=task.wandb_project,
            group=Path(task.run_dir).name,
            name=f"{task.step}-s{task.seed}{phase}",
            id=wandb_run_id(task),
            resume="allow",
            dir=str(task.paths.folder),  # W&B keeps its files in wandb/ there (StepPaths.wandb)
            config={**settings, "spec": task.spec.to_dict()},
            # The job's output stays the job's own: W&B neither copies nor wraps stdout/stderr.
            settings=wandb.Settings(console="off"),
        )
        self.wandb_run.define_metric(WANDB_STEP)
        for scalars in ("epoch/*", "iteration/*"):
            self.wandb_run.define_metric(scalars, step_metric=WANDB_STEP)

    @contextlib.contextmanager
    def opened(self, task: StepTask, start_step: int, figures: tuple[str, ...], main: bool) -> Iterator[None]:
        """Open for the block on rank 0 (`main`), then close; a block that raises fails the W&B run."""
        if main:
            self.open(task, start_step, figures)
        try:
            yield
        except BaseException:
            self.close(failed=True)
            raise
        self.close()

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({**values, WANDB_STEP: step})  # no step=: see WANDB_STEP

    def iteration(self, epoch_start: int, batch: int, loss_sum: float, lr: float, ranks: int) -> None:
        """At a loss check: every ITERATION_LOG_EVERY batches of an epoch, the mean training loss
        since the last point and the learning rate. `loss_sum` is the epoch's so far, over ranks."""
        if batch % ITERATION_LOG_EVERY:
            return
        _, since_batch, since_sum = self.window if self.window[0] == epoch_start else (epoch_start, 0, 0.0)
        self.window = (epoch_start, batch, loss_sum)
        mean = (loss_sum - since_sum) / ((batch - since_batch) * ranks)
        self.scalars({"iteration/train_loss": mean, "iteration/lr": lr}, epoch_start + batch)

    def epoch(self, step: int, record: dict[str, Any]) -> None:
        """The scalars of a finished epoch's record, written to disk at once (the epoch is checkpointed)."""
        self.scalars(epoch_scalars(record), step)
        if self.writer is not None:
            self.writer.flush()

    def close(self, failed: bool = False) -> None:
        """Flush and close; a W&B run of a job that raised is marked failed (a diverged one is not)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.wandb_run is not None:
            self.wandb_run.finish(exit_code=1 if failed else 0)
            self.wandb_run = None
