"""Launch the steps of a run with submitit: local (default here), debug (in-process) or SLURM.

Each step x seed is one submitit job running a `StepJob`, a Checkpointable callable: when SLURM
signals a time limit or preemption, submitit requeues the same call, and the trainer resumes from
its newest epoch checkpoint. Locally the steps run one after another; on SLURM they go as one job
array. The launcher itself only submits, watches the result files and prints progress.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import submitit
from tqdm import tqdm

from roadmap.errors import last_line
from roadmap.files.atomic import check_writable_folder, claim_holder
from roadmap.files.layout import RunPaths
from roadmap.launch.executors import ClusterOptions, LaunchError, StepJob, choose_executor, make_executor
from roadmap.launch.progress import ArrayProgress, ProgressLines
from roadmap.report.write import report, summary
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import RunPlan, plan_run, write_plan
from roadmap.train.task import StepTask

log = logging.getLogger("roadmap.launch")


def epoch_progress(task: StepTask) -> float:
    """Epochs done by a step, with the fraction of the running epoch (from its progress file)."""
    done = len(task.paths.read_metrics())
    progress = task.paths.read_progress()
    if progress is not None and progress["epoch"] == done:
        return done + progress["batch"] / max(1, progress["batches"])
    return float(done)


def summary_line(index: int, total: int, task: StepTask, result: dict[str, Any]) -> str:
    accuracy = "diverged" if result["status"] == "diverged" else f"top-1 {result['top1']:.2f}%"
    return (
        f"[{index}/{total}] {task.step} seed {task.seed}: {accuracy}, {result['epochs']} epochs, "
        f"{result['wall_time_s']:.0f} s; full-size {result['gflops']:.2f} GFLOPs, proxy "
        f"{result['proxy_gflops'] * 1000:.1f} MFLOPs at {result['resolution']} px"
    )


def main_result(job: submitit.Job) -> dict[str, Any]:
    """The result of rank 0: a multi-task job returns one result per task."""
    return job.results()[0]


def wait_with_progress(job: submitit.Job, task: StepTask, epochs: int, run: _RunProgress) -> dict[str, Any]:
    """Wait for one job, showing its epochs as a bar under the roadmap bar (progress lines where
    bars do not show); Ctrl-C cancels the job."""
    with tqdm(
        total=epochs,
        desc=f"{task.step} s{task.seed}",
        unit="ep",
        leave=False,
        position=1,
        disable=None,
        bar_format="{desc:>18} {percentage:3.0f}%|{bar}| {n:.1f}/{total} ep [{elapsed}<{remaining}]",
    ) as bar:
        lines = ProgressLines(task, epochs, run) if bar.disable else None
        try:
            while not job.done():
                bar.n = round(epoch_progress(task), 2)
                bar.refresh()
                run.bar.refresh()
                if lines is not None:
                    lines.poll()
                # A short poll: a proxy step lasts seconds, and each half second of polling was
                # paid once per step x seed (checking a local job and reading progress.json is cheap).
                time.sleep(0.1)
        except KeyboardInterrupt:
            cancel_quietly(job)
            raise
    return main_result(job)


def cancel_quietly(job: submitit.Job) -> None:
    """Stop a job after Ctrl-C; its checkpoints stay, so rerunning the command resumes it."""
    with contextlib.suppress(Exception):
        job.cancel(check=False)


def failure_text(task: StepTask, error: BaseException, job: submitit.Job | None = None) -> str:
    """Why a job failed, in one line: the reason its result.json records (the exception's last line),
    else the last meaningful line of submitit's error; with the log's path."""
    result = task.paths.read_result() or {}
    reason = result.get("reason") if result.get("status") == "failed" else None
    if not reason:
        reason = last_line(str(error)) or type(error).__name__
    log_path = f" (log: {job.paths.stdout})" if job is not None else ""
    return f"failed: {reason}{log_path}"


def claimed_line(task: StepTask, holder: str) -> str:
    return (
        f"{task.step} seed {task.seed}: claimed by another launcher ({holder}); "
        f"not training it here, waiting for its result"
    )


def await_claimed(task: StepTask, poll_s: float = 1.0) -> dict[str, Any] | None:
    """Wait until nobody holds the step's claim; its result when the holder finished it, else None."""
    while claim_holder(task.paths) is not None:
        time.sleep(poll_s)
    return task.paths.finished_result(task.key)


class _RunProgress:
    """The launcher's count of finished step x seeds, its progress bar and the results so far; the
    local launcher and the SLURM one say a finished (or failed) step in the same `[i/n]` line."""

    def __init__(self, total: int, report: Callable[[str], None]) -> None:
        self.total, self.index, self.report = total, 0, report
        self.results: list[dict[str, Any]] = []
        self.bar = tqdm(total=total, desc="roadmap", unit="step", position=0, disable=None)

    def finished(self, task: StepTask, result: dict[str, Any], note: str = "") -> None:
        self.index += 1
        self.results.append(result)
        self.bar.update(1)
        tqdm.write(summary_line(self.index, self.total, task, result) + note, file=sys.stdout)

    def failed(self, task: StepTask, text: str) -> None:
        self.index += 1
        self.report(f"[{self.index}/{self.total}] {task.step} seed {task.seed}: {text}")
        self.bar.update(1)


def _train_locally(executor: Any, kind: str, task: StepTask, epochs: int, progress: _RunProgress) -> dict | None:
    """Train one task through the executor; its result, or None when it failed (said in one line)."""
    # Child processes (submitit's local controller) get no terminal stderr: a Ctrl-C would
    # otherwise print their tracebacks under the launcher's one line. Jobs log to files.
    with silenced_stderr():
        job = executor.submit(StepJob(), task)
    try:
        return main_result(job) if kind == "debug" else wait_with_progress(job, task, epochs, progress)
    except submitit.core.utils.FailedJobError as error:
        progress.failed(task, failure_text(task, error, job))
        return None


def launch(
    tasks: list[StepTask],
    epochs: dict[str, int],
    kind: str,
    folder: Path,
    cluster: ClusterOptions,
    devices: int,
    wait: bool,
    report: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run (or submit) every task; returns the results of the finished ones.

    A step x seed that another launcher holds (its claim.lock, see roadmap.files.atomic.StepClaim) is not
    trained here: it is said in one line, the other steps go first, and at the end this launcher
    waits for the holder and takes its result (or trains the step itself if the holder gave up).
    """
    executor = make_executor(kind, folder, cluster, devices)
    if kind == "slurm":
        return _launch_array(executor, tasks, epochs, wait, report)
    progress = _RunProgress(len(tasks), report)
    try:
        queue, held = list(tasks), []
        while queue or held:
            if not queue:
                # Only steps held by other launchers remain: wait for them one by one.
                task = held.pop(0)
                result = await_claimed(task)
                if result is not None:
                    progress.finished(task, result, " (trained by another launcher)")
                else:
                    queue.append(task)  # the holder stopped without a result: train it here
                continue
            task = queue.pop(0)
            holder = claim_holder(task.paths)
            if holder is not None:
                report(claimed_line(task, holder))
                held.append(task)
                continue
            result = _train_locally(executor, kind, task, epochs[task.step], progress)
            if result is not None and result.get("status") == "claimed":
                # Another launcher took it between the check and the job.
                report(claimed_line(task, result.get("holder", "another process")))
                held.append(task)
            elif result is not None:
                progress.finished(task, result)
    finally:
        progress.bar.close()
    return progress.results


def _launch_array(
    executor: submitit.Executor,
    tasks: list[StepTask],
    epochs: dict[str, int],
    wait: bool,
    report: Callable[[str], None],
) -> list[dict[str, Any]]:
    try:
        # sbatch prints its own error lines; submitit's exception carries the same reason.
        with silenced_stderr(), executor.batch():
            jobs = [executor.submit(StepJob(), task) for task in tasks]
    except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError, RuntimeError) as error:
        reason = last_line(str(error)).removeprefix("sbatch: error: ")
        raise LaunchError(
            f"SLURM refused the job array: {reason} (compare the request with `sinfo -N -l`: "
            f"partition, memory, CPUs, GPUs, time)"
        ) from None
    report(
        f"submitted job array {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks): "
        + ", ".join(f"{task.step}/s{task.seed}={job.job_id}" for task, job in zip(tasks, jobs))
    )
    return _await_array(tasks, jobs, epochs, report) if wait else []


def _await_array(
    tasks: list[StepTask], jobs: list[submitit.Job], epochs: dict[str, int], report: Callable[[str], None]
) -> list[dict[str, Any]]:
    """Wait for the array's jobs, saying each finished step as the local launcher does and, where
    no bar shows (a batch log), the running steps' progress lines from the run folder."""
    progress = _RunProgress(len(jobs), report)
    lines = ArrayProgress(tasks, epochs) if progress.bar.disable else None
    finished: set[int] = set()
    try:
        while len(finished) < len(jobs):
            if lines is not None:
                lines.poll(finished)
            for index, (task, job) in enumerate(zip(tasks, jobs)):
                if index in finished or not job.done():
                    continue
                finished.add(index)
                result = _array_result(task, job, progress)
                if result is not None:
                    progress.finished(task, result)
            time.sleep(1.0)
    finally:
        progress.bar.close()
    return progress.results


def _array_result(task: StepTask, job: submitit.Job, progress: _RunProgress) -> dict[str, Any] | None:
    """The result of an ended array job; None when it failed (said in one line)."""
    try:
        result = main_result(job)
    except submitit.core.utils.FailedJobError as error:
        progress.failed(task, failure_text(task, error, job))
        return None
    if result.get("status") == "claimed":
        progress.report(claimed_line(task, result.get("holder", "another process")))
        result = await_claimed(task)
        if result is None:
            progress.failed(task, "the other launcher stopped without a result; rerun the command to train it")
    return result


@contextlib.contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send what child processes write to stderr to /dev/null (file descriptor 2)."""
    saved = os.dup(2)
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def say_plan(plan: RunPlan, kind: str, pending: int, say: Callable[[str], None]) -> None:
    """The run in a few lines before it trains: rows, seeds, preset, data, recipes, notes, left-out rows."""
    info = plan.info
    say(
        f"run {info.run}: {len(info.rows)} rows x {len(info.seeds)} seed(s), preset {info.preset} "
        f"({info.preset_description}), dataset {info.dataset_description}; executor {kind}; "
        f"{pending} to train, {len(plan.tasks) - pending} already done"
    )
    for description in dict.fromkeys(f"{row.recipe} recipe: {row.batch}" for row in info.rows):
        say(description)
    for description in dict.fromkeys(row.pretrain for row in info.rows if row.pretrain):
        say(description)
    for note in info.notes:
        say(f"note: {note}")
    for skipped in info.skipped:
        say(f"{info.mode} mode leaves out {skipped.step}: {skipped.reason}")


def train_roadmap(
    options: RunOptions,
    executor: str = "local",
    cluster: ClusterOptions | None = None,
    wait: bool = True,
    say: Callable[[str], None] = print,
) -> tuple[RunPlan, int]:
    """Plan, train what is not finished, and write the report: the main command, callable from
    notebooks. Returns the plan and the number of step x seed jobs that failed (crashed, not diverged)."""
    kind = choose_executor(executor, say)
    plan = plan_run(options, launcher_pid=os.getpid() if kind == "local" else None)
    pending = plan.pending()
    say_plan(plan, kind, len(pending), say)
    new_run = not plan.run_dir.exists()
    check_writable_folder(plan.run_dir)
    for task in plan.tasks:
        if task.paths.result_unreadable():
            say(
                f"warning: {task.paths.result} is unreadable (not valid JSON); {task.step} seed {task.seed} "
                f"counts as unfinished and is trained again (resuming from its checkpoint where usable)"
            )
    write_plan(plan)
    failed = 0
    if pending:
        epochs = {row.step: row.epochs for row in plan.info.rows}
        try:
            results = launch(
                pending,
                epochs,
                kind,
                RunPaths(plan.run_dir).submitit,
                cluster or ClusterOptions(),
                options.devices,
                wait=wait,
                report=say,
            )
        except LaunchError:
            if new_run:  # SLURM refused everything: leave no run behind that looks started
                shutil.rmtree(plan.run_dir, ignore_errors=True)
            raise
        if not wait:
            return plan, 0
        failed = len(pending) - len(results)
    written = report(plan.run_dir)
    say(f"report: {RunPaths(plan.run_dir).report} ({len(written)} files: table.csv/.md/.tex and figures)")
    agreement = summary(plan.run_dir)
    if agreement:
        say(agreement)
    return plan, failed
