"""Benchmark: training-step throughput ratios inception / sep_ds and sep_ds / resnet50 on this machine.

Run: python benchmarks/cost_ratios.py [--batch 16] [--resolution 224] [--rounds 3] [--iterations 3]
Each network is the full-size one of its roadmap row (ResNet-50, ConvNeXt-T, InceptionNeXt-T), timed
with roadmap.cost.measure, the function behind the table's cost columns: forward, cross-entropy,
backward and an AdamW step; fp32 and contiguous on CPU (bf16 + channels-last on a GPU). Rounds
alternate the order of the three networks so that drift of the machine hits all alike; a ratio is
that of median images per second. The paper's figures (InceptionNeXt Table 4, train throughput with
timm's benchmark, SGD step) are printed beside: A100 TF32 and RTX 2080Ti FP32.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from roadmap.cost import measure
from roadmap.roadmaps import specs

ROWS = (("resnet50", "resnet50", "ResNet-50"), ("resnet50", "sep_ds", "ConvNeXt-T"),
        ("inceptionnext", "inception", "InceptionNeXt-T"))
# Train images/s from InceptionNeXt's Table 4 (papers.md 6.4).
PAPER = {"A100 (TF32)": {"ResNet-50": 969, "ConvNeXt-T": 575, "InceptionNeXt-T": 901},
         "RTX 2080Ti (FP32)": {"ResNet-50": 278, "ConvNeXt-T": 177, "InceptionNeXt-T": 254}}
RATIOS = (("InceptionNeXt-T", "ConvNeXt-T", "inception / sep_ds"), ("ConvNeXt-T", "ResNet-50", "sep_ds / resnet50"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=3)
    args = parser.parse_args()
    networks = {label: dict(specs(roadmap, upto=step, branches=False))[step] for roadmap, step, label in ROWS}
    rates: dict[str, list[float]] = {label: [] for label in networks}
    device = ""
    for round_index in range(args.rounds):
        order = list(networks) if round_index % 2 == 0 else list(reversed(networks))
        for label in order:
            cost = measure(networks[label], batch=args.batch, resolution=args.resolution, warmup=1,
                           iterations=args.iterations)
            rates[label].append(cost.train_images_per_s)
            device = f"{cost.device}, {cost.dtype}, {cost.memory_format}"
            print(f"  round {round_index + 1}: {label:>15} {cost.train_images_per_s:6.2f} train img/s", flush=True)
    median = {label: statistics.median(values) for label, values in rates.items()}
    print(f"\n{device}, batch {args.batch}, {args.resolution}x{args.resolution}, torch {torch.__version__}; "
          f"median of {args.rounds} rounds x {args.iterations} timed train steps")
    for label, value in median.items():
        print(f"{label:>15}: {value:6.2f} train images/s")
    header = f"{'ratio':>20} | {'this machine':>12} | " + " | ".join(f"{name:>17}" for name in PAPER)
    print("\n" + header)
    for numerator, denominator, name in RATIOS:
        paper = " | ".join(f"{table[numerator] / table[denominator]:>16.2f}x" for table in PAPER.values())
        print(f"{name:>20} | {median[numerator] / median[denominator]:>11.2f}x | {paper}")


if __name__ == "__main__":
    main()
