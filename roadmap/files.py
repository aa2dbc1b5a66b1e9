"""Atomic file writes and the paths of a run on disk (docs/results-format.md).

A file that a later run trusts (spec, metrics, result, checkpoint) is written to a temporary name
in the same folder and renamed into place, so an interrupted write never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Call `write(handle)` on a temporary file next to `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb" if binary else "w") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, lambda handle: json.dump(data, handle, indent=2, sort_keys=False, default=str))


def write_json_lines(path: Path, records: Iterable[dict]) -> None:
    write_atomic(path, lambda handle: handle.writelines(json.dumps(record) + "\n" for record in records))


def read_json(path: Path) -> Any:
    with open(path) as handle:
        return json.load(handle)


def read_json_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


class StepPaths:
    """Where one step x seed of a run keeps its files."""

    def __init__(self, run_dir: Path, step: str, seed: int) -> None:
        self.folder = Path(run_dir) / step / str(seed)
        self.spec = self.folder / "spec.json"
        self.metrics = self.folder / "metrics.jsonl"
        self.result = self.folder / "result.json"
        self.checkpoint = self.folder / "checkpoint.pt"
        self.log = self.folder / "train.log"

    def completed_key(self) -> str | None:
        """The key of a finished (done or diverged) step, None when it has not finished."""
        if not self.result.exists():
            return None
        return read_json(self.result).get("key")
