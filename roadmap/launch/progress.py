"""The launcher's progress lines where no bar shows (stderr, where tqdm draws, is not a terminal: a
SLURM batch log, `> log 2>&1`), read from the run folder: the running phase's progress.json gives the
line (roadmap.train.progress), the steps' result.json files and planned epochs give the run's ETA.

The local launcher runs one step at a time (`ProgressLines`); the SLURM launcher's job array runs
several at once on other hosts, whose shared run folder is all it sees of them (`ArrayProgress`).
Both print the same line, once every progress_interval(), for each running step that moved.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from roadmap.fcmae.trainer import pretrain_task
from roadmap.train.progress import progress_interval, progress_line, run_eta
from roadmap.train.task import StepTask


class FinishedCount(Protocol):
    """The launcher's own count of the run's step x seeds (roadmap.launch.run._RunProgress)."""

    total: int  # the step x seeds it runs
    index: int  # those that finished or failed so far


def own_progress(task: StepTask) -> dict[str, Any] | None:
    """The progress record in `task`'s folder when a job of `task` wrote it (same key), else None: a
    file another configuration's job left behind (it crashed before removing it) says nothing of this one."""
    progress = task.paths.read_progress()
    return progress if progress is not None and progress.get("key") == task.key else None


def running_progress(task: StepTask) -> dict[str, Any] | None:
    """The progress record of the phase that runs now: the step's own, else (FCMAE rows) its
    pre-training's, which keeps its files in pretrain/ until fine-tuning starts; None when neither.
    Each must carry its phase's key, so a stale fine-tuning file cannot hide a running pre-training."""
    progress = own_progress(task)
    if progress is None and task.spec.pretrain is not None:
        progress = own_progress(pretrain_task(task))
    return progress


def moved_key(progress: dict[str, Any]) -> tuple[Any, int, int]:
    """What must change for a new line: the phase too, as fine-tuning's epoch 0 follows pre-training's."""
    return progress.get("phase"), progress["epoch"], progress["batch"]


def remaining_s(progress: dict[str, Any], epochs: int) -> float | None:
    """A running step's time left: its phase's ETA, plus, during pre-training, the `epochs` of
    fine-tuning still ahead at the phase's cost per epoch (rough: the two phases differ)."""
    eta, per_epoch = progress.get("eta_s"), progress.get("seconds_per_epoch")
    if eta is None or per_epoch is None:
        return None
    return eta + (epochs * per_epoch if progress.get("phase") else 0.0)


def planned_epochs(task: StepTask, epochs: dict[str, int]) -> int:
    """All the epochs a step trains: its recipe's and, for FCMAE rows, its pre-training's."""
    return epochs[task.step] + (0 if task.spec.pretrain is None else task.spec.pretrain.epochs)


class ProgressLines:
    """The local launcher's running step: its progress line about once every progress_interval(),
    with the run's ETA; nothing when the step has not moved. `run` is the launcher's count of the
    step x seeds, not its bar: these lines show only when the bars are disabled, and a disabled tqdm
    bar ignores update(), so its count stays 0 for the whole run."""

    def __init__(self, task: StepTask, epochs: int, run: FinishedCount) -> None:
        self.task, self.epochs, self.run = task, epochs, run
        self.interval, self.last = progress_interval(), time.monotonic()
        self.said: tuple[Any, int, int] | None = None

    def poll(self) -> None:
        if time.monotonic() - self.last < self.interval:
            return
        progress = running_progress(self.task)
        if progress is None or moved_key(progress) == self.said:
            return
        self.last, self.said = time.monotonic(), moved_key(progress)
        # A step still pre-training has its own fine-tuning ahead as well as the steps after it.
        steps_after = self.run.total - self.run.index - 1 + (1 if progress.get("phase") else 0)
        line = progress_line(self.task.step, self.task.seed, progress, run_eta(progress, steps_after, self.epochs))
        print(line, flush=True)  # flushed: a file's block buffer would hold it back for many minutes


def array_eta(running: list[tuple[dict[str, Any], int]], waiting_epochs: int) -> float | None:
    """The run's time left while a job array runs: `running` pairs each running step's progress
    with its fine-tuning epochs; `waiting_epochs` are the epochs of the steps not started yet.

    As many steps are taken to run at once as run now, each waiting epoch to cost the running
    steps' mean time per epoch: the run ends no sooner than its longest running step, and no sooner
    than all the work left spread over those slots. A rough figure (hence the `~` of the line)."""
    left = [remaining_s(progress, epochs) for progress, epochs in running]
    if not left or None in left:
        return None
    per_epoch = sum(progress["seconds_per_epoch"] for progress, _ in running) / len(running)
    return max(max(left), (sum(left) + waiting_epochs * per_epoch) / len(running))


def array_lines(
    tasks: list[StepTask], epochs: dict[str, int], finished: set[int], said: dict[int, tuple] | None = None
) -> list[str]:
    """The progress line of each running step of a job array, with the run's ETA; `finished` holds
    the indices of the tasks whose jobs ended; with `said`, only steps that moved since the line
    it records (it is updated)."""
    running: dict[int, dict[str, Any]] = {}
    waiting_epochs = 0
    for index, task in enumerate(tasks):
        if index in finished or task.paths.finished_result(task.key) is not None:
            continue  # ended, or its result is on disk before its job is seen to end
        progress = running_progress(task)
        if progress is not None:
            running[index] = progress
        else:  # pending in the queue, or starting up
            waiting_epochs += planned_epochs(tasks[index], epochs)
    eta = array_eta([(progress, epochs[tasks[index].step]) for index, progress in running.items()], waiting_epochs)
    lines = []
    for index, progress in running.items():
        if said is not None:
            if said.get(index) == moved_key(progress):
                continue
            said[index] = moved_key(progress)
        lines.append(progress_line(tasks[index].step, tasks[index].seed, progress, eta))
    return lines


class ArrayProgress:
    """The SLURM launcher's lines while its array runs: about once every progress_interval(), the
    line of each running step that moved (`array_lines`)."""

    def __init__(self, tasks: list[StepTask], epochs: dict[str, int]) -> None:
        self.tasks, self.epochs = tasks, epochs
        self.interval, self.last = progress_interval(), time.monotonic()
        self.said: dict[int, tuple] = {}

    def poll(self, finished: set[int]) -> None:
        if time.monotonic() - self.last < self.interval:
            return
        self.last = time.monotonic()
        for line in array_lines(self.tasks, self.epochs, finished, self.said):
            print(line, flush=True)  # flushed, as the local launcher's
