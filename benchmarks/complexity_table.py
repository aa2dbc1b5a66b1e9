"""Benchmark: the complexity table of every row of both paper roadmaps (issue target: <= 20 s).

Run: python benchmarks/complexity_table.py
Counts each network once at 224 (fvcore, paper convention) in a fresh process, so nothing is cached.
"""

from __future__ import annotations

import os
import platform
import time

import torch

from roadmap.network.roadmaps import specs
from roadmap.report.flops_table import complexity_table


def main() -> None:
    started = time.perf_counter()
    rows = 0
    for roadmap in ("resnet50", "resnet200"):
        table = complexity_table(specs(roadmap), roadmap, 224)
        rows += len(table)
    elapsed = time.perf_counter() - started
    print(
        f"complexity table: {rows} rows (resnet50 + resnet200 roadmaps, branch rows included) in {elapsed:.1f} s "
        f"on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


if __name__ == "__main__":
    main()
