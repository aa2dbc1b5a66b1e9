"""Checker: roadmap networks against timm's model interface, as timm 1.0's tests/test_models.py checks it.

Run: python benchmarks/timm_interface.py [--quick | --networks NAME ...]
Fifteen checks (benchmarks/timm_checks.py), each a function of one network giving pass or fail and why:
timm's tests and what its training code relies on. Networks come through their registered timm names: the
ResNet-50 roadmap's 17 rows, ConvNeXt V2's GRN row, InceptionNeXt's 8 rows, and timm's resnet50,
convnext_tiny, convnextv2_tiny, inception_next_tiny as a reference (--quick: 3 small networks). Inputs are
timm's test sizes. The network x check table and every check's reason go to
benchmarks/results/<cpu|gpu>-<date>/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import timm
import torch
from timm_checks import CHECKS, Subject  # benchmarks/timm_checks.py, beside this script

import roadmap
from roadmap.network.timm_registry import timm_name
from roadmap.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
INCEPTION_ROWS = ("inception", "k5", "k3", "k3_par1_2", "k3_par3_8", "k3_par1_4", "k3_par1_8", "k3_par1_16")
REFERENCES = ("resnet50", "convnext_tiny", "convnextv2_tiny", "inception_next_tiny")
# Smoke set: ResNet's stem, BN and in-block downsampling; GRN; the InceptionNeXt mixer and MLP head.
QUICK = ("roadmap_resnet50_resnet50", "roadmap_convnextv2_atto", "roadmap_inception_next_atto")


def networks(quick: bool) -> list[tuple[str, Spec | None]]:
    """(timm name, roadmap row spec) of the networks checked (the module's docstring lists them)."""
    if quick:
        return [(name, None) for name in QUICK]
    rows = [("resnet50", row, spec) for row, spec in roadmap.specs("resnet50")]
    rows += [("convnext_v2", row, spec) for row, spec in roadmap.specs("convnext_v2") if row == "grn"]
    rows += [("inceptionnext", row, spec) for row, spec in roadmap.specs("inceptionnext") if row in INCEPTION_ROWS]
    return [(timm_name(name, row), spec) for name, row, spec in rows] + [(name, None) for name in REFERENCES]


def gist(error: BaseException) -> str:
    """The exception and where it was raised: the deepest frame in this project's code, else the deepest."""
    frames = traceback.extract_tb(error.__traceback__)
    frame = ([frame for frame in frames if frame.filename.startswith(str(ROOT))] or frames)[-1]
    message = str(error).splitlines()[0][:160] if str(error) else ""
    return f"{type(error).__name__}: {message} ({Path(frame.filename).name}:{frame.lineno})"


def run_network(name: str, spec: Spec | None = None, verbose: bool = True) -> list[dict[str, Any]]:
    """Every check on one network, each seeded alike: rows of network, check, passed, reason and seconds.
    An exception fails its check (with `verbose`, its traceback goes to the console)."""
    started = time.perf_counter()
    try:
        subject = Subject(name, timm.create_model(name).eval(), spec)
    except Exception as error:  # every check needs the model: all fail for the same reason
        failed = {"network": name, "passed": False, "reason": f"create_model: {gist(error)}", "seconds": 0.0}
        return [{**failed, "check": check} for check in CHECKS]
    rows = []
    for check, function in CHECKS.items():
        torch.manual_seed(0)
        clock = time.perf_counter()
        try:
            passed, reason = function(subject)
        except Exception as error:
            passed, reason = False, gist(error)
            if verbose:
                traceback.print_exc()
        rows.append(dict(network=name, check=check, passed=passed, reason=reason, seconds=time.perf_counter() - clock))
    if verbose:
        failed = [f"FAILED {row['check']}: {row['reason']}" for row in rows if not row["passed"]]
        count = f"{len(CHECKS) - len(failed)}/{len(CHECKS)}"
        print(f"{name}: {count} in {time.perf_counter() - started:.1f} s, {'; '.join(failed) or 'all pass'}")
    return rows


def tables(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The network x check table (pass / FAIL, how many pass, seconds) and the long table with reasons."""
    long = pd.DataFrame(rows)
    order = list(dict.fromkeys(long["network"]))
    passed = long.pivot(index="network", columns="check", values="passed").loc[order, list(CHECKS)].astype(bool)
    table = passed.replace({True: "pass", False: "FAIL"})
    table["passed"] = [f"{count}/{len(CHECKS)}" for count in passed.sum(axis=1)]
    table["seconds"] = long.groupby("network")["seconds"].sum().reindex(order).round(1)
    return table, long


def summary(table: pd.DataFrame) -> str:
    """'N of M checks pass', and the counts for roadmap networks and timm's own models."""
    passes = (table[list(CHECKS)] == "pass").sum(axis=1)
    ours = table.index.str.startswith("roadmap_")
    count = [f"{passes[rows].sum()} of {rows.sum() * len(CHECKS)}" for rows in (ours | ~ours, ours, ~ours)]
    return f"{count[0]} checks pass (roadmap networks: {count[1]}; timm's own models: {count[2]})"


def write(out: Path, stem: str, table: pd.DataFrame, long: pd.DataFrame, header: list[str]) -> None:
    """CSV of the table, CSV of every check's reason and seconds, and a markdown page of both."""
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{stem}.csv", index_label="network")
    long.round({"seconds": 2}).to_csv(out / f"{stem}_reasons.csv", index=False)
    failures = [f"- {row.network}, {row.check}: {row.reason}" for row in long[~long["passed"]].itertuples()]
    lines = [f"# timm interface checks ({stem})", "", *header, "", table.to_markdown(), "", "## Failures", ""]
    (out / f"{stem}.md").write_text("\n".join(lines + (failures or ["None."]) + [""]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--networks", nargs="+", help="these timm names instead")
    parser.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<cpu|gpu>-<date>)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    # One thread: the kernels are small and short, and on a shared 2-core machine a second thread
    # waits on a core that other work holds (a ResNet-50 row took 6 s with one thread, 94 s with two).
    torch.set_num_threads(args.threads)
    chosen = [(name, None) for name in args.networks] if args.networks else networks(args.quick)
    started = time.perf_counter()
    rows = [row for name, spec in chosen for row in run_network(name, spec)]
    elapsed, today = time.perf_counter() - started, datetime.date.today().isoformat()
    table, long = tables(rows)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    command = " ".join(["python benchmarks/timm_interface.py", *(sys.argv[1:] if argv is None else argv)])
    header = [
        f"Command: `{command}` (timm {timm.__version__}, torch {torch.__version__}, {args.threads} thread(s))",
        f"Measured on a {os.cpu_count()}-core CPU ({platform.machine()}), {device}, {today}: "
        f"{len(chosen)} networks in {elapsed:.0f} s.",
        "",
        summary(table) + ".",
    ]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string())
    print("\n".join(header))
    if not args.no_write:
        out = args.out or ROOT / "benchmarks" / "results" / f"{'gpu' if torch.cuda.is_available() else 'cpu'}-{today}"
        stem = "timm_interface_chosen" if args.networks else "timm_interface_quick" if args.quick else "timm_interface"
        write(out, stem, table, long, header)
        print(f"written: {out}/{stem}.csv, {stem}_reasons.csv, {stem}.md")


if __name__ == "__main__":
    main()
