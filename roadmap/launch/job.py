"""What one submitit job does for a step x seed: claim it, train its phases, record the outcome."""

from __future__ import annotations

import logging
import os
from typing import Any

from roadmap.cost.processes import quiet_third_party_warnings
from roadmap.errors import one_line
from roadmap.fcmae.trainer import FineTuner, PretrainTrainer, pretrain_task
from roadmap.files.atomic import StepClaim, claim_holder, write_json
from roadmap.files.records import StepResult
from roadmap.train.task import StepTask
from roadmap.train.trainer import Trainer

log = logging.getLogger("roadmap.train")


def record_task(task: StepTask) -> None:
    """Write the task a job starts with (task.json); an older run's spec.json, the same file under
    its former name, goes, so that a folder never holds two task files that disagree."""
    write_json(task.paths.task, task.to_json())
    task.paths.legacy_task.unlink(missing_ok=True)


def train_phases(task: StepTask) -> dict[str, Any]:
    """Pre-train first where the spec asks for it (unless already finished), then train the row."""
    parent = None
    if task.spec.pretrain is not None:
        phase = pretrain_task(task)
        parent = phase.paths.finished_result(phase.key)
        if parent is None:
            phase.paths.result.unlink(missing_ok=True)
            record_task(phase)
            parent = PretrainTrainer(phase).run()
        if parent["status"] != "done":
            reason = "pre-training loss became NaN or infinite"
            result = StepResult(parent["status"], task.step, task.seed, task.key, reason=reason, pretrain=parent)
            write_json(task.paths.result, result.to_json())
            return result.to_json()
    return (Trainer if parent is None else FineTuner)(task, parent).run()


def run_step(task: StepTask) -> dict[str, Any]:
    """Train one step x seed unless its result exists already; returns the result record.

    Rank 0 first claims the step x seed (StepClaim, held until this process ends); when another
    process holds it, nothing is trained and the record says {"status": "claimed", "holder": ...}.
    A job that raises leaves a result.json with status `failed` and the reason in one line, which
    the launcher prints and the report shows; the next run trains the step again.
    """
    quiet_third_party_warnings()
    paths = task.paths
    main = int(os.environ.get("RANK", "0")) == 0
    claim = StepClaim(paths)
    if main and not claim.acquire():
        return {
            "status": "claimed",
            "step": task.step,
            "seed": task.seed,
            "key": task.key,
            "holder": claim_holder(paths) or "another process",
        }
    try:
        finished = paths.finished_result(task.key)
        if finished is not None:
            return finished
        if paths.result_unreadable():
            log.warning("%s is unreadable; training the step again (from its checkpoint where usable)", paths.result)
        if main:
            paths.result.unlink(missing_ok=True)  # failed or unreadable: the step runs again now
            record_task(task)
        try:
            return train_phases(task)
        except Exception as error:
            if main:
                failed = StepResult("failed", task.step, task.seed, task.key, reason=one_line(error))
                write_json(paths.result, failed.to_json())
            raise
    finally:
        claim.release()
