"""Errors said in one line: what went wrong, for logs, result.json and the launcher's output."""

from __future__ import annotations


def last_line(text: str) -> str:
    """The last line that says something. submitit frames a job's traceback with rules of dashes
    and follows it with where the logs are; the error is the traceback's last line."""
    text = text.split("You can check full logs")[0]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip().strip("-=* ")]
    return lines[-1] if lines else text.strip()


def one_line(error: BaseException) -> str:
    """`Type: last line of the message`, e.g. for a failed step's reason."""
    line = last_line(str(error))
    return f"{type(error).__name__}: {line}" if line else type(error).__name__
