"""Command line of run_roadmap.py: argument parsing and dispatch, nothing else.

Every user error ends as one line on stderr and exit code 2, with the valid choices named.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import NoReturn, Sequence

import pandas as pd
import torch

from roadmap.compare import CompareError, check_comparable, compare_runs
from roadmap.complexity import CONVENTION
from roadmap.complexity_report import complexity_table
from roadmap.cost import parse_cost_settings
from roadmap.cost_study import main as cost_study
from roadmap.data import DATASETS, DataError
from roadmap.files import NotWritable, UnreadableFile, check_writable_folder
from roadmap.launch import EXECUTORS, ClusterOptions, LaunchError, choose_executor, local_cuda, train_roadmap
from roadmap.models import MODELS
from roadmap.plan import plan_table
from roadmap.precision import PRECISIONS, Numerics, NumericsError
from roadmap.results import RunNotFound, report, summary
from roadmap.roadmaps import ROADMAPS, RoadmapError, roadmap_entries
from roadmap.run_files import RunPaths
from roadmap.runs import RunError, RunOptions, plan_run, rows_for
from roadmap.spec import SpecError
from roadmap.training_presets import PRESETS as TRAINING_PRESETS
from roadmap.training_presets import PresetError
from steps import REGISTRY, canonical_name


class UsageError(Exception):
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
    parser.add_argument("--roadmap", default="resnet50", help=choices_help(
        "", {name: roadmap.description for name, roadmap in ROADMAPS.items()}))
    parser.add_argument("--upto", default=None, help="last step to include (names accept - or _)")
    parser.add_argument("--model", default=None, metavar="NAME",
                        help="a model family preset instead of the roadmap (e.g. convnext_small); "
                        "--steps then apply on top of it; --list-models lists them")
    parser.add_argument("--list-models", action="store_true", help="list the model families (members for --model)")
    parser.add_argument("--resolution", type=positive_multiple_of_32, default=224,
                        help="input side for complexity counts (default 224)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format; csv and json print nothing else on stdout")


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
    group.add_argument("--preset", default="cpu", help=choices_help(
        "how big a run is: ", {name: preset.description for name, preset in TRAINING_PRESETS.items()}))
    group.add_argument("--branches", action="store_true", help="also train the branch rows (kernel 5/9/11)")
    group.add_argument("--mode", default="cumulative", help="cumulative (default), leave-one-out or single")
    group.add_argument("--steps", default=None, help="a custom comma-separated sequence of steps, applied cumulatively")
    group.add_argument("--seeds", type=positive_int, default=1, help="seeds per step (the paper used 3)")
    group.add_argument("--epochs", type=positive_int, default=None, help="override every step's epochs")
    group.add_argument("--batch-size", type=positive_int, default=None, help="images per device per step")
    group.add_argument("--accumulation", type=positive_int, default=None, help="gradient accumulation steps")
    group.add_argument("--workers", type=non_negative_int, default=None, help="data loader worker processes")
    group.add_argument("--measure-cost", action="store_true", default=None,
                        help="after training, time each step's full-size network at 224 px (default: paper preset only)")
    group.add_argument("--mask-ratio", type=float, default=None, metavar="R",
                       help="FCMAE rows: fraction of the 32 px patches masked in pre-training (default 0.6, the paper's)")
    group.add_argument("--results", default="results", metavar="DIR", help="results folder (default results/)")
    group.add_argument("--run", default=None, metavar="NAME", help="run name (default <roadmap>-<preset>-<dataset>)")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--dataset", default="synthetic", help=choices_help("", DATASETS))
    group.add_argument("--data", default=None, metavar="PATH", help="dataset folder (folder: train/ and val/ with class subfolders)")
    group.add_argument("--shrink", type=positive_int, default=None, metavar="PX",
                       help="opt-in: train on a one-time pre-shrunk copy of a folder dataset (shorter side <= PX, "
                       "e.g. 256; JPEG q95): faster decoding, different pixels, named in results")
    group.add_argument("--shrink-format", choices=("jpeg", "ppm"), default="jpeg",
                       help="how --shrink stores its copy: jpeg (q95, default) or ppm (uncompressed: the same resized "
                       "pixels without re-encoding, fastest to read, about 5x the disk)")
    group.add_argument("--cache-dir", default=None, metavar="DIR",
                       help="where --shrink keeps its copy (default ~/.cache/roadmap/shrunk)")
    group.add_argument("--classes", type=positive_int, default=None, metavar="N",
                       help="train on N classes of a folder dataset, drawn with a fixed seed and recorded "
                       "(ImageNet-100 style)")


def add_numerics_arguments(parser: argparse.ArgumentParser) -> None:
    numerics = parser.add_argument_group("numerics (recorded in every result)")
    numerics.add_argument("--precision", choices=PRECISIONS, default=None,
                          help="bf16 (default on a GPU), fp16, tf32 (GPU only) or fp32 (default on the CPU)")
    numerics.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                          help="channels-last memory format (default: on with a GPU, off on the CPU)")
    numerics.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                          help="torch.compile the network (default: on with a GPU for --preset paper, otherwise off)")
    numerics.add_argument("--deterministic", action="store_true",
                          help="bit-reproducible GPU kernels (slower; the CPU is deterministic anyway)")
    numerics.add_argument("--cost-settings", default=None, metavar="LIST",
                          help="comma-separated settings of --measure-cost (default: paper,bf16-cl,bf16-compiled "
                          "on a GPU, fp32 on the CPU)")


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    launch = parser.add_argument_group("launch (submitit)")
    launch.add_argument("--executor", default="auto", choices=EXECUTORS,
                        help="auto (default: slurm when a controller answers, else local), local, debug, slurm")
    launch.add_argument("--partition", default=None)
    launch.add_argument("--nodes", type=positive_int, default=1)
    launch.add_argument("--gpus-per-node", type=non_negative_int, default=0)
    launch.add_argument("--tasks-per-node", type=positive_int, default=1,
                        help="processes per node; several make one data-parallel step")
    launch.add_argument("--cpus-per-task", type=positive_int, default=None)
    launch.add_argument("--mem-gb", type=positive_int, default=None)
    launch.add_argument("--time-min", type=positive_int, default=24 * 60, help="time limit per job in minutes")
    launch.add_argument("--account", default=None)
    launch.add_argument("--qos", default=None)
    launch.add_argument("--constraint", default=None)
    launch.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                        help="extra sbatch option, repeatable (e.g. --sbatch exclusive=)")
    launch.add_argument("--max-parallel", type=positive_int, default=None, help="job array tasks running at once")
    launch.add_argument("--no-wait", action="store_true", help="return once submitted and print the job ids")
    launch.add_argument("--plan", action="store_true",
                        help="print the estimated device-hours of every step and the total, then stop")
    launch.add_argument("--throughput", type=float, default=None, metavar="IMAGES_PER_S",
                        help="model train images/s for --plan (default: measured here on each step's network at the run's batch)")
    launch.add_argument("--loader-throughput", type=float, default=None, metavar="IMAGES_PER_S",
                        help="loader images/s for --plan (default: measured here on the run's data and workers)")
    launch.add_argument("--images-per-epoch", type=positive_int, default=None,
                        help="for --plan: images per epoch of the real dataset (e.g. 1281167 for ImageNet-1K)")


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="run_roadmap.py",
        description="Rerun the ConvNeXt 'modernizing a ResNet' roadmap: complexity, training, reports. "
        "`run_roadmap.py report --run NAME` rebuilds the table and figures of a run.",
    )
    add_selection_arguments(parser)
    parser.add_argument("--flops-only", action="store_true",
                        help="print the complexity table of every step without training")
    parser.add_argument("--list", action="store_true", help="list the steps of the roadmap with their labels")
    add_training_arguments(parser)
    add_data_arguments(parser)
    add_numerics_arguments(parser)
    add_launch_arguments(parser)
    return parser


def build_report_parser() -> OneLineParser:
    parser = OneLineParser(prog="run_roadmap.py report", description="Rebuild the table and figures of a run.")
    parser.add_argument("--run", required=True, metavar="NAME")
    parser.add_argument("--results", default="results", metavar="DIR")
    parser.add_argument("--compare", default=None, metavar="OTHER",
                        help="also measure agreement with run OTHER of the same roadmap (report/vs-OTHER/)")
    return parser


def print_frame(frame, output_format: str, caption: str) -> None:
    """Print a DataFrame as an aligned table (with caption) or as machine-readable CSV / JSON."""
    if output_format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output_format == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
    else:
        print(frame.to_string(index=False, na_rep="-"))
        print(caption)


def run_list(roadmap: str, output_format: str) -> None:
    frame = pd.DataFrame.from_records(
        {
            "step": entry.step,
            "label": REGISTRY[entry.step].label,
            "branch_of": REGISTRY[entry.step].branch_of or "",
            "description": REGISTRY[entry.step].description,
        }
        for entry in roadmap_entries(roadmap) if not entry.hidden
    )
    print_frame(frame, output_format, f"Roadmap {roadmap}: {len(frame)} rows.")


def run_list_models(output_format: str) -> None:
    frame = pd.DataFrame.from_records(
        {"model": entry.name, "description": entry.description,
         "timm_counterpart": "yes" if entry.weights_family else "no"}
        for entry in MODELS.values()
    )
    print_frame(frame, output_format, f"{len(frame)} models; use one with --model NAME.")


def run_flops_only(args: argparse.Namespace) -> None:
    # Complexity is free to compute: the table always includes the branch rows.
    options = dataclasses.replace(run_options(args), branches=True)
    frame = complexity_table(rows_for(options).rows, args.roadmap, args.resolution)
    output_format, resolution = args.format, args.resolution
    notes = [f"{row.step}: {row.note}" for row in frame.itertuples() if row.note]
    if output_format == "table":
        frame = frame.assign(gflops=[f"{value:.3f}{'*' if note else ''}" for value, note in zip(frame.gflops, frame.note)])
        frame = frame.drop(columns="note")
    caption = f"Complexity at {resolution}x{resolution}. {CONVENTION}."
    if notes:
        caption += "\n* differs from the paper's printed value:\n" + "\n".join(f"  {note}" for note in notes)
    print_frame(frame, output_format, caption)


def run_options(args: argparse.Namespace) -> RunOptions:
    try:
        cost_settings = parse_cost_settings(args.cost_settings) if args.cost_settings else ()
    except ValueError as error:
        raise UsageError(str(error)) from None
    steps = (tuple(canonical_name(name) for name in args.steps.split(",") if name.strip())
             if args.steps is not None else None)
    return RunOptions(
        roadmap=canonical_name(args.roadmap), upto=args.upto, branches=args.branches,
        mode=canonical_name(args.mode), steps=steps, model=args.model, preset=args.preset, dataset=args.dataset,
        data_path=args.data, seeds=args.seeds, epochs=args.epochs, batch_size=args.batch_size,
        accumulation=args.accumulation, devices=args.tasks_per_node * args.nodes, workers=args.workers,
        results=args.results, run=args.run, measure_cost=args.measure_cost, cost_settings=cost_settings,
        numerics=Numerics(args.precision, args.channels_last, args.compile, args.deterministic),
        shrink=args.shrink, shrink_format=args.shrink_format, cache_dir=args.cache_dir, classes=args.classes, mask_ratio=args.mask_ratio,
    )


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    extra = {}
    for item in args.sbatch:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise UsageError(f"--sbatch takes KEY=VALUE (e.g. --sbatch exclusive=), got {item!r}")
        extra[key.lstrip("-")] = value
    return ClusterOptions(
        partition=args.partition, nodes=args.nodes, gpus_per_node=args.gpus_per_node,
        tasks_per_node=args.tasks_per_node, cpus_per_task=args.cpus_per_task, mem_gb=args.mem_gb,
        time_min=args.time_min, account=args.account, qos=args.qos, constraint=args.constraint,
        sbatch_args=extra, max_parallel=args.max_parallel,
    )


def run_plan(args: argparse.Namespace) -> None:
    for option, value in (("--throughput", args.throughput), ("--loader-throughput", args.loader_throughput)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{option} must be a positive number of images per second, got {value}")
    plan = plan_run(run_options(args))
    table = plan_table(plan, args.throughput, loader_throughput=args.loader_throughput,
                       images_per_epoch=args.images_per_epoch)
    total = table.device_hours.sum()
    pretraining = bool(table.pretrain_device_hours.any())
    if args.format == "table":
        hours = {name: table[name].map(lambda value: f"{value:.3g}") for name in ("device_hours", "pretrain_device_hours")}
        table = table.assign(**hours) if pretraining else table.assign(**hours).drop(columns="pretrain_device_hours")
    caption = (
        f"Plan of run {plan.info['run']} (preset {plan.info['preset']}, {plan.info['dataset_description']}; "
        f"pixels: {plan.info['pixels']}). images/s = min(model, loader), each given or measured here at the "
        f"run's batch (the model after a warm-up, the loader on the run's data with its workers); device-hours = seeds x "
        f"epochs x images per epoch / images/s (training only; evaluation and start-up not included)"
        + ("; FCMAE rows add their pre-training (pretrain_device_hours, encoder timed at the pre-training batch)"
           if pretraining else "") + f". Total: {total:.3g} device-hours."
    )
    print_frame(table, args.format, caption)


def run_training(args: argparse.Namespace) -> int:
    if args.plan:
        run_plan(args)
        return 0
    kind = choose_executor(args.executor, say=print)
    if kind != "slurm" and not local_cuda():
        # Checked before anything is written: here the jobs run on this machine's CPU.
        Numerics(args.precision).for_device(torch.device("cpu"))
    if kind != "slurm" and args.nodes > 1:
        raise UsageError(f"--nodes {args.nodes} needs --executor slurm; the {kind} executor runs on this machine")
    _, failed = train_roadmap(run_options(args), kind, cluster_options(args), wait=not args.no_wait)
    return 1 if failed else 0


def write_report(run_dir: Path, compare: str | None = None) -> None:
    if compare is not None:  # both runs must exist and match before anything is written
        check_comparable(run_dir, run_dir.parent / compare)
    written = report(run_dir)
    print(f"report: {RunPaths(run_dir).report} ({len(written)} files: table.csv/.md/.tex and figures)")
    text = summary(run_dir)
    if text:
        print(text)
    if compare is not None:
        paths, text = compare_runs(run_dir, run_dir.parent / compare)
        print(f"comparison: {paths['agreement_json'].parent}\n{text}")


def run_report(argv: Sequence[str]) -> int:
    args = build_report_parser().parse_args(argv)
    run_dir = Path(args.results) / args.run
    try:
        if RunPaths(run_dir).plan.is_file():
            check_writable_folder(run_dir, what="run folder")  # the report goes to run_dir/report
        write_report(run_dir, args.compare)
    except (RunNotFound, CompareError) as error:
        raise UsageError(str(error)) from None
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv and argv[0] == "report":
            return run_report(argv[1:])
        if argv and argv[0] == "cost":
            return cost_study(argv[1:])
        args = parser.parse_args(argv)
        roadmap_entries(args.roadmap)  # validates the name before any work
        if args.list:
            run_list(args.roadmap, args.format)
        elif args.list_models:
            run_list_models(args.format)
        elif args.flops_only:
            run_flops_only(args)
        else:
            return run_training(args)
    except (UsageError, RoadmapError, SpecError, RunError, PresetError, DataError, LaunchError,
            NumericsError, UnreadableFile, NotWritable) as error:
        print(f"run_roadmap.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("run_roadmap.py: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
