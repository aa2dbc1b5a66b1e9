"""Command line of run_roadmap.py: argument parsing and dispatch, nothing else.

Every user error ends as one line on stderr and exit code 2, with the valid choices named.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from roadmap.complexity import CONVENTION, complexity_table
from roadmap.roadmaps import ROADMAPS, RoadmapError, roadmap_entries, specs
from roadmap.spec import SpecError
from steps import REGISTRY


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus the error; a researcher's script wants just the error line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def positive_multiple_of_32(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must be an integer, got {text!r}") from None
    if value <= 0 or value % 32:
        raise argparse.ArgumentTypeError(
            f"resolution must be a positive multiple of 32 (e.g. 224, 256, 384), got {value}"
        )
    return value


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--roadmap", default="resnet50", help=f"one of: {', '.join(ROADMAPS)}")
    parser.add_argument("--upto", default=None, help="last step to include (names accept - or _)")
    parser.add_argument("--resolution", type=positive_multiple_of_32, default=224,
                        help="input side for complexity counts (default 224)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format; csv and json print nothing else on stdout")


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="run_roadmap.py",
        description="Rerun the ConvNeXt 'modernizing a ResNet' roadmap: complexity, training, reports.",
    )
    add_selection_arguments(parser)
    parser.add_argument("--flops-only", action="store_true",
                        help="print the complexity table of every step without training")
    parser.add_argument("--list", action="store_true", help="list the steps of the roadmap with their labels")
    return parser


def print_frame(frame, output_format: str, caption: str) -> None:
    """Print a DataFrame as an aligned table (with caption) or as machine-readable CSV / JSON."""
    if output_format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output_format == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
    else:
        print(frame.to_string(index=False, na_rep="-"))
        print(caption)


def run_list(roadmap: str, output_format: str) -> None:
    import pandas as pd

    frame = pd.DataFrame.from_records(
        {
            "step": entry.step,
            "label": REGISTRY[entry.step].label,
            "branch_of": REGISTRY[entry.step].branch_of or "",
            "description": REGISTRY[entry.step].description,
        }
        for entry in roadmap_entries(roadmap)
    )
    print_frame(frame, output_format, f"Roadmap {roadmap}: {len(frame)} rows.")


def run_flops_only(roadmap: str, upto: str | None, resolution: int, output_format: str) -> None:
    frame = complexity_table(specs(roadmap, upto), roadmap, resolution)
    notes = [f"{row.step}: {row.note}" for row in frame.itertuples() if row.note]
    if output_format == "table":
        frame = frame.assign(gflops=[f"{value:.3f}{'*' if note else ''}" for value, note in zip(frame.gflops, frame.note)])
        frame = frame.drop(columns="note")
    caption = f"Complexity at {resolution}x{resolution}. {CONVENTION}."
    if notes:
        caption += "\n* differs from the paper's printed value:\n" + "\n".join(f"  {note}" for note in notes)
    print_frame(frame, output_format, caption)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        roadmap_entries(args.roadmap)  # validates the name before any work
        if args.list:
            run_list(args.roadmap, args.format)
        elif args.flops_only:
            run_flops_only(args.roadmap, args.upto, args.resolution, args.format)
        else:
            raise UsageError("training is not available yet; use --flops-only or --list")
    except (UsageError, RoadmapError, SpecError) as error:
        print(f"run_roadmap.py: error: {error}", file=sys.stderr)
        return 2
    return 0
