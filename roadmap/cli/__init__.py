"""The command line: argument parsers (`arguments`) and dispatch (`commands`). `roadmap.cli.main`
is what `run_roadmap.py`, `python -m roadmap` and the `roadmap` console script call."""

from roadmap.cli.commands import main

__all__ = ["main"]
