"""The command line's arguments: the parsers of run_roadmap.py and of its `report` command.

Choices and help come from the registries (roadmaps, training presets, datasets) where one exists.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from roadmap.cost.numerics import PRECISIONS
from roadmap.data.datasets import DATASETS
from roadmap.data.device_decode import EVAL_DECODES
from roadmap.errors import UserError
from roadmap.launch.executors import EXECUTORS
from roadmap.network.roadmaps import ROADMAPS
from roadmap.train.presets import PRESETS as TRAINING_PRESETS


class UsageError(UserError):
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


def choices_help(prefix: str, described: dict[str, str]) -> str:
    """Help text listing a registry's names with their descriptions ('%' escaped for argparse)."""
    return (prefix + "; ".join(f"{name}: {text}" for name, text in described.items())).replace("%", "%%")


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--roadmap",
        default="resnet50",
        help=choices_help("", {name: roadmap.description for name, roadmap in ROADMAPS.items()}),
    )
    parser.add_argument("--upto", default=None, help="last step to include (names accept - or _)")
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="a model family preset instead of the roadmap (e.g. convnext_small); "
        "--steps then apply on top of it; --list-models lists them",
    )
    parser.add_argument("--list-models", action="store_true", help="list the model families (members for --model)")
    parser.add_argument(
        "--resolution", type=positive_multiple_of_32, default=224, help="input side for complexity counts (default 224)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="output format; csv and json print nothing else on stdout",
    )


def bounded_int(minimum: int, meaning: str):
    """An argparse type: an integer >= `minimum`, with a message that says what is expected."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {meaning}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {value}")
        return value

    return parse


positive_int = bounded_int(1, "a positive integer")
non_negative_int = bounded_int(0, "an integer >= 0")


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--preset",
        default="cpu",
        help=choices_help(
            "how big a run is: ", {name: preset.description for name, preset in TRAINING_PRESETS.items()}
        ),
    )
    group.add_argument("--branches", action="store_true", help="also train the branch rows (kernel 5/9/11)")
    group.add_argument("--mode", default="cumulative", help="cumulative (default), leave-one-out or single")
    group.add_argument("--steps", default=None, help="a custom comma-separated sequence of steps, applied cumulatively")
    group.add_argument("--seeds", type=positive_int, default=1, help="seeds per step (the paper used 3)")
    group.add_argument("--epochs", type=positive_int, default=None, help="override every step's epochs")
    group.add_argument("--batch-size", type=positive_int, default=None, help="images per device per step")
    group.add_argument("--accumulation", type=positive_int, default=None, help="gradient accumulation steps")
    group.add_argument("--workers", type=non_negative_int, default=None, help="data loader worker processes")
    group.add_argument(
        "--measure-cost",
        action="store_true",
        default=None,
        help="after training, time each step's full-size network at 224 px (default: paper preset only)",
    )
    group.add_argument(
        "--mask-ratio",
        type=float,
        default=None,
        metavar="R",
        help="FCMAE rows: fraction of the 32 px patches masked in pre-training (default 0.6, the paper's)",
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="[RECIPE.]FIELD=VALUE",
        help="override a recipe field of every row (e.g. --set lr=2e-3), or only of rows whose recipe is RECIPE "
        "(--set legacy.epochs=100; pretrain.FIELD: FCMAE pre-training); values as the paper states them, "
        "before the preset scales the schedule; repeatable",
    )
    group.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="overrides from a TOML or YAML file: a table `set` of FIELD = VALUE and [set.RECIPE] tables",
    )
    group.add_argument(
        "--init",
        default=None,
        metavar="PATH",
        help="start every step from these weights instead of its initialisation: a finished step's checkpoint.pt, "
        "a file written by `run_roadmap.py export`, or a timm state dict of a network with a timm counterpart "
        "(names and shapes must match each row's network; the file's sha256 is part of each step's key)",
    )
    group.add_argument("--results", default="results", metavar="DIR", help="results folder (default results/)")
    group.add_argument("--run", default=None, metavar="NAME", help="run name (default <roadmap>-<preset>-<dataset>)")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="synthetic", help=choices_help("", DATASETS))
    group.add_argument(
        "--data", default=None, metavar="PATH", help="dataset folder (folder: train/ and val/ with class subfolders)"
    )
    group.add_argument(
        "--shrink",
        type=positive_int,
        default=None,
        metavar="PX",
        help="opt-in: train on a one-time pre-shrunk copy of a folder dataset (shorter side <= PX, "
        "e.g. 256; JPEG q95): faster decoding, different pixels, named in results",
    )
    group.add_argument(
        "--eval-decode",
        choices=EVAL_DECODES,
        default="cpu",
        help="opt-in: device decodes a folder's validation JPEGs (nvJPEG on a GPU) and resizes them with torch; "
        "faster evaluation, slightly different pixels, named in results (default cpu: PIL, the paper's pipeline)",
    )
    group.add_argument(
        "--shrink-format",
        choices=("jpeg", "ppm"),
        default="jpeg",
        help="how --shrink stores its copy: jpeg (q95, default) or ppm (uncompressed: the same resized "
        "pixels without re-encoding, fastest to read, about 5x the disk)",
    )
    group.add_argument(
        "--cache-dir",
        default=None,
        metavar="DIR",
        help="where --shrink keeps its copy (default ~/.cache/roadmap/shrunk)",
    )
    group.add_argument(
        "--classes",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on N classes of a folder dataset, drawn with a fixed seed and recorded (ImageNet-100 style)",
    )


def add_numerics_arguments(parser: argparse.ArgumentParser) -> None:
    numerics = parser.add_argument_group("numerics (recorded in every result)")
    numerics.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="bf16 (default on a GPU), fp16, tf32 (GPU only) or fp32 (default on the CPU)",
    )
    numerics.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels-last memory format (default: on with a GPU, off on the CPU)",
    )
    numerics.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="torch.compile the network (default: on with a GPU for --preset paper, otherwise off)",
    )
    numerics.add_argument(
        "--deterministic",
        action="store_true",
        help="bit-reproducible GPU kernels (slower; the CPU is deterministic anyway)",
    )
    numerics.add_argument(
        "--cost-settings",
        default=None,
        metavar="LIST",
        help="comma-separated settings of --measure-cost (default: paper,bf16-cl,bf16-compiled "
        "on a GPU, fp32 on the CPU)",
    )


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    launch = parser.add_argument_group("launch (submitit)")
    launch.add_argument(
        "--executor",
        default="auto",
        choices=EXECUTORS,
        help="auto (default: slurm when a controller answers, else local), local, debug, slurm",
    )
    launch.add_argument("--partition", default=None)
    launch.add_argument("--nodes", type=positive_int, default=1)
    launch.add_argument("--gpus-per-node", type=non_negative_int, default=0)
    launch.add_argument(
        "--tasks-per-node", type=positive_int, default=1, help="processes per node; several make one data-parallel step"
    )
    launch.add_argument("--cpus-per-task", type=positive_int, default=None)
    launch.add_argument("--mem-gb", type=positive_int, default=None)
    launch.add_argument("--time-min", type=positive_int, default=24 * 60, help="time limit per job in minutes")
    launch.add_argument("--account", default=None)
    launch.add_argument("--qos", default=None)
    launch.add_argument("--constraint", default=None)
    launch.add_argument(
        "--sbatch",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch option, repeatable (e.g. --sbatch exclusive=)",
    )
    launch.add_argument("--max-parallel", type=positive_int, default=None, help="job array tasks running at once")
    launch.add_argument("--no-wait", action="store_true", help="return once submitted and print the job ids")
    launch.add_argument(
        "--wandb",
        default=None,
        metavar="PROJECT",
        help='also log every step x seed to this W&B project (needs pip install ".[wandb]"; '
        "WANDB_MODE=offline works); TensorBoard events are always written",
    )
    launch.add_argument(
        "--plan", action="store_true", help="print the estimated device-hours of every step and the total, then stop"
    )
    launch.add_argument(
        "--throughput",
        type=float,
        default=None,
        metavar="IMAGES_PER_S",
        help="model train images/s for --plan (default: measured here on each step's network at the run's batch)",
    )
    launch.add_argument(
        "--loader-throughput",
        type=float,
        default=None,
        metavar="IMAGES_PER_S",
        help="loader images/s for --plan (default: measured here on the run's data and workers)",
    )
    launch.add_argument(
        "--images-per-epoch",
        type=positive_int,
        default=None,
        help="for --plan: images per epoch of the real dataset (e.g. 1281167 for ImageNet-1K)",
    )


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="run_roadmap.py",
        description="Rerun the ConvNeXt 'modernizing a ResNet' roadmap: complexity, training, reports. "
        "`run_roadmap.py report --run NAME` rebuilds the table and figures of a run; `run_roadmap.py eval` / "
        "`export --run NAME --step STEP` score / export a finished step's saved weights.",
    )
    add_selection_arguments(parser)
    parser.add_argument(
        "--flops-only", action="store_true", help="print the complexity table of every step without training"
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list every registered step: its label, the roadmaps that make it a row, their timm model names",
    )
    add_training_arguments(parser)
    add_data_arguments(parser)
    add_numerics_arguments(parser)
    add_launch_arguments(parser)
    return parser


def build_report_parser() -> OneLineParser:
    parser = OneLineParser(prog="run_roadmap.py report", description="Rebuild the table and figures of a run.")
    parser.add_argument("--run", required=True, metavar="NAME")
    parser.add_argument("--results", default="results", metavar="DIR")
    parser.add_argument(
        "--compare",
        default=None,
        metavar="OTHER",
        help="also measure agreement with run OTHER of the same roadmap (report/vs-OTHER/)",
    )
    return parser


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """Which finished step x seed a command reads: run, row, seed and results folder."""
    parser.add_argument("--run", required=True, metavar="NAME")
    parser.add_argument("--step", required=True, metavar="STEP", help="a row of the run (names accept - or _)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="which seed of the row (default 0)")
    parser.add_argument("--results", default="results", metavar="DIR")


def build_eval_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="run_roadmap.py eval",
        description="Evaluate a finished step's saved final weights (raw, and the EMA where the step has one) on "
        "the step's own validation data, as its training evaluated them; prints top-1/top-5 beside result.json's.",
    )
    add_step_arguments(parser)
    return parser


def build_export_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="run_roadmap.py export",
        description="Write a finished step's weights as a plain state dict (torch.save) and its spec beside it "
        "(<FILE stem>.spec.json), for timm.create_model or --init.",
    )
    add_step_arguments(parser)
    parser.add_argument("--out", required=True, metavar="FILE", help="the state dict to write (e.g. x.pth)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--ema", dest="weights", action="store_const", const="ema", help="the EMA's weights (default where reported)"
    )
    weights.add_argument("--raw", dest="weights", action="store_const", const="raw", help="the raw model's weights")
    return parser
