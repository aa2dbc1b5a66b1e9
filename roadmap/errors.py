"""The errors meant for a user, and errors said in one line (for logs, result.json and the launcher).

Every error the package raises for a user derives from `UserError`: its message says what is wrong
and what to do, and the command line prints it as one line and exits with its `exit_code`.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a state the user can fix (a typo, a missing file, a run that does not exist).

    Subclasses also derive from the built-in exception that says what kind of error it is
    (ValueError, FileNotFoundError, ...), so callers may catch either."""

    exit_code = 2


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
