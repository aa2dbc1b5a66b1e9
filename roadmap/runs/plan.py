"""Plan a run: which rows, which specs, which settings, and where their results go.

Planning happens before anything trains and validates every input, so a bad option fails with one
line and leaves nothing on disk. A step x seed is keyed by the hash of its resolved spec (network
and recipe) plus the preset, dataset, resolution, batch and seed: a finished step with the same key
is never trained again, and a different configuration never reuses its folder silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from roadmap.cost.numerics import Numerics
from roadmap.data.datasets import load_datasets
from roadmap.data.device_decode import pixels_with_eval
from roadmap.data.shrink import describe as describe_pixels
from roadmap.files.atomic import UnreadableFile, check_format, read_json_checked, write_json
from roadmap.files.layout import RunPaths
from roadmap.network.complexity import complexity
from roadmap.network.families import model, model_rows, row_label
from roadmap.network.paper_values import paper_table, reference_note
from roadmap.network.roadmaps import ModePlan, get_roadmap, mode_plan, specs, starts_from_network
from roadmap.runs.info import RunInfo, RunRow, SkippedRow, epoch_counts
from roadmap.runs.options import (
    RunError,
    RunOptions,
    check_batches,
    check_model_mode,
    check_options,
    check_results_path,
    with_mask_ratio,
)
from roadmap.runs.overrides import apply_overrides
from roadmap.spec import Pretrain, Spec
from roadmap.train.init_weights import InitWeights, plan_init
from roadmap.train.optimisation import TRAINING_RULES
from roadmap.train.presets import (
    TrainingPreset,
    batch_plan,
    describe_resolution,
    get_preset,
    resolution_schedule,
    resolve,
)
from roadmap.train.task import StepTask
from steps import REGISTRY


@dataclass
class RunPlan:
    run_dir: Path
    info: RunInfo
    tasks: list[StepTask] = field(default_factory=list)

    def pending(self) -> list[StepTask]:
        return [task for task in self.tasks if task.paths.completed_key() != task.key]


def rows_for(options: RunOptions) -> ModePlan:
    """The (row name, full-size spec) pairs of the run in table order, and rows a mode left out."""
    branches = options.branches or get_roadmap(options.roadmap).branches_by_default
    if options.model and starts_from_network(options.roadmap) and not options.steps:
        # The roadmap's rows applied to the model instead of the network its hidden path builds.
        return ModePlan(specs(options.roadmap, options.upto, branches, start=_codesign_start(options)))
    if options.model:
        return ModePlan(model_rows(options.model, options.steps))
    return mode_plan(
        options.roadmap,
        options.effective_mode,
        upto=options.upto,
        branches=branches,
        steps=list(options.steps) if options.steps else None,
    )


def _codesign_start(options: RunOptions) -> Spec:
    """The --model a roadmap of variants starts from: a V1 ConvNeXt (the rows add GRN themselves)."""
    start = model(options.model or "")
    if start.network.grn or start.pretrain is not None:
        raise RunError(
            f"--roadmap {options.roadmap} starts from a V1 ConvNeXt and adds GRN and FCMAE itself; "
            f"--model {options.model} has them already: give a convnext_* model (e.g. convnext_base)"
        )
    return start


def row_group(roadmap: str, step: str) -> str | None:
    try:
        paper = paper_table(roadmap)
    except (KeyError, ValueError, FileNotFoundError):
        return None
    return str(paper.at[step, "group"]) if step in paper.index else None


def _fcmae_resolution(preset: TrainingPreset, rows: list[tuple[str, Spec]]) -> tuple[TrainingPreset, list[str]]:
    """FCMAE masks 32 px patches and needs two or more: a run with FCMAE rows trains every row at
    >= 64 px (all rows alike, so that they compare), and says so."""
    if preset.resolution >= 2 * Pretrain.patch or not any(spec.pretrain is not None for _, spec in rows):
        return preset, []
    raised = replace(preset, resolution=2 * Pretrain.patch)
    return raised, [
        f"every row trains at {raised.resolution} px instead of the {preset.name} preset's "
        f"{preset.resolution} px: FCMAE masks {Pretrain.patch} px patches and needs at least two"
    ]


@dataclass(frozen=True)
class _Planning:
    """What every row of one plan shares: the options, the run's preset, data and numerics."""

    options: RunOptions
    preset: TrainingPreset
    data: Any  # roadmap.data.datasets.DatasetPair
    synthetic: dict[str, Any]
    numerics: Numerics
    measure_cost: bool
    run_dir: Path
    launcher_pid: int | None
    init: InitWeights | None = None  # --init: the file every row starts from (checked against every row)


def _row_settings(planning: _Planning, trained: Spec, plan: Any) -> dict[str, Any]:
    """What besides the spec makes a row's key: another value is another experiment."""
    options, preset = planning.options, planning.preset
    settings = {
        "preset": preset.name,
        "dataset": options.data.dataset,
        "data": planning.data.description,
        "resolution": preset.resolution,
        "batch": plan.effective,
        "per_device": plan.per_device,
        "lr": plan.lr,
        # How the recipe is trained per iteration (schedules, optimizer groups, EMA, evaluation):
        # results of earlier rules are another experiment, never reused.
        "training_rules": TRAINING_RULES,
    }
    schedule = resolution_schedule(preset, trained.recipe.epochs)
    if len(schedule) > 1 or preset.eval_resolution:
        # Progressive and test resolutions are part of the experiment; single-resolution presets
        # keep the keys they always had.
        settings["resolution_schedule"] = [list(pair) for pair in schedule]
        settings["eval_resolution"] = preset.eval_resolution
    if options.data.shrink is not None:
        # Other pixels are another experiment; the original files keep the keys they always had.
        settings["pixels"] = describe_pixels(options.data.shrink, options.data.shrink_format)
    if options.data.eval_decode != "cpu":
        settings["eval_decode"] = options.data.eval_decode  # other evaluation pixels: another experiment
    if planning.init is not None:
        settings["init"] = planning.init.sha256  # other starting weights: another experiment
    return settings


def _pretrain_plan(planning: _Planning, trained: Spec) -> tuple[dict[str, Any], str | None]:
    """An FCMAE row's pre-training batch ({} without one) and the sentence that describes it."""
    if trained.pretrain is None:
        return {}, None
    options = planning.options
    plan = batch_plan(trained.pretrain, planning.preset, options.devices, options.batch_size, options.accumulation)
    description = (
        f"FCMAE pre-training before fine-tuning: {trained.pretrain.epochs} epochs, mask ratio "
        f"{trained.pretrain.mask_ratio:g} of {Pretrain.patch} px patches, {plan.describe(trained.pretrain)}"
    )
    return {"per_device": plan.per_device, "accumulation": plan.accumulation, "lr": plan.lr}, description


def _task(
    planning: _Planning,
    name: str,
    seed: int,
    key: str,
    spec: Spec,
    trained: Spec,
    plan: Any,
    full: Any,
    pretrain_batch: dict[str, Any],
) -> StepTask:
    """The job of one row x seed: everything it needs, as plain data."""
    options, preset = planning.options, planning.preset
    schedule = resolution_schedule(preset, trained.recipe.epochs)
    return StepTask(
        run_dir=str(planning.run_dir),
        step=name,
        seed=seed,
        key=key,
        spec=trained,
        preset=preset.name,
        data=options.data,
        resolution=preset.resolution,
        per_device_batch=plan.per_device,
        accumulation=plan.accumulation,
        lr=plan.lr,
        workers=preset.workers if options.workers is None else options.workers,
        gflops=full.gflops,
        params=full.params,
        synthetic=planning.synthetic,
        launcher_pid=planning.launcher_pid,
        cost_spec=spec if planning.measure_cost else None,
        cost_settings=options.cost_settings,
        numerics=planning.numerics.to_dict(),
        wandb_project=options.wandb,
        resolution_schedule=schedule if len(schedule) > 1 else (),
        eval_resolution=preset.eval_resolution,
        pretrain_batch=pretrain_batch,
        init=planning.init.to_json() if planning.init else None,
    )


def _plan_row(planning: _Planning, name: str, spec: Spec) -> tuple[RunRow, list[StepTask]]:
    """run.json's record of one row, and its tasks (one per seed)."""
    options, preset, data = planning.options, planning.preset, planning.data
    trained = resolve(spec, preset, data.num_classes, options.epochs)
    plan = batch_plan(trained.recipe, preset, options.devices, options.batch_size, options.accumulation)
    check_batches(name, trained.recipe, plan, len(data.train), options.accumulation is not None)
    full = complexity(spec, 224)
    settings = _row_settings(planning, trained, plan)
    pretrain_batch, pretraining = _pretrain_plan(planning, trained)
    if pretrain_batch:
        settings["pretrain_batch"] = pretrain_batch["per_device"] * options.devices * pretrain_batch["accumulation"]
    step = REGISTRY.get(name)
    seed_keys = {str(seed): trained.content_hash({**settings, "seed": seed}) for seed in range(options.seeds)}
    row = RunRow(
        step=name,
        label=row_label(name),
        group=row_group(options.roadmap, name),
        branch_of=step.branch_of if step else None,
        gflops=round(full.gflops, 4),
        params=full.params,
        epochs=trained.recipe.epochs,
        recipe=trained.recipe.name,
        batch=plan.describe(trained.recipe),
        pretrain=pretraining,
        pretrain_epochs=trained.pretrain.epochs if trained.pretrain else 0,
        key=trained.content_hash(settings),
        seed_keys=seed_keys,
    )
    tasks = [
        _task(planning, name, seed, seed_keys[str(seed)], spec, trained, plan, full, pretrain_batch)
        for seed in range(options.seeds)
    ]
    return row, tasks


def _planning(options: RunOptions, preset: TrainingPreset, launcher_pid: int | None) -> _Planning:
    """Load the dataset and settle the numerics and where the run lives; refuse what cannot train."""
    numerics = options.numerics
    if numerics.compile is None and not preset.compile_by_default:
        numerics = replace(numerics, compile=False)
    synthetic = {
        "synthetic_train": preset.synthetic_train,
        "synthetic_val": preset.synthetic_val,
        "synthetic_classes": preset.synthetic_classes,
        # Drawn shapes carry no detail beyond 64 px; larger inputs are upsampled by the transforms.
        "synthetic_size": min(preset.resolution, 64),
        "seed": preset.synthetic_seed,
    }
    data = load_datasets(options.data, synthetic)
    if data.num_classes < 2:
        raise RunError(
            f"the dataset has {data.num_classes} class(es) ({data.description}); classification "
            f"needs at least two (one class subfolder per class under train/ and val/)"
        )
    run_dir = Path(options.results) / options.run_name()
    check_results_path(Path(options.results), run_dir)
    earlier_plan(run_dir)  # a damaged run.json stops the run here, before anything is written
    measure_cost = options.measure_cost if options.measure_cost is not None else preset.name == "paper"
    return _Planning(options, preset, data, synthetic, numerics, measure_cost, run_dir, launcher_pid)


def plan_run(options: RunOptions, launcher_pid: int | None = None) -> RunPlan:
    """Validate the options, resolve every row and seed, and return the tasks (nothing written)."""
    check_options(options)
    check_model_mode(options)
    selection = rows_for(options)
    rows = with_mask_ratio(selection.rows, options.mask_ratio)
    # Overrides change the full-size rows, before the preset resolves them: --set lr is the paper's base lr.
    rows, overrides = apply_overrides(rows, options.overrides)
    preset, notes = _fcmae_resolution(get_preset(options.preset), rows)
    planning = _planning(options, preset, launcher_pid)
    data = planning.data
    if options.init is not None:  # read and checked against every row's trained network, before any key
        trained = [(name, resolve(spec, preset, data.num_classes, options.epochs)) for name, spec in rows]
        planning = replace(planning, init=plan_init(options.init, trained))
    planned_rows: list[RunRow] = []
    tasks: list[StepTask] = []
    for name, spec in rows:
        row, row_tasks = _plan_row(planning, name, spec)
        planned_rows.append(row)
        tasks += row_tasks
    for task in tasks:
        if task.paths.result.exists():  # a newer version's result is neither trusted nor overwritten
            check_format(task.paths.result, task.paths.read_result())
        finished = task.paths.completed_key()
        if finished is not None and finished != task.key:
            raise RunError(
                f"run {options.run_name()!r} already holds a finished {task.step} (seed {task.seed}) trained with "
                f"other settings; choose another --run NAME or delete {task.paths.folder}"
            )
    info = RunInfo(
        run=options.run_name(),
        roadmap=options.roadmap,
        model=options.model,
        mode=options.effective_mode,
        preset=preset.name,
        preset_description=preset.description,
        dataset=options.data.dataset,
        dataset_description=data.description,
        num_classes=data.num_classes,
        train_images=len(data.train),
        val_images=len(data.val),
        pixels=pixels_with_eval(data.pixels, options.data.eval_decode),
        seeds=tuple(range(options.seeds)),
        resolution=describe_resolution(preset),
        rows=tuple(planned_rows),
        skipped=tuple(SkippedRow(name, reason) for name, reason in selection.skipped),
        notes=tuple(notes),
        reference_note=reference_note(options.roadmap) if not options.steps else None,
        epochs=epoch_counts(planned_rows),
        overrides=overrides,
        init=planning.init.to_json() if planning.init else None,
    )
    return RunPlan(planning.run_dir, info, tasks)


def earlier_plan(run_dir: Path) -> RunInfo | None:
    """The plan an earlier command wrote into run_dir (None when there is none); UnreadableFile when
    run.json is not a plan."""
    path = RunPaths(run_dir).plan
    if not path.exists():  # one that cannot be opened is named by read_json_checked
        return None
    what_to_do = "delete it (the next command writes it again from the options)"
    data = read_json_checked(path, what_to_do)
    check_format(path, data)
    try:
        return RunInfo.from_json(data)
    except (KeyError, TypeError, AttributeError):  # another JSON value, or a key every plan has is absent
        raise UnreadableFile(path, f"it is not a run plan; {what_to_do}") from None


def write_plan(plan: RunPlan) -> None:
    """Record the plan (run.json); rows planned by earlier commands with other limits are kept."""
    path = RunPaths(plan.run_dir).plan
    earlier = earlier_plan(plan.run_dir)
    if earlier is not None:
        names = {row.step for row in plan.info.rows}
        if earlier.mode == plan.info.mode and earlier.roadmap == plan.info.roadmap:
            extra = tuple(row for row in earlier.rows if row.step not in names)
            if extra:
                # Keep table order: rows of the longer roadmap path come from the roadmap itself.
                plan.info = replace(plan.info, rows=plan.info.rows + extra)
    write_json(path, plan.info.to_json())
