"""Atomic file writes, strict JSON reads and the claim on a step x seed.

A file that a later run trusts (task, metrics, result, checkpoint) is written to a temporary name
in the same folder and renamed into place, so an interrupted write never leaves half a file. Where
those files lie in a run folder, and the tolerant reader of them, is roadmap.run_files.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

# Re-exported: the layout and the tolerant readers were defined here before roadmap.run_files.
from roadmap.run_files import RunPaths, StepPaths, read_json_lines, read_json_object  # noqa: F401


class UnreadableFile(ValueError):
    """A file a run depends on exists but cannot be read as JSON (cut short, overwritten, binary)."""

    def __init__(self, path: Path, what_to_do: str) -> None:
        super().__init__(f"{path} is unreadable (not valid JSON: cut short or overwritten); {what_to_do}")
        self.path = Path(path)


class NotWritable(ValueError):
    """A results path that is not a folder this process can write into."""


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


def read_json_checked(path: Path, what_to_do: str) -> Any:
    """read_json, with a file that exists but holds no valid JSON raised as UnreadableFile (one line)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise UnreadableFile(Path(path), what_to_do) from None


def check_writable_folder(path: Path, what: str = "--results") -> None:
    """Raise NotWritable unless `path` is (or can be created as) a folder this process can write into.

    Nothing is left behind: the nearest existing ancestor is probed with a temporary file.
    """
    path = Path(path).expanduser()
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == path else f" ({existing} is a file)"
        raise NotWritable(f"{what} {path} is not a folder{where}; give a folder path")
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".write-probe.", dir=existing)
    except OSError as error:
        raise NotWritable(
            f"{what} {path} is not writable ({error.strerror or error}); give a folder you can write into"
        ) from None
    os.close(descriptor)
    os.unlink(probe)


class StepClaim:
    """An exclusive claim on one step x seed: flock on its `claim.lock`, held for the claimant's life.

    The kernel drops the lock when the holder exits (kill -9 included), so a claim is never stale on
    one machine; on a shared file system the lock is as good as the file system's flock (NFSv4 and
    Lustre/GPFS forward it). The file names the holder (host, pid) for the messages of others.
    """

    def __init__(self, paths: StepPaths) -> None:
        self.paths = paths
        self.handle: Any = None

    def acquire(self) -> bool:
        """Take the claim without waiting; False when another process holds it."""
        self.paths.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.paths.lock, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()} {os.getpid()}\n")
        handle.flush()
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None

    def __enter__(self) -> "StepClaim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim_holder(paths: StepPaths) -> str | None:
    """'host pid' of the process holding the step's claim, None when nobody holds it."""
    if not paths.lock.exists():
        return None
    try:
        handle = open(paths.lock, "r")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            return handle.read().strip() or "another process"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None
