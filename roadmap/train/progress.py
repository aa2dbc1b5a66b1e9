"""A running step's progress where no progress bar shows: progress.json and one line a minute.

In a terminal the launcher draws tqdm bars from progress.json (roadmap.launch.run). tqdm draws on stderr
and draws nothing when stderr is not a terminal (a SLURM batch log, `> log 2>&1`), so without these
lines an epoch of hours would print nothing between its start and its end. The trainer writes
progress.json about once a second and, when its stderr is not a terminal, logs a line about once a
minute; the launcher prints the same line (with the run's ETA) to stdout in place of its bars when
its stderr is not a terminal. Both look at stderr alone: `> log` with stderr left on a terminal
keeps the launcher's bars there and puts no lines in the log.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from roadmap.errors import UserError
from roadmap.files.atomic import write_json

# A line a minute: often enough to see that a job is alive and how fast it goes, rare enough that
# a day-long step writes about a thousand lines. ROADMAP_PROGRESS_SECONDS overrides it (tests use 0).
PROGRESS_SECONDS = 60.0
PROGRESS_SECONDS_VARIABLE = "ROADMAP_PROGRESS_SECONDS"
# progress.json is rewritten at most this often: the launcher polls it, a write per batch would not pay.
PROGRESS_FILE_SECONDS = 1.0


class ProgressError(UserError, ValueError):
    """ROADMAP_PROGRESS_SECONDS that is not a number of seconds."""


def progress_interval() -> float:
    """Seconds between two progress lines: ROADMAP_PROGRESS_SECONDS, else PROGRESS_SECONDS."""
    text = os.environ.get(PROGRESS_SECONDS_VARIABLE)
    if text is None or not text.strip():
        return PROGRESS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ProgressError(f"{PROGRESS_SECONDS_VARIABLE}={text!r} is not a number of seconds (e.g. 60)")
    return seconds


def duration(seconds: float | None) -> str:
    """A duration as `1h02m`, `3m05s` or `42s`; `?` when unknown."""
    if seconds is None or not seconds >= 0 or seconds == float("inf"):
        return "?"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def progress_line(step: str, seed: int, progress: dict[str, Any], run_eta_s: float | None = None) -> str:
    """One line about a running step from its progress record (what progress.json holds)."""
    phase = f" {progress['phase']}" if progress.get("phase") else ""
    run_eta = f", run ETA ~{duration(run_eta_s)}" if run_eta_s is not None else ""
    return (
        f"{step} seed {seed}{phase}: epoch {progress['epoch'] + 1}/{progress.get('epochs', '?')}, "
        f"iteration {progress['batch']}/{progress['batches']}, {progress.get('images_per_s', 0.0):.1f} images/s, "
        f"data wait {100 * progress.get('data_wait_share', 0.0):.0f}%, step ETA {duration(progress.get('eta_s'))}"
        f"{run_eta}"
    )


def run_eta(progress: dict[str, Any], steps_after: int, epochs_per_step: int) -> float | None:
    """The run's remaining time, guessed as this step's ETA plus `steps_after` steps that cost as
    much per epoch as this one (steps differ, so it is a rough figure; hence the `~`)."""
    eta, per_epoch = progress.get("eta_s"), progress.get("seconds_per_epoch")
    if eta is None or per_epoch is None:
        return None
    return eta + steps_after * epochs_per_step * per_epoch


def epoch_line(step: str, seed: int, phase: str | None, epochs: int, record: dict[str, Any]) -> str:
    """The log line of a finished epoch, from its metrics.jsonl record."""
    score = f"top-1 {record['top1']:.2f}%" if record.get("top1") is not None else f"val loss {record['val_loss']:.4f}"
    recompiles = record.get("recompiles", 0)
    wait = 100 * record["data_wait_s"] / record["epoch_time_s"]
    return (
        f"{step} seed {seed}{f' {phase}' if phase else ''} epoch {record['epoch']}/{epochs}: "
        f"loss {record['train_loss']:.3f} {score} (data wait {wait:.0f}%"
        f"{f', {recompiles} recompilation(s)' if recompiles else ''})"
    )


class StepProgress:
    """The running step's progress.json (about once a second) and its progress line (about once a
    minute, only where `show_lines`); rank 0 calls it, at the trainer's loss checks."""

    def __init__(self, task: Any, say: Callable[[str], None] | None) -> None:
        """`task`: the StepTask; `say`: where progress lines go (None: none are made)."""
        self.paths, self.step, self.seed, self.phase, self.say = task.paths, task.step, task.seed, task.phase, say
        # Written into the file: a reader ignores a file of another key (another configuration's job
        # that crashed before removing it; roadmap.launch.progress.own_progress).
        self.key = task.key
        self.interval = progress_interval()
        self.last_file = self.last_line = time.monotonic()
        self.epoch_written: int | None = None

    def record(self, epoch: int, epochs: int, batch: int, batches: int, rates: dict[str, float], wall_s: float) -> dict:
        """The progress record; `rates` holds the running epoch's images_per_s, data_wait_share and
        seconds (training time so far); `wall_s` is the step's time in the epochs it finished."""
        fraction = batch / max(1, batches)
        if epoch > 0:  # whole epochs, evaluation included
            per_epoch = wall_s / epoch
        else:
            per_epoch = rates["seconds"] / fraction if fraction > 0 else None
        eta = per_epoch * (epochs - epoch - fraction) if per_epoch is not None else None
        return {
            "key": self.key,
            "epoch": epoch,
            "batch": batch,
            "batches": batches,
            "epochs": epochs,
            "phase": self.phase,
            "images_per_s": rates["images_per_s"],
            "data_wait_share": rates["data_wait_share"],
            "seconds_per_epoch": per_epoch,
            "eta_s": eta,
        }

    def update(self, epoch: int, epochs: int, batch: int, batches: int, rates: dict[str, float], wall_s: float) -> None:
        now = time.monotonic()
        # The first check of each epoch always writes the file: the launcher's bar moves at once.
        file_due = epoch != self.epoch_written or now - self.last_file >= PROGRESS_FILE_SECONDS
        line_due = self.say is not None and now - self.last_line >= self.interval
        if not (file_due or line_due):
            return
        progress = self.record(epoch, epochs, batch, batches, rates, wall_s)
        if file_due:
            self.last_file, self.epoch_written = now, epoch
            write_json(self.paths.progress, progress)
        if line_due:
            self.last_line = now
            self.say(progress_line(self.step, self.seed, progress))
