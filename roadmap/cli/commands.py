"""Command line of run_roadmap.py: dispatch of the parsed arguments (roadmap.cli.arguments), nothing else.

Every user error ends as one line on stderr and exit code 2, with the valid choices named.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch

from roadmap.cli.arguments import UsageError, build_eval_parser, build_export_parser, build_parser, build_report_parser
from roadmap.cost.numerics import Numerics
from roadmap.cost.processes import quiet_third_party_warnings
from roadmap.cost.settings import parse_cost_settings
from roadmap.data.source import DataSource
from roadmap.errors import UserError
from roadmap.files.atomic import check_writable_folder
from roadmap.files.layout import RunPaths
from roadmap.launch.executors import ClusterOptions, choose_executor, local_cuda
from roadmap.launch.run import train_roadmap
from roadmap.network.complexity import CONVENTION
from roadmap.network.families import MODELS
from roadmap.network.roadmaps import ROADMAPS, roadmap_entries, step_names
from roadmap.network.timm_registry import model_timm_name, timm_name
from roadmap.report.compare import check_comparable, compare_runs
from roadmap.report.cost_study import main as cost_study
from roadmap.report.flops_table import complexity_table
from roadmap.report.write import report, summary
from roadmap.runs.forecast import plan_table
from roadmap.runs.options import RunOptions, check_model_mode, check_options, check_run_name
from roadmap.runs.overrides import collect_overrides
from roadmap.runs.plan import plan_run, rows_for
from roadmap.runs.step_eval import evaluate_step, report_lines
from roadmap.runs.step_export import export_step, timm_line
from roadmap.runs.step_weights import finished_step
from roadmap.train.presets import get_preset
from steps import REGISTRY, canonical_name


def print_frame(frame, output_format: str, caption: str) -> None:
    """Print a DataFrame as an aligned table (with caption) or as machine-readable CSV / JSON."""
    if output_format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output_format == "json":
        sys.stdout.write(frame.to_json(orient="records", indent=2) + "\n")
    else:
        print(frame.to_string(index=False, na_rep="-"))
        print(caption)


def step_record(name: str, roadmaps: list[str]) -> dict[str, str]:
    """One line of --list: a registered step, the roadmaps that make it a row and the timm models
    those rows are (space-separated, one per roadmap)."""
    step = REGISTRY[name]
    return {
        "step": name,
        "label": step.label,
        "branch_of": step.branch_of or "",
        "roadmaps": " ".join(roadmaps),
        "timm_models": " ".join(timm_name(roadmap, name) for roadmap in roadmaps),
        "description": step.description,
    }


def run_list(roadmap: str, output_format: str) -> None:
    """Every registered step, in the order the roadmaps first use them, with the roadmaps using it."""
    used_by: dict[str, list[str]] = {name: [] for name in step_names()}
    for name, entry in ((name, entry) for name, record in ROADMAPS.items() for entry in record.entries):
        if not entry.hidden and name not in used_by[entry.step]:
            used_by[entry.step].append(name)
    frame = pd.DataFrame.from_records(step_record(step, names) for step, names in used_by.items())
    on_this = sum(1 for entry in roadmap_entries(roadmap) if not entry.hidden)
    caption = (
        f"{len(frame)} registered steps; roadmaps: the --roadmap values that make a step a row "
        f"(empty: on no roadmap, use it with --steps); timm_models: their names in timm.create_model after "
        f"`import roadmap`. Roadmap {canonical_name(roadmap)}: {on_this} rows."
    )
    print_frame(frame, output_format, caption)


def run_list_models(output_format: str) -> None:
    frame = pd.DataFrame.from_records(
        {
            "model": entry.name,
            "timm_model": model_timm_name(entry.name),
            "description": entry.description,
            "timm_counterpart": "yes" if entry.weights_family else "no",
        }
        for entry in MODELS.values()
    )
    print_frame(frame, output_format, f"{len(frame)} models; use one with --model NAME.")


def run_flops_only(args: argparse.Namespace) -> None:
    # Complexity is free to compute: the table always includes the branch rows.
    options = dataclasses.replace(run_options(args), branches=True)
    check_model_mode(options)
    frame = complexity_table(rows_for(options).rows, args.roadmap, args.resolution)
    output_format, resolution = args.format, args.resolution
    notes = [f"{row.step}: {row.note}" for row in frame.itertuples() if row.note]
    if output_format == "table":
        frame = frame.assign(
            gflops=[f"{value:.3f}{'*' if note else ''}" for value, note in zip(frame.gflops, frame.note)]
        )
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
    steps = (
        tuple(canonical_name(name) for name in args.steps.split(",") if name.strip())
        if args.steps is not None
        else None
    )
    return RunOptions(
        roadmap=canonical_name(args.roadmap),
        upto=args.upto,
        branches=args.branches,
        mode=canonical_name(args.mode),
        steps=steps,
        model=args.model,
        preset=args.preset,
        data=DataSource(
            dataset=args.dataset,
            data_path=args.data,
            shrink=args.shrink,
            shrink_format=args.shrink_format,
            cache_dir=args.cache_dir,
            eval_decode=args.eval_decode,
            classes=args.classes,
        ),
        seeds=args.seeds,
        epochs=args.epochs,
        batch_size=args.batch_size,
        accumulation=args.accumulation,
        devices=args.tasks_per_node * args.nodes,
        workers=args.workers,
        results=args.results,
        run=args.run,
        measure_cost=args.measure_cost,
        cost_settings=cost_settings,
        numerics=Numerics(args.precision, args.channels_last, args.compile, args.deterministic),
        wandb=args.wandb,
        mask_ratio=args.mask_ratio,
        overrides=collect_overrides(args.set, args.config),
        init=args.init,
    )


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    extra = {}
    for item in args.sbatch:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise UsageError(f"--sbatch takes KEY=VALUE (e.g. --sbatch exclusive=), got {item!r}")
        extra[key.lstrip("-")] = value
    return ClusterOptions(
        partition=args.partition,
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        tasks_per_node=args.tasks_per_node,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        time_min=args.time_min,
        account=args.account,
        qos=args.qos,
        constraint=args.constraint,
        sbatch_args=extra,
        max_parallel=args.max_parallel,
    )


def run_plan(args: argparse.Namespace) -> None:
    for option, value in (("--throughput", args.throughput), ("--loader-throughput", args.loader_throughput)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"{option} must be a positive number of images per second, got {value}")
    plan = plan_run(run_options(args))
    table = plan_table(
        plan, args.throughput, loader_throughput=args.loader_throughput, images_per_epoch=args.images_per_epoch
    )
    total = table.device_hours.sum()
    pretraining = bool(table.pretrain_device_hours.any())
    if args.format == "table":
        hours = {
            name: table[name].map(lambda value: f"{value:.3g}") for name in ("device_hours", "pretrain_device_hours")
        }
        table = table.assign(**hours) if pretraining else table.assign(**hours).drop(columns="pretrain_device_hours")
    caption = (
        f"Plan of run {plan.info.run} (preset {plan.info.preset}, {plan.info.dataset_description}; "
        f"pixels: {plan.info.pixels}). images/s = min(model, loader), each given or measured here at the "
        f"run's batch (the model after a warm-up, the loader on the run's data with its workers); "
        f"device-hours = seeds x "
        f"epochs x images per epoch / images/s (training only; evaluation and start-up not included)"
        + (
            "; FCMAE rows add their pre-training (pretrain_device_hours, encoder timed at the pre-training batch)"
            if pretraining
            else ""
        )
        + f". Total: {total:.3g} device-hours."
    )
    print_frame(table, args.format, caption)


def run_training(args: argparse.Namespace) -> int:
    if args.plan:
        if args.no_wait:
            raise UsageError("--no-wait returns once jobs are submitted and --plan submits none; drop one of them")
        run_plan(args)
        return 0
    # Names, counts and the rows are checked first (cheap, nothing written), so bad input ends in
    # its one line before the executor is chosen (which may ask SLURM and say so).
    options, cluster = run_options(args), cluster_options(args)
    check_options(options)
    get_preset(options.preset)
    rows_for(options)
    kind = choose_executor(args.executor, say=print)
    if args.no_wait and kind != "slurm":
        # A local job is a child of this launcher: returning early would end it, so the flag
        # would be silently ignored (and the report skipped).
        raise UsageError(f"--no-wait needs --executor slurm; the {kind} executor trains while this command waits")
    if kind != "slurm" and not local_cuda():
        # Checked before anything is written: here the jobs run on this machine's CPU.
        Numerics(args.precision).for_device(torch.device("cpu"))
    if kind != "slurm" and args.nodes > 1:
        raise UsageError(f"--nodes {args.nodes} needs --executor slurm; the {kind} executor runs on this machine")
    _, failed = train_roadmap(options, kind, cluster, wait=not args.no_wait)
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
    for name in (args.run, args.compare):  # the report is written inside the run: names, not paths
        if name is not None:
            check_run_name(name)
    run_dir = Path(args.results) / args.run
    if RunPaths(run_dir).plan.is_file():
        check_writable_folder(run_dir, what="run folder")  # the report goes to run_dir/report
    write_report(run_dir, args.compare)
    return 0


def run_eval(argv: Sequence[str]) -> int:
    args = build_eval_parser().parse_args(argv)
    step = finished_step(args.results, args.run, args.step, args.seed)
    figures, trainer, note = evaluate_step(step)
    print("\n".join(report_lines(step, figures, trainer)))
    if note:
        print(f"note: {note}")
    return 0


def run_export(argv: Sequence[str]) -> int:
    args = build_export_parser().parse_args(argv)
    step = finished_step(args.results, args.run, args.step, args.seed)
    out = Path(args.out)
    weights, spec = export_step(step, out, args.weights)
    print(f"export: {out} ({weights} weights of {step.name}) and its spec {spec}")
    print(timm_line(step, out))
    return 0


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a closing session, a scheduler) taken the way Ctrl-C is: the running local
    job is cancelled, its checkpoints stay, and one line says how to resume."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_third_party_warnings()
    parser = build_parser()
    if threading.current_thread() is not threading.main_thread():
        return _main(parser, argv)  # signal handlers can only be set from the main thread
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(parser, argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    try:
        if argv and argv[0] == "report":
            return run_report(argv[1:])
        if argv and argv[0] == "cost":
            return cost_study(argv[1:])
        if argv and argv[0] == "eval":
            return run_eval(argv[1:])
        if argv and argv[0] == "export":
            return run_export(argv[1:])
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
    except UserError as error:
        print(f"run_roadmap.py: error: {error}", file=sys.stderr)
        return error.exit_code
    except Terminated:
        print("run_roadmap.py: terminated (SIGTERM); rerun the same command to resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("run_roadmap.py: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
