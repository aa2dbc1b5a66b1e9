"""Benchmark: the README's main command end to end, then the same command again.

Run: python benchmarks/default_run.py [--results DIR] [--keep]
Targets (issue 3): the first run trains all 13 rows up to `ln` in <= 15 min on a 2-core CPU machine;
the second finishes in <= 30 s and trains nothing; time waiting for data <= 10% of step time.
The report of the first run is copied to docs/default-run/ when --docs is given (for the README).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(results: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "run_roadmap.py", "--upto", "ln", "--results", str(results)],
        cwd=ROOT,
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="results folder (default: a temporary one)")
    parser.add_argument("--docs", action="store_true", help="copy the report to docs/default-run/")
    args = parser.parse_args()
    results = args.results or Path(tempfile.mkdtemp(prefix="roadmap-bench-"))
    first = timed_run(results)
    second = timed_run(results)
    run_dir = results / "resnet50-cpu-synthetic"
    rows = json.loads((run_dir / "run.json").read_text())["rows"]
    outcomes = [json.loads((run_dir / row["step"] / "0" / "result.json").read_text()) for row in rows]
    wait = sum(r["data_wait_fraction"] * r["wall_time_s"] for r in outcomes) / sum(r["wall_time_s"] for r in outcomes)
    worst = max(outcomes, key=lambda r: r["data_wait_fraction"])
    print(f"machine: {os.cpu_count()} CPU cores")
    print(f"first run: {len(rows)} rows trained in {first / 60:.1f} min ({first:.0f} s)")
    print(f"second run: {second:.1f} s (nothing trained)")
    print(
        f"data wait: {100 * wait:.1f}% of step time overall, "
        f"worst row {worst['step']} {100 * worst['data_wait_fraction']:.1f}%"
    )
    print("top-1 (CPU proxy, synthetic shapes): " + ", ".join(f"{r['step']} {r['top1']:.1f}" for r in outcomes))
    if args.docs:
        target = ROOT / "docs" / "default-run"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(run_dir / "report", target)
        print(f"report copied to {target}")


if __name__ == "__main__":
    main()
