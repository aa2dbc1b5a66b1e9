"""Benchmark: each row's seed spread on a preset and dataset, shipped as roadmap/report/noise/<preset>-<dataset>.json.

Run: python benchmarks/seed_spread.py [--seeds 3] [--preset cpu] [--dataset synthetic] [--results DIR]
It trains the README's main command (`--upto ln`) with N seeds (on the cpu preset with 3 seeds, 30+
minutes on a 2-core machine), then writes the sample std of top-1 over the done seeds of every row,
their root mean square (the pooled std), this command, the commit that trained and the date. The
report plans "seeds that would resolve a change" of a one-seed run with it (roadmap.report.measured_spread).
`--no-train` measures a run that is already trained (`--results`, `--run`) instead; the file is named
after that run's preset and dataset.
"""

from __future__ import annotations

import argparse
import datetime
import math
import shlex
import subprocess
import sys
from pathlib import Path

from roadmap.files.atomic import write_json
from roadmap.report.measured_spread import COMMAND, spread_path, spread_record
from roadmap.report.run_table import aggregate
from roadmap.runs.seeds import collect, load_run

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SEEDS = 3


def train(results: Path, run: str, seeds: int, preset: str, dataset: str) -> None:
    """The README's main command with N seeds, into its own run folder (finished steps are kept)."""
    command = ["--upto", "ln", "--seeds", str(seeds), "--preset", preset, "--dataset", dataset]
    subprocess.run(
        [sys.executable, "run_roadmap.py", *command, "--run", run, "--results", str(results)], cwd=ROOT, check=True
    )


def _commit(frame) -> str | None:
    """The commit(s) the done seeds were trained from (result.json `environment.git_commit`)."""
    done = frame[frame.status == "done"] if "status" in frame else frame
    commits = [env.get("git_commit") for env in done.get("environment", []) if isinstance(env, dict)]
    return " / ".join(dict.fromkeys(commit for commit in commits if commit)) or None


def measure(run_dir: Path, run_name: str | None = None) -> dict:
    """The measurement file's content for a trained run, read with the report's own readers; its
    command is the one that trains (finished steps are kept) and measures that run again."""
    info = load_run(run_dir)
    frame = collect(run_dir)
    table = aggregate(frame, info)
    seeds = len(info.get("seeds", [0]))
    command = COMMAND.format(preset=info.get("preset"), dataset=info.get("dataset"), seeds=seeds)
    if run_name:
        command += f" --run {shlex.quote(run_name)}"
    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return spread_record(table, info, command, _commit(frame), date)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help=f"seeds per row (default {DEFAULT_SEEDS})")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="results folder (default results/)")
    parser.add_argument("--run", default=None, help="run name (default resnet50-<preset>-<dataset>-<N>seeds)")
    parser.add_argument("--out", type=Path, default=None, help="file to write (default: the package's noise file)")
    parser.add_argument("--no-train", action="store_true", help="measure the run as it is; train nothing")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.seeds < 2:
        print("--seeds must be 2 or more: one seed has no spread", file=sys.stderr)
        return 2
    run = args.run or f"resnet50-{args.preset}-{args.dataset}-{args.seeds}seeds"
    if not args.no_train:
        train(args.results, run, args.seeds, args.preset, args.dataset)
    record = measure(args.results / run, args.run)
    out = args.out or spread_path(str(record["preset"]), str(record["dataset"]))
    write_json(out, record)  # atomic: a report reading the file never sees half of it
    stds = ", ".join(
        f"{step} {row['top1_std']:.2f}" for step, row in record["rows"].items() if row["top1_std"] is not None
    )
    pooled = record["pooled_std"]
    print(f"seed std of top-1 (points) per row: {stds or 'none (fewer than 2 done seeds per row)'}")
    print(f"pooled std {pooled:.2f}" if pooled is not None and math.isfinite(pooled) else "no pooled std")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
