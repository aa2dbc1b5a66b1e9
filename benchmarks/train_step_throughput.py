"""Benchmark: train-step throughput of our ResNet-50 and ConvNeXt-T against timm's, side by side.

Run: python benchmarks/train_step_throughput.py [--batch 32] [--resolution 64] [--rounds 5] [--steps 4]
A train step is forward + cross-entropy + backward + AdamW update, on CPU, fp32, in train mode.
Measurements alternate between the two implementations round by round so that drift of the machine
(thermal, other processes) hits both alike; the figure is the ratio of median images per second.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
from torch import nn

from roadmap import build
from roadmap.roadmaps import specs

PAIRS = (("resnet50", "resnet50", "resnet50"), ("sep_ds", "convnext_tiny", "ConvNeXt-T"))


def timed_steps(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor, steps: int) -> float:
    """Images per second over `steps` train steps."""
    loss_function = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_function(model(images), labels).backward()
        optimizer.step()
    return steps * images.shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.resolution, args.resolution)
    labels = torch.randint(0, 1000, (args.batch,))
    rows = dict(specs("resnet50"))
    print(f"batch {args.batch}, {args.resolution}x{args.resolution}, CPU fp32, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, timm {timm.__version__}")
    for step, timm_name, label in PAIRS:
        # The same network on both sides, stochastic depth included (the modern recipe's rate).
        drop_path = rows[step].recipe.drop_path_rate
        models = {"ours": build(rows[step]).train(),
                  "timm": timm.create_model(timm_name, drop_path_rate=drop_path).train()}
        optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-4) for name, model in models.items()}
        for name in models:  # warm-up: allocator, oneDNN kernel selection
            timed_steps(models[name], optimizers[name], images, labels, 2)
        rates: dict[str, list[float]] = {name: [] for name in models}
        for round_index in range(args.rounds):
            order = list(models) if round_index % 2 == 0 else list(reversed(models))
            for name in order:
                rates[name].append(timed_steps(models[name], optimizers[name], images, labels, args.steps))
        ours, reference = statistics.median(rates["ours"]), statistics.median(rates["timm"])
        print(f"{label:>10} (drop path {drop_path}): ours {ours:7.1f} img/s, timm {reference:7.1f} img/s, ratio {ours / reference:.3f}")


if __name__ == "__main__":
    main()
