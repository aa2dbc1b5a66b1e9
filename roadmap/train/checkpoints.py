"""A training job's checkpoints: what a resumed step needs to continue bit for bit, written atomically.

`Checkpointing` is part of `roadmap.train.trainer.Trainer` (and of the FCMAE pre-training trainer): it reads
the trainer's model, optimizer, scheduler, EMA, loss scaler, history and random streams. Every torch
file the package reads (a resumed step, `eval`, `export`, `--init`) goes through `load_torch_file`.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from roadmap.errors import UserError, one_line
from roadmap.files.atomic import write_atomic, write_json_lines

log = logging.getLogger("roadmap.train")

# A training checkpoint holds numpy's random state; these let torch's weights-only unpickler (which
# runs no code from the file) read it. The reconstructor is taken from numpy itself: its module moved
# between numpy 1 and 2.
NUMPY_RNG_GLOBALS = [np.ndarray(0).__reduce__()[0], np.ndarray, np.dtype, type(np.dtype(np.uint32))]
# What every Checkpointing.state has; a file without these is not a training checkpoint.
TRAINING_CHECKPOINT_KEYS = frozenset({"key", "model", "optimizer", "epoch"})
# torch's weights-only unpickler names an object it refuses to rebuild as `GLOBAL module.name` in its
# (paragraph-long) message; a file that is no pickle at all (garbage, cut short) names none.
REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")


class UnsafeCheckpoint(UserError, ValueError):
    """A torch file whose pickle asks for an object other than plain data: refused unread, in one line."""


def load_torch_file(path: Path, map_location: torch.device | str = "cpu") -> Any:
    """Read a torch file (a checkpoint, a state dict) without running code from it: only tensors,
    plain containers, numbers, strings and numpy's random state are rebuilt. Checkpoints, `eval`,
    `export` and `--init` all read through here: any of them may read a file copied from elsewhere.
    UnsafeCheckpoint for a file that asks for anything else; torch's own errors for an unreadable one."""
    try:
        with torch.serialization.safe_globals(NUMPY_RNG_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = REFUSED_GLOBAL.search(str(error))
        if refused is None:
            raise
        raise UnsafeCheckpoint(
            f"{path} holds a pickled {refused[1]}, not only tensors and plain data; refused unread, since "
            f"loading it could run code (a roadmap checkpoint or a torch.save of a state dict holds none)"
        ) from None


def is_training_checkpoint(state: Any) -> bool:
    """Whether a loaded file is a roadmap training checkpoint (what Checkpointing.state returns)."""
    return isinstance(state, dict) and TRAINING_CHECKPOINT_KEYS <= set(state)


class CheckpointWriteError(UserError, OSError):
    """A checkpoint that could not be written (disk full, quota, file size limit), said in one line."""


def write_failure(path: Path, error: BaseException) -> CheckpointWriteError | None:
    """The one-line error for a failed checkpoint write; None for an error that is not about writing.
    torch's zip writer reports a short write as `[enforce fail at inline_container.cc:...] unexpected
    pos`, which says nothing to a user; an OSError carries the system's reason."""
    if isinstance(error, OSError):
        why = error.strerror or str(error)
    elif isinstance(error, RuntimeError) and "inline_container" in str(error):
        why = "the file was cut short while being written"
    else:
        return None
    try:
        free = f", {shutil.disk_usage(path.parent).free / 2**20:.0f} MB free there"
    except OSError:
        free = ""
    return CheckpointWriteError(
        f"could not write the checkpoint {path} ({why}{free}); free disk space (or raise the quota) and rerun "
        f"the same command: the step resumes from its last complete checkpoint"
    )


class Checkpointing:
    """Save and resume the state of a trainer (its attributes are set by `Trainer.__init__`)."""

    task: Any
    paths: Any
    distributed: Any
    device: torch.device
    model: torch.nn.Module
    optimizer: Any
    scheduler: Any
    ema: Any
    scaler: Any
    epoch: int
    updates: int
    best_top1: float
    history: list[dict]
    wall_time: float

    def state(self) -> dict[str, Any]:
        return {
            "key": self.task.key,
            "epoch": self.epoch,
            "updates": self.updates,
            "best_top1": self.best_top1,
            "history": self.history,
            "wall_time_s": self.wall_time,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,  # fp16 loss scaling only
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    def save_checkpoint(self) -> None:
        if not self.distributed.main:
            return
        # Keep the previous good checkpoint until the new one is complete: a newest checkpoint cut
        # short (disk full, copied half-way) then falls back to it instead of stranding the step.
        if self.paths.checkpoint.exists():
            os.replace(self.paths.checkpoint, self.paths.previous_checkpoint)
        try:
            write_atomic(self.paths.checkpoint, lambda handle: torch.save(self.state(), handle), binary=True)
        except (OSError, RuntimeError) as error:
            failure = write_failure(self.paths.checkpoint, error)
            if failure is None:
                raise
            raise failure from None
        # metrics.jsonl is rebuilt from the checkpoint's history, so the two never disagree.
        write_json_lines(self.paths.metrics, self.history)

    @functools.cached_property
    def resume_state(self) -> dict[str, Any] | None:
        """The checkpoint this job resumes from: the newest readable one (checkpoint.pt, else the one
        kept before it) written for this task's key; None to start the step afresh. Each unreadable
        file is named in one log line. Read once: the trainer asks before building its network (a
        resumed job needs none of the files its starting weights come from), run() loads it."""
        candidates = [path for path in (self.paths.checkpoint, self.paths.previous_checkpoint) if path.exists()]
        for position, path in enumerate(candidates):
            try:
                loaded = load_torch_file(path, map_location=self.device)
                if not is_training_checkpoint(loaded):
                    raise ValueError("not a training checkpoint")
            except Exception as error:  # truncated zip, garbage, an unsafe or another pickle: all unusable
                fallback = "the checkpoint before it" if position + 1 < len(candidates) else "the start of the step"
                log.warning("%s is unreadable (%s); resuming from %s", path, one_line(error), fallback)
                continue
            if loaded.get("key") != self.task.key:
                log.warning("%s: checkpoint belongs to another configuration; starting over", self.paths.folder)
                return None
            return loaded
        return None

    def load_checkpoint(self) -> bool:
        """Resume from `resume_state`; False (nothing loaded) when the step starts afresh."""
        state = self.resume_state
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.updates, self.best_top1 = state["epoch"], state["updates"], state["best_top1"]
        self.history, self.wall_time = state["history"], state["wall_time_s"]
        self.resume_state = None  # loaded: its tensors need not stay in memory for the whole run
        return True


# ModelEmaV3 keeps the averaged network as its submodule `module`: its state dict's names carry it.
EMA_PREFIX = "module."


class StepWeightsError(UserError, ValueError):
    """A step that cannot be read back (unknown, unfinished, or its checkpoint is not its result's)."""


def checkpoint_weights(state: dict[str, Any], weights: str) -> dict[str, torch.Tensor]:
    """One network's state dict (our names) out of a training checkpoint: `raw` or `ema`."""
    if weights == "raw":
        return dict(state["model"])
    if state.get("ema") is None:
        raise StepWeightsError("the checkpoint holds no EMA weights (its recipe has no EMA); use the raw weights")
    return {key.removeprefix(EMA_PREFIX): value for key, value in state["ema"].items()}
