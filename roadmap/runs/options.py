"""The options of a run (what the command line asks for) and their validation before any work:
options that would be ignored, cannot work or select nothing end in one line naming the problem.

Every check that needs only the options lives here (`check_options`, run first by plan_run); the
checks that need what planning loads (the dataset's classes, the rows' batches, the run folder's
finished steps) sit beside that loading in roadmap.runs.plan and raise the same RunError."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roadmap.cost.numerics import Numerics
from roadmap.data.source import DataSource
from roadmap.errors import UserError
from roadmap.network.roadmaps import MODES, starts_from_network
from roadmap.runs.overrides import Override, check_against_flags
from roadmap.spec import Spec
from roadmap.train.presets import PresetError
from roadmap.train.progress import ProgressError, progress_interval
from steps import REGISTRY, canonical_name


class RunError(UserError, ValueError):
    """A run that cannot be planned as asked (conflicting results, bad counts)."""


@dataclass(frozen=True)
class RunOptions:
    roadmap: str = "resnet50"
    upto: str | None = None
    branches: bool = False
    mode: str = "cumulative"
    steps: tuple[str, ...] | None = None
    # A model family member (roadmap.network.families) as the starting row instead of the roadmap.
    model: str | None = None
    preset: str = "cpu"
    data: DataSource = field(default_factory=DataSource)  # the dataset and how its files are read
    seeds: int = 1
    epochs: int | None = None
    batch_size: int | None = None
    accumulation: int | None = None
    devices: int = 1
    workers: int | None = None
    results: str = "results"
    run: str | None = None
    # Measure each step's full-size network (throughput, peak memory) after training it; None:
    # only for the paper preset (on a 2-core CPU one full-size step costs minutes).
    measure_cost: bool | None = None
    cost_settings: tuple[str, ...] = ()
    # How the networks compute (None: the device's default); recorded in every result, not part
    # of a step's key: a run resumes across compiled and eager, and across machines.
    numerics: Numerics = field(default_factory=Numerics)
    mask_ratio: float | None = None  # FCMAE rows' pre-training mask ratio; None: the step's (0.6)
    wandb: str | None = None  # W&B project every step x seed also logs to (roadmap.train.experiment_log)
    # --set / --config: recipe (and FCMAE pre-training) fields of the full-size rows (roadmap.runs.overrides).
    overrides: tuple[Override, ...] = ()
    # --init: a file of weights every row starts from instead of its initialisation (roadmap.train.init_weights).
    init: str | None = None

    @property
    def effective_mode(self) -> str:
        """The ablation mode the rows follow: a step list (`--steps`) makes it `custom`."""
        return "custom" if self.steps else self.mode

    def run_name(self) -> str:
        if self.run:
            return self.run
        mode = "" if self.effective_mode == "cumulative" else f"-{self.effective_mode.replace('_', '-')}"
        start = self.model or self.roadmap
        return f"{start.replace('_', '-')}-{self.preset}-{self.data.dataset}{mode}"


def check_selection(options: RunOptions) -> None:
    """Options that would be ignored or select nothing: one line each, before any work."""
    if options.steps is not None and not options.steps:
        raise RunError("--steps names no step; give a comma-separated list such as --steps patchify,depthwise")
    if options.upto is not None and options.model and not starts_from_network(options.roadmap):
        raise RunError("--upto applies to a roadmap, not to --model; drop one of them")
    if options.upto is not None and options.steps:
        raise RunError("--upto and --steps both choose the rows; drop one of them")
    if options.upto is not None:
        step = REGISTRY.get(canonical_name(options.upto))
        if step is not None and step.branch_of is not None:
            raise RunError(
                f"--upto {options.upto} names a branch row (a variant of {step.branch_of}); use "
                f"--upto {step.branch_of} --branches to train it with its siblings, or --upto a main-path row"
            )
    data = options.data
    if data.shrink_format != "jpeg" and data.shrink is None:
        raise RunError(
            f"--shrink-format {data.shrink_format} says how --shrink stores its copy; add --shrink PX "
            f"(e.g. --shrink 256) or drop --shrink-format"
        )
    if data.eval_decode == "device" and (data.dataset != "folder" or data.shrink_format == "ppm"):
        raise RunError(
            "--eval-decode device decodes JPEG files: it needs --dataset folder and a copy that is not "
            "--shrink-format ppm (PPM files need no decoding); drop --eval-decode or change the data"
        )
    if data.data_path is not None and data.dataset == "synthetic":
        raise RunError(
            f"--data {data.data_path} is ignored by the synthetic dataset; give --dataset folder, "
            f"cifar10 or cifar100, or drop --data"
        )


def check_run_name(name: str) -> None:
    """A run name is one folder name under --results: a separator or `..` would put the run (and its
    report) somewhere else, so a name that is a path is refused wherever a run folder is made."""
    if name in ("", ".", "..") or "/" in name or (os.altsep and os.altsep in name) or "\0" in name:
        raise RunError(
            f"--run {name!r} is not a run name (a run is a folder directly inside --results); "
            f"give a plain name such as --run my-run, and --results for where it goes"
        )


def check_results_path(results: Path, run_dir: Path) -> None:
    """--results must be (or become) a folder: a path through a regular file fails here, not mid-run."""
    for path in (run_dir, *run_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise RunError(f"--results {results}: {path} is a file, not a folder; give a folder path")
            return


def check_batches(step: str, recipe: Any, plan: Any, train_images: int, accumulation_given: bool) -> None:
    """An odd batch with Mixup/CutMix, or more accumulation steps (--accumulation) than an epoch has batches."""
    if (recipe.mixup > 0 or recipe.cutmix > 0) and plan.per_device % 2:
        raise RunError(
            f"{step}: the {recipe.name} recipe uses Mixup/CutMix, which pairs images within a batch: "
            f"the batch per device must be even, got {plan.per_device} (e.g. --batch-size "
            f"{plan.per_device + 1})"
        )
    batches = train_images // (plan.per_device * plan.devices)  # the training loader drops the last partial batch
    if batches < 1:
        # Refused whether or not --accumulation was given: an epoch without a batch trains nothing
        # (the job would fail on every row, and --plan would divide by zero batches).
        largest = train_images // plan.devices
        raise RunError(
            f"{step}: a batch of {plan.per_device} x {plan.devices} device(s) is larger than the "
            f"{train_images} training images; give --batch-size {largest} or less, or more images"
            if largest >= 1
            else f"{step}: {train_images} training images cannot fill a batch on {plan.devices} device(s); "
            f"give more images"
        )
    if accumulation_given and plan.accumulation > batches:
        raise RunError(
            f"{step}: --accumulation {plan.accumulation} exceeds the {batches} batches of an epoch "
            f"({train_images} images / {plan.per_device * plan.devices} per batch); use at most {batches}"
        )


def with_mask_ratio(rows: list[tuple[str, Spec]], mask_ratio: float | None) -> list[tuple[str, Spec]]:
    """The FCMAE rows with the mask ratio of --mask-ratio; refused when no row pre-trains."""
    if mask_ratio is None:
        return rows
    if not (0.0 < mask_ratio < 1.0):
        raise RunError(f"--mask-ratio must be in (0, 1), got {mask_ratio:g} (the paper masks 0.6 of the patches)")
    if not any(spec.pretrain is not None for _, spec in rows):
        raise RunError(
            "--mask-ratio applies to FCMAE rows and this run has none; add --steps ...,fcmae or "
            "--roadmap convnext-v2-codesign, or drop --mask-ratio"
        )
    return [(name, spec.with_pretrain(mask_ratio=mask_ratio) if spec.pretrain else spec) for name, spec in rows]


def check_options(options: RunOptions) -> None:
    """Counts and names that no plan can use: one line each, before any work."""
    if options.seeds < 1:
        raise RunError(f"--seeds must be a positive integer, got {options.seeds}")
    if options.mode not in MODES:
        raise RunError(f"unknown mode {options.mode!r}; choose one of: {', '.join(MODES)}")
    if options.epochs is not None and options.epochs < 1:
        raise PresetError(f"--epochs must be a positive integer, got {options.epochs}")
    if options.workers is not None and options.workers < 0:
        raise PresetError(f"--workers must be zero or positive, got {options.workers}")
    if options.run is not None:
        check_run_name(options.run)
    check_selection(options)
    check_reporting(options)


def check_model_mode(options: RunOptions) -> None:
    """A mode asked of a model run (outside a roadmap of variants): it has no roadmap to leave steps out of.
    Run where the rows are chosen (plan_run, --flops-only), after the preset is known to exist."""
    model_alone = options.model and (options.steps or not starts_from_network(options.roadmap))
    if model_alone and options.mode != "cumulative":
        raise RunError(f"--model runs the model itself (and --steps on top); --mode {options.mode} needs a roadmap")


def check_reporting(options: RunOptions) -> None:
    """--wandb without its package, or a progress interval that is no number: one line before any work."""
    if options.wandb is not None and importlib.util.find_spec("wandb") is None:
        raise RunError(f'--wandb {options.wandb} needs W&B, which is not installed: pip install ".[wandb]"')
    try:
        progress_interval()
    except ProgressError as error:
        raise RunError(str(error)) from None
    check_against_flags(options.overrides, options.epochs, options.mask_ratio)
