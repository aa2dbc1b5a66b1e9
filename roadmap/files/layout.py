"""The layout of a run folder on disk, and the one tolerant reader of its files (docs/results-format.md).

Every name under RESULTS/<run>/ is spelled here and nowhere else: `RunPaths` for the run's own
files (run.json, report/, report/vs-<other>/, submitit/), `StepPaths` for one step x seed and its
phases. Training, the launcher and the report read the files through the readers below, so they
agree on what an absent, half-written or damaged file means.

This module imports nothing of the project: roadmap.files.atomic (atomic writes, claims) builds on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

PLAN_FILE = "run.json"
REPORT_FOLDER = "report"
SUBMITIT_FOLDER = "submitit"
AGREEMENT_FILE = "agreement.json"
# A step x seed's task file holds the whole StepTask a job was started with. Runs written before
# it was named for what it holds called it spec.json: every reader still accepts that name.
TASK_FILE = "task.json"
LEGACY_TASK_FILE = "spec.json"
PROGRESS_KEYS = ("epoch", "batch", "batches")
TENSORBOARD_FOLDER = "tensorboard"
# run.json and result.json say which layout they follow; files written before it was recorded read
# as 0. Bump when a reader of this version would misread the files: a later version is refused.
FORMAT_VERSION = 1
FORMAT_KEY = "format_version"


def format_problem(data: dict[str, Any]) -> str | None:
    """Why a run.json / result.json must not be trusted by this version (None when it can be)."""
    version = data.get(FORMAT_KEY, 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        return f"unknown {FORMAT_KEY} {version!r}"
    if version > FORMAT_VERSION:
        return f"{FORMAT_KEY} {version}, newer than the {FORMAT_VERSION} this roadmap reads"
    return None


def finished(result: dict[str, Any] | None) -> bool:
    """A result that ended training: diverged, or done with the figure every finished result has
    (top-1; a pre-training phase's validation loss); a done result without it was cut by hand or
    written by something else, and is trained again."""
    if result is None or format_problem(result) is not None:
        return False
    figure = result.get("val_loss" if result.get("phase") else "top1")
    has_figure = isinstance(figure, (int, float)) and not isinstance(figure, bool)
    return result.get("status") == "diverged" or (result.get("status") == "done" and has_figure)


def read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object held by `path`; None when the file is absent, unreadable (cut short, not
    UTF-8, not JSON) or holds another JSON type. Callers decide whether None is damage or absence."""
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # ValueError: JSONDecodeError and UnicodeDecodeError alike
        return None
    return data if isinstance(data, dict) else None


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (metrics.jsonl), up to the first line that is not a whole
    JSON object (a line still being written, or damage: what follows it is not trusted either);
    [] when the file is absent or unreadable."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:
            break
        if not isinstance(record, dict):
            break
        records.append(record)
    return records


def available_runs(results_dir: str | Path) -> list[str]:
    """Names of the runs (folders holding a run.json) directly under `results_dir`."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return sorted(path.parent.name for path in results_dir.glob(f"*/{PLAN_FILE}"))


class StepPaths:
    """Where one step x seed of a run keeps its files, and how they are read."""

    def __init__(self, run_dir: Path, step: str, seed: int, phase: str | None = None) -> None:
        self.run_dir, self.step, self.seed = Path(run_dir), step, seed
        # A phase before the step's own training (FCMAE pre-training) keeps the same files in a
        # subfolder named after it; the step's own files stay where they always were.
        self.folder = Path(run_dir) / step / str(seed) / (phase or "")
        self.task = self.folder / TASK_FILE
        self.legacy_task = self.folder / LEGACY_TASK_FILE
        self.metrics = self.folder / "metrics.jsonl"
        self.result = self.folder / "result.json"
        # The running epoch's batch count, rewritten about once a second; gone once result.json is.
        self.progress = self.folder / "progress.json"
        self.checkpoint = self.folder / "checkpoint.pt"
        self.log = self.folder / "train.log"
        # TensorBoard's event files of this step x seed (phase): one TensorBoard run each, so
        # `tensorboard --logdir RESULTS/<run>` shows the whole run (roadmap.train.experiment_log).
        self.tensorboard = self.folder / TENSORBOARD_FOLDER
        # With --wandb, W&B keeps its files here (it names the folder itself: `wandb` under its `dir`).
        self.wandb = self.folder / "wandb"
        # The checkpoint before the newest one, kept until the newest is complete on disk.
        self.previous_checkpoint = self.folder / "checkpoint.previous.pt"
        # Held (flock) by the process training this step x seed; names its host and pid.
        self.lock = self.folder / "claim.lock"
        # The pre-trained encoder a pre-training phase hands to fine-tuning (written before result.json).
        self.encoder = self.folder / "encoder.pt"

    def phase(self, name: str) -> "StepPaths":
        return StepPaths(self.run_dir, self.step, self.seed, name)

    def read_task(self) -> dict[str, Any] | None:
        """The task the step was started with (task.json, else an older run's spec.json); None when
        neither is readable: the step has not started, or its task file is being written."""
        for path in (self.task, self.legacy_task):
            task = read_json_object(path)
            if task is not None:
                return task
        return None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The finished epochs' records (see read_json_lines)."""
        return read_json_lines(self.metrics)

    def read_progress(self) -> dict[str, Any] | None:
        """{"epoch", "batch", "batches"} of the running epoch; None when there is none to trust."""
        progress = read_json_object(self.progress)
        if progress is None or not all(isinstance(progress.get(key), int) for key in PROGRESS_KEYS):
            return None
        return progress

    def read_result(self) -> dict[str, Any] | None:
        """result.json as a dict; None when absent or unreadable (see result_unreadable)."""
        return read_json_object(self.result)

    def result_unreadable(self) -> bool:
        """True when result.json exists but holds no JSON object. It is written atomically, so this is
        damage: training counts the step as unfinished, the report stops and names the file."""
        return self.result.exists() and self.read_result() is None

    def completed_key(self) -> str | None:
        """The key of a finished (done or diverged) step, None when it has not finished.

        A failed step (status `failed`) and an unreadable result.json count as not finished: the
        next run trains the step again, resuming from its checkpoint where one is usable.
        """
        result = self.read_result()
        return result.get("key") if finished(result) else None

    def finished_result(self, key: str) -> dict[str, Any] | None:
        """result.json when the step finished (done or diverged) with `key`, else None."""
        result = self.read_result()
        return result if finished(result) and result.get("key") == key else None


class RunPaths:
    """Where one run keeps its own files; `step()` gives the files of one step x seed."""

    def __init__(self, run_dir: str | Path) -> None:
        self.folder = Path(run_dir)
        self.plan = self.folder / PLAN_FILE
        self.report = self.folder / REPORT_FOLDER
        self.agreement = self.report / AGREEMENT_FILE
        # submitit's pickles and the jobs' stdout/stderr logs.
        self.submitit = self.folder / SUBMITIT_FOLDER

    def comparison(self, other: str) -> Path:
        """report/vs-<other>/: this run measured against run `other` (`report --compare`)."""
        return self.report / f"vs-{other}"

    def step(self, step: str, seed: int, phase: str | None = None) -> StepPaths:
        return StepPaths(self.folder, step, seed, phase)


def is_set(value: Any) -> bool:
    """Whether a table cell or a result field holds a value: not None, NaN or ''."""
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and value != ""
