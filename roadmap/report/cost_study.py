"""The cost study: where FLOPs and speed part ways, and in which settings the papers' speed claims hold.

    python run_roadmap.py cost [--settings paper,bf16-cl,bf16-compiled] [--rows resnet50,sep_ds,...]
                               [--batch 128] [--resolution 224] [--rounds 1] [--out DIR]

Builds the full-size network of each roadmap row (ResNet-50, ConvNeXt-T = `sep_ds`, InceptionNeXt-T
= `inception`, InceptionNeXt's Table 1 variants of ConvNeXt-T, and on request any other row of the
roadmaps, e.g. `kernel9` or `grn`), times train steps and inference batches under each named cost
setting (`roadmap.cost.measure.COST_SETTINGS`), and reports (a) rows x settings of images/s beside GFLOPs,
(b) InceptionNeXt's Table 1 and Table 4 speed ratios beside the paper's A100 and 2080Ti figures,
with whether each claim holds per setting, (c) a figure of GFLOPs against train speed per setting.
With --rounds N every row x setting is measured N times, in alternating order, and the median kept.
Progress goes to stderr, tables to stdout; --out writes cost.csv, cost_ratios.md, cost_ratios.csv
and cost_speed.png/pdf.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from roadmap.cost.measure import Cost, default_steps, measure_setting, median_cost
from roadmap.cost.numerics import describe_device, environment
from roadmap.cost.settings import COST_SETTINGS, default_cost_settings, parse_cost_settings, unavailable_settings
from roadmap.errors import UserError
from roadmap.network.complexity import complexity
from roadmap.network.families import row_label
from roadmap.network.roadmaps import specs
from roadmap.report.cost_figures import cost_table, ratio_markdown, ratio_table, speed_figure
from roadmap.report.plots.style import save_figure
from roadmap.spec import Spec

PROGRAM = "run_roadmap.py cost"
# InceptionNeXt's Table 4 rows and the Table 1 variants of ConvNeXt-T.
DEFAULT_ROWS = (
    "resnet50",
    "sep_ds",
    "inception",
    "k5",
    "k3",
    "k3_par1_2",
    "k3_par3_8",
    "k3_par1_4",
    "k3_par1_8",
    "k3_par1_16",
)
DEFAULT_BATCH = {"cuda": 128, "cpu": 16}
CPU_STEPS = (1, 3)  # the study's CPU default: one full-size step at 224 takes seconds


class StudyError(UserError, ValueError):
    """Bad input to the cost study; main prints it as one line and returns 2."""


def study_rows() -> dict[str, Spec]:
    """Every row the study can measure: the inceptionnext roadmap (the ResNet-50 path with its kernel
    branches, InceptionNeXt-T and Table 1's variants) and ConvNeXt V2's `grn`."""
    rows = dict(specs("inceptionnext"))
    rows["grn"] = dict(specs("convnext_v2", upto="grn"))["grn"]
    return rows


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit status 2, raised to main
        raise StudyError(message)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog=PROGRAM,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="settings: " + "; ".join(f"{s.name} = {s.description}" for s in COST_SETTINGS.values()),
    )
    parser.add_argument(
        "--settings",
        help="comma-separated cost settings (default on CUDA: paper,bf16-cl,bf16-compiled; on the CPU: fp32)",
    )
    parser.add_argument("--rows", help=f"comma-separated rows, or 'all' (default: {','.join(DEFAULT_ROWS)})")
    parser.add_argument("--batch", type=_positive, help="images per step (default 128 on CUDA, 16 on the CPU)")
    parser.add_argument("--resolution", type=_positive, default=224)
    parser.add_argument("--warmup", type=_count, help="untimed steps per phase (default 10 on CUDA, 1 on the CPU)")
    parser.add_argument("--iterations", type=_positive, help="timed steps per phase (default 20 on CUDA, 3 on the CPU)")
    parser.add_argument("--rounds", type=_positive, default=1, help="measurements per row x setting (median)")
    parser.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--out", type=Path, help="folder for cost.csv, cost_ratios.md/.csv, cost_speed.png/pdf")
    return parser


def _options(argv: Sequence[str]) -> argparse.Namespace:
    """Parsed and checked arguments, every default resolved for the device."""
    args = _parser().parse_args(list(argv))
    if args.device is not None and args.device not in ("cuda", "cpu"):
        raise StudyError(f"argument --device: choose cuda or cpu, got {args.device!r}")
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.device.type == "cuda" and not torch.cuda.is_available():
        raise StudyError("argument --device: cuda asked for, but torch sees no CUDA device")
    try:
        args.settings = parse_cost_settings(args.settings) if args.settings else default_cost_settings(args.device)
    except ValueError as error:
        raise StudyError(f"argument --settings: {error}") from None
    refused = unavailable_settings(args.settings, args.device)
    if refused:
        raise StudyError("argument --settings: " + "; ".join(refused.values()))
    args.rows = _rows(args.rows)
    cuda = args.device.type == "cuda"
    args.batch = args.batch or DEFAULT_BATCH[args.device.type]
    warmup, iterations = default_steps(args.device) if cuda else CPU_STEPS
    args.warmup = warmup if args.warmup is None else args.warmup
    args.iterations = iterations if args.iterations is None else args.iterations
    return args


def _rows(text: str | None) -> tuple[str, ...]:
    valid = study_rows()
    if text is None:
        return DEFAULT_ROWS
    if text.strip() == "all":
        return tuple(valid)
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise StudyError(
            f"argument --rows: unknown row {', '.join(map(repr, unknown)) or 'list (empty)'}; "
            f"choose from: {', '.join(valid)} (or all)"
        )
    return names


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure_rows(args: argparse.Namespace) -> pd.DataFrame:
    """One record per row x setting: complexity, then the median figures of `args.rounds` measurements."""
    rows = study_rows()
    pairs = [(row, setting) for row in args.rows for setting in args.settings]
    costs: dict[tuple[str, str], list[Cost]] = {pair: [] for pair in pairs}
    total, done = len(pairs) * args.rounds, 0
    for round_index in range(args.rounds):
        for row, setting in pairs if round_index % 2 == 0 else reversed(pairs):
            started = time.perf_counter()
            cost = measure_setting(
                rows[row], setting, args.device, args.batch, args.resolution, args.warmup, args.iterations
            )
            costs[(row, setting)].append(cost)
            done += 1
            _progress(
                f"[{done}/{total}] {row} under {setting}: train {cost.train_images_per_s:.1f}, infer "
                f"{cost.infer_images_per_s:.1f} images/s, batch {cost.batch} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    records = []
    for (row, setting), measured in costs.items():
        counts = complexity(rows[row], args.resolution)
        cost = median_cost(measured)
        records.append(
            {
                "row": row,
                "label": row_label(row),
                "gflops": round(counts.gflops, 3),
                "params_m": round(counts.params / 1e6, 2),
                "setting": setting,
                "rounds": len(measured),
                **cost.to_dict(),
            }
        )
    return pd.DataFrame.from_records(records)


def conditions(args: argparse.Namespace) -> str:
    """What the figures depend on, in one paragraph."""
    env = environment(args.device)
    versions = ", ".join(
        f"{name} {env[name]}" for name in ("torch", "timm", "cuda", "cudnn", "git_commit") if env.get(name)
    )
    return (
        f"Measured on {describe_device(args.device)} ({versions}): full-size networks at "
        f"{args.resolution}x{args.resolution}, batch {args.batch} "
        f"(reduced on out-of-memory), {args.warmup} untimed warm-up + {args.iterations} timed steps per "
        f"phase, median of {args.rounds} round(s). Train step: forward, cross-entropy, backward, AdamW. "
        f"Settings: " + "; ".join(f"{name} = {COST_SETTINGS[name].description}" for name in args.settings) + "."
    )


def write_outputs(measured: pd.DataFrame, ratios: pd.DataFrame, text: str, caption: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    measured.to_csv(out / "cost.csv", index=False)
    ratios.to_csv(out / "cost_ratios.csv", index=False)
    (out / "cost_ratios.md").write_text(text)
    save_figure(speed_figure(measured, caption), out / "cost_speed")


def main(argv: Sequence[str] | None = None) -> int:
    """The `cost` sub-command; returns its exit status (2 on bad input, after one line on stderr)."""
    try:
        args = _options(sys.argv[1:] if argv is None else argv)
    except StudyError as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    _progress(
        f"cost study: {len(args.rows)} rows x {len(args.settings)} settings on "
        f"{describe_device(args.device)}, batch {args.batch}, {args.resolution} px"
    )
    measured = measure_rows(args)
    ratios = ratio_table(measured)
    about = conditions(args)
    text = ratio_markdown(ratios, about)
    print(cost_table(measured).to_markdown(index=False))
    print()
    print(text)
    if args.out is not None:
        write_outputs(measured, ratios, text, about, args.out)
        _progress(f"wrote {args.out}/cost.csv, cost_ratios.md, cost_ratios.csv, cost_speed.png/pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
