"""Benchmark: InceptionNeXt's Table 4 speed ratios (ConvNeXt-T / ResNet-50, InceptionNeXt-T / ConvNeXt-T)
on this machine, beside the paper's A100 and RTX 2080Ti figures.

Run: python benchmarks/cost_ratios.py [any option of the cost study, e.g. --settings fp32 --rounds 3]
A thin entry point to the cost study (`roadmap.report.cost_study`, `python run_roadmap.py cost`) restricted
to the three networks of Table 4; the study measures, alternates rounds and computes the ratios.
"""

from __future__ import annotations

import sys

from roadmap.report.cost_study import main

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if not any(argument.startswith("--rows") for argument in arguments):
        arguments = ["--rows", "resnet50,sep_ds,inception", *arguments]
    sys.exit(main(arguments))
