"""Shared fixtures. Tests run on CPU with a fixed number of threads for repeatable timings."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Test processes side by side (pytest-xdist): one thread each, and for the runs they start (the
    # environment is inherited), or torch's waiting threads spin against the other process's work
    # (two 2-thread processes on 2 cores took twice the CPU time of one).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, torch.get_num_threads()))

ROOT = Path(__file__).resolve().parents[1]
# The tiny run that several tests need: the paper's first three rows, two seeds, trained once.
TINY_RUN_ARGS = ("--upto", "stage_ratio", "--preset", "tiny", "--executor", "local", "--seeds", "2")
TINY_RUN = "resnet50-tiny-synthetic"


@dataclass(frozen=True)
class TinyRun:
    results: Path  # the --results folder; the run is results / TINY_RUN
    finished: subprocess.CompletedProcess  # the CLI's exit code and output

    def copy_to(self, results: Path, keep_report: bool = True) -> Path:
        """A copy of the run folder under `results` for a test that writes into it (the shared one
        stays as the CLI left it); without the report when the test must see its own written."""
        ignored = ("submitit",) if keep_report else ("submitit", "report")
        target = results / TINY_RUN
        shutil.copytree(self.results / TINY_RUN, target, ignore=shutil.ignore_patterns(*ignored))
        return target


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One real command-line run (submitit's local executor, 6 step x seeds), shared by test_train
    (which checks the run itself), test_report and the notebook test (which start from copies):
    training the same six jobs three times cost the suite about a minute. With pytest-xdist the
    test processes share it too: the first trains it under a lock, the others read its output."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run_id is None:
        return _checked(_train_tiny_run(tmp_path_factory.mktemp("tiny-run")))
    shared = tmp_path_factory.getbasetemp().parent / f"tiny-run-{run_id}"  # the workers' common folder
    shared.mkdir(exist_ok=True)
    with open(shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        outcome = shared / "finished.json"
        if not outcome.exists():
            finished = _train_tiny_run(shared / "results").finished
            outcome.write_text(json.dumps([finished.args, finished.returncode, finished.stdout, finished.stderr]))
        args, code, out, err = json.loads(outcome.read_text())
        return _checked(TinyRun(shared / "results", subprocess.CompletedProcess(args, code, out, err)))


def _checked(run: TinyRun) -> TinyRun:
    """Every test that uses the run needs it finished: a failed run errors them with its stderr."""
    assert run.finished.returncode == 0, run.finished.stderr[-2000:]
    return run


def _train_tiny_run(results: Path) -> TinyRun:
    return TinyRun(results, run_cli(*TINY_RUN_ARGS, "--results", str(results)))


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The script in a subprocess, as a user runs it: exit code and output."""
    return subprocess.run(
        [sys.executable, "run_roadmap.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def pytest_terminal_summary(terminalreporter) -> None:
    """One line saying how many SLURM tests ran: CI must show they were not all skipped."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for report in terminalreporter.stats.get(outcome, []):
            if "slurm" in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                if outcome != "passed" or report.when == "call":
                    counts[outcome] += 1
    ran = counts["passed"] + counts["failed"]
    terminalreporter.write_line(
        f"slurm tests: {ran} ran ({counts['passed']} passed, {counts['failed']} failed), {counts['skipped']} skipped"
    )
