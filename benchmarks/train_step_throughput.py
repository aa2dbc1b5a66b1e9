"""Benchmark: train-step throughput of our spec-built networks against timm's, side by side.

Run: python benchmarks/train_step_throughput.py [--device cpu|cuda] [--compile] [--precision bf16]
         [--channels-last | --no-channels-last] [--batch N] [--resolution N] [--rounds 11] [--steps 4]
         [--models resnet50,convnext_tiny,inception_next_tiny,convnextv2_tiny]

Each model is built twice, from our preset (`roadmap.model(name)`, the timm name) and by
`timm.create_model(name)` with the same stochastic-depth rate. A train step is forward +
cross-entropy + backward + AdamW update in train mode (`roadmap.cost.measure.train_step`), under the
numerics of `roadmap.cost.numerics` (defaults: bf16 + channels-last on CUDA, fp32 + NCHW on the CPU).
With --compile each network is also compiled (`torch.compile`, default mode) and timed both ways in
the same rounds: compiled against compiled, eager against eager, and ours compiled against ours
eager. Rounds alternate the order of the implementations so that drift of the machine (thermal,
other processes) hits all alike; each figure is the median images per second over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

import timm
import torch

from roadmap import build
from roadmap.cost.measure import default_steps, prepare, timed, train_step
from roadmap.cost.numerics import PRECISIONS, Numerics, describe_device
from roadmap.network.families import model as model_spec

MODELS = ("resnet50", "convnext_tiny", "inception_next_tiny", "convnextv2_tiny")
LABELS = {
    "resnet50": "ResNet-50",
    "convnext_tiny": "ConvNeXt-T",
    "inception_next_tiny": "InceptionNeXt-T",
    "convnextv2_tiny": "ConvNeXt V2-T",
}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time compiled networks (compiled vs eager)")
    parser.add_argument("--precision", choices=PRECISIONS, help="default: bf16 on CUDA, fp32 on the CPU")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on with CUDA, off on the CPU",
    )
    parser.add_argument("--batch", type=int, help="default 128 on CUDA, 32 on the CPU")
    parser.add_argument("--resolution", type=int, help="default 224 on CUDA, 64 on the CPU")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, help="timed steps per round (default 20 on CUDA, 4 on the CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps before the rounds (default 10 on CUDA, 2 on the CPU)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from: {', '.join(MODELS)}")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.batch = args.batch or (128 if cuda else 32)
    args.resolution = args.resolution or (224 if cuda else 64)
    args.warmup = default_steps(torch.device(args.device))[0] if args.warmup is None else args.warmup
    args.steps = args.steps or (20 if cuda else 4)
    args.models = [name.strip() for name in args.models.split(",") if name.strip()]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from: {', '.join(MODELS)}")
    return args


def _steps(
    name: str,
    numerics: Numerics,
    device: torch.device,
    images: torch.Tensor,
    labels: torch.Tensor,
    modes: tuple[bool, ...],
) -> dict[tuple[str, bool], Callable[[], None]]:
    """{(implementation, compiled): train step} of our and timm's `name`, on the same input."""
    spec = model_spec(name)
    models = {"ours": build(spec), "timm": timm.create_model(name, drop_path_rate=spec.recipe.drop_path_rate)}
    steps = {}
    for implementation, model in models.items():
        model = prepare(model.train(), numerics, device)  # numerics are eager: compiled below
        for compiled in modes:
            network = torch.compile(model) if compiled else model
            steps[(implementation, compiled)] = train_step(network, numerics, device, images, labels)
    return steps


def _rates(steps: dict, args: argparse.Namespace, device: torch.device) -> dict[tuple[str, bool], float]:
    """Median images/s of each step over alternating rounds, after an untimed warm-up."""
    for step in steps.values():  # compilation, cuDNN autotuning, allocator, oneDNN kernel selection
        timed(step, args.warmup, 0, device)
    rates: dict[tuple[str, bool], list[float]] = {key: [] for key in steps}
    for round_index in range(args.rounds):
        order = list(steps) if round_index % 2 == 0 else list(reversed(steps))
        for key in order:
            _, seconds = timed(steps[key], 0, args.steps, device)
            rates[key].append(args.steps * args.batch / seconds)
    return {key: statistics.median(values) for key, values in rates.items()}


def main() -> None:
    args = _arguments()
    device = torch.device(args.device)
    numerics = Numerics(precision=args.precision, channels_last=args.channels_last, compile=False).for_device(device)
    numerics.apply(device)
    modes = (False, True) if args.compile else (False,)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, args.resolution, args.resolution, device=device)
    images = images.contiguous(memory_format=numerics.memory_format)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    print(
        f"{describe_device(device)}, {numerics.describe().replace(', eager', '')}, batch {args.batch}, "
        f"{args.resolution}x{args.resolution}, warm-up {args.warmup}, {args.rounds} rounds x {args.steps} steps, "
        f"torch {torch.__version__}, timm {timm.__version__}"
    )
    for name in args.models:
        rates = _rates(_steps(name, numerics, device, images, labels, modes), args, device)
        for compiled in modes:
            ours, reference = rates[("ours", compiled)], rates[("timm", compiled)]
            print(
                f"{LABELS[name]:>15} {'compiled' if compiled else 'eager':>8}: ours {ours:8.1f} img/s, "
                f"timm {reference:8.1f} img/s, ours / timm {ours / reference:.3f}",
                flush=True,
            )
        if args.compile:
            print(
                f"{LABELS[name]:>15} ours compiled / eager: {rates[('ours', True)] / rates[('ours', False)]:.2f}x; "
                f"timm: {rates[('timm', True)] / rates[('timm', False)]:.2f}x",
                flush=True,
            )
        torch.compiler.reset()
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
