"""Atomic file writes, strict JSON reads and the claim on a step x seed.

A file that a later run trusts (task, metrics, result, checkpoint) is written to a temporary name
in the same folder and renamed into place, so an interrupted write never leaves half a file. Where
those files lie in a run folder, and the tolerant reader of them, is roadmap.files.layout.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from roadmap.errors import UserError

# Re-exported: the layout and the tolerant readers were defined here before roadmap.files.layout.
from roadmap.files.layout import RunPaths, StepPaths, format_problem, read_json_lines, read_json_object  # noqa: F401


class UnreadableFile(UserError, ValueError):
    """A file a run depends on exists but cannot be read as JSON (cut short, overwritten, binary)."""

    def __init__(self, path: Path, what_to_do: str, why: str = "not valid JSON: cut short or overwritten") -> None:
        super().__init__(f"{path} is unreadable ({why}); {what_to_do}")
        self.path = Path(path)


def check_readable(path: Path) -> None:
    """UnreadableFile when `path` exists but this process cannot open it (another user's private
    file, a folder in its place): one line naming it, not a PermissionError traceback."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        return
    except OSError as error:
        raise UnreadableFile(
            Path(path),
            "ask its owner to make it readable to you (chmod a+r), or work on a copy",
            error.strerror or str(error),
        ) from None


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc (since 4.7); elsewhere it is read by setting
    and restoring it, which other threads could observe for an instant."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class NotWritable(UserError, ValueError):
    """A results path that is not a folder this process can write into."""


def write_atomic(path: Path, write: Callable[[Any], None], binary: bool = False) -> None:
    """Call `write(handle)` on a temporary file next to `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates 0600 whatever the umask: results are shared like any file the user writes
        # (a colleague's report on a shared results folder must be able to read them).
        os.fchmod(descriptor, 0o666 & ~current_umask())
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
    check_readable(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise UnreadableFile(Path(path), what_to_do) from None


def check_format(path: Path, data: Any) -> None:
    """UnreadableFile when a run.json / result.json says it follows a layout this version does not
    know (a newer roadmap wrote it): read as this version's, its fields could mean something else."""
    problem = format_problem(data) if isinstance(data, dict) else None
    if problem is not None:
        what_to_do = "read it with the roadmap version that wrote it, or give another --results"
        raise UnreadableFile(Path(path), what_to_do, f"written with {problem}")


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
