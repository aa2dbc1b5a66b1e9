"""Check the trainer's optimisation against the official code, per iteration, for every recipe x preset.

For each case (a roadmap row or model, resolved by a preset as a run resolves it) this builds the
optimizer, scheduler and EMA decay with `roadmap.train.optimisation.build_optimisation`, the one function
`roadmap.train.trainer.Trainer` builds them with (the pre-training phase's `decay_grn` read from
`PretrainTrainer`), steps the scheduler as `Trainer.optimizer_step` does through every optimizer
update of the run (updates per epoch as the trainer counts them: whole batches // accumulation),
and compares with formulas written here from the official code (not from roadmap's):

- legacy, torchvision's reference: lr x 0.1 at 1/3 and 2/3 of the updates (epochs 30 and 60 of 90);
- modern, ConvNeXt `utils.cosine_scheduler`: linear warm-up over `linspace(0, peak, W)`, then
  min_lr + (peak - min_lr) (1 + cos(pi i / (T - W))) / 2;
- V2 fine-tuning and FCMAE pre-training, ConvNeXt-V2 `adjust_learning_rate`: peak x t / W during
  warm-up, then the same cosine;
- parameter groups: V1 / V2 `get_parameter_groups` (no decay for 1-D, `.bias`, and in V2 `.gamma`
  / `.beta`), V2 `get_num_layer_for_convnext(_single)` with lr scale decay ** (L + 1 - id), FCMAE's
  `add_weight_decay` (GRN gamma and beta are (1, C): decayed), torchvision (everything decayed);
- EMA: the share of the first step's weights left in the EMA the table reports.

Prints one line per case x preset and exits 1 if any check fails: lr within 1% after the warm-up
(the warm-up's own rounding, 1/W of an epoch's updates, is reported apart), every parameter's
weight decay and lr scale exact, EMA under 10% first-step weights (or the raw model reported).

    python benchmarks/official_schedules.py            # every preset
    python benchmarks/official_schedules.py --presets cpu tiny
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass

import torch

from roadmap.fcmae.decoder import FcmaeDecoder
from roadmap.fcmae.masking import MaskedEncoder
from roadmap.fcmae.model import FcmaeModel
from roadmap.fcmae.trainer import PretrainTrainer, pretrain_recipe
from roadmap.network.build import build
from roadmap.network.families import model
from roadmap.network.roadmaps import specs
from roadmap.spec import Recipe, Spec
from roadmap.train.optimisation import IMAGENET_TRAIN_IMAGES, build_optimisation, first_weights_share
from roadmap.train.presets import PRESETS, batch_plan, resolve
from roadmap.train.trainer import Trainer
from steps import REGISTRY

LR_TOLERANCE = 0.01
EMA_LIMIT = 0.10


@dataclass(frozen=True)
class Case:
    name: str
    spec: Spec
    phase: str = "train"  # "train" or "pretrain" (the FCMAE phase of the same row)


def cases() -> list[Case]:
    rows = dict(specs("resnet50"))
    fcmae = REGISTRY.get("fcmae").function
    found = [Case("resnet50 (legacy)", rows["resnet50"]), Case("ln (modern)", rows["ln"])]
    found.append(Case("convnext_tiny (modern, EMA)", model("convnext_tiny")))
    for size in ("atto", "tiny", "base"):
        spec = fcmae(model(f"convnextv2_{size}"))
        found.append(Case(f"convnextv2_{size} fcmae (V2 fine-tune)", spec))
    found.append(Case("convnextv2_tiny fcmae (pre-training)", fcmae(model("convnextv2_tiny")), "pretrain"))
    return found


# -- the official formulas --------------------------------------------------------------------


def official_lr(recipe: Recipe, peak: float, updates_per_epoch: int, t: int) -> float:
    total, warmup = recipe.epochs * updates_per_epoch, recipe.warmup_epochs * updates_per_epoch
    if recipe.sched == "step":
        points = sum(t >= total * k / 3 for k in (1, 2))
        return peak * recipe.decay_rate**points
    if t < warmup:
        if recipe.name == "modern":  # ConvNeXt: np.linspace(0, peak, W) reaches the peak at W - 1
            return peak * t / max(warmup - 1, 1)
        return peak * t / warmup  # ConvNeXt-V2 / MAE: peak x epoch / warm-up epochs
    progress = (t - warmup) / (total - warmup)
    return recipe.min_lr + (peak - recipe.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def official_name(name: str) -> str:
    """A roadmap parameter name as the official ConvNeXt(-V2) model names it."""
    name = re.sub(r"^(encoder\.network\.)", "", name)
    name = re.sub(r"^stem\.", "downsample_layers.0.", name)
    name = re.sub(r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1.", name)
    name = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", name)
    return re.sub(r"\.grn\.weight$", ".grn.gamma", re.sub(r"\.grn\.bias$", ".grn.beta", name))


def official_layer(name: str, depths: tuple[int, ...], kind: str) -> int:
    parts = name.split(".")
    if kind == "single":
        if parts[0] == "downsample_layers":
            return sum(depths[: int(parts[1])]) + 1
        if parts[0] == "stages":
            return sum(depths[: int(parts[1])]) + int(parts[2]) + 1
        return sum(depths) + 1
    if parts[0] in ("downsample_layers", "stages"):
        stage = int(parts[1])
        block = int(parts[2]) if parts[0] == "stages" else 0
        if parts[0] == "downsample_layers" and stage == 0:
            return 0
        return {0: 1, 1: 2, 2: 3 + block // 3}.get(stage, 12)
    return 13


def official_groups(recipe: Recipe, phase: str, named: dict, depths: tuple[int, ...]) -> dict[str, tuple[float, float]]:
    """(weight decay, lr scale) of every parameter as the official code assigns them."""
    expected = {}
    for name, parameter in named.items():
        official = official_name(name)
        is_grn = official.endswith((".grn.gamma", ".grn.beta"))
        if recipe.no_decay_1d is False:
            decay = recipe.weight_decay  # torchvision: every parameter
        elif phase == "pretrain":  # timm's add_weight_decay; the sparse GRN holds (1, C) tensors
            decay = recipe.weight_decay if is_grn or not (parameter.ndim <= 1 or name.endswith(".bias")) else 0.0
        else:
            # V1's get_parameter_groups exempts 1-D and `.bias`; V2's adds `.gamma` and `.beta` (GRN).
            names = (".bias", ".gamma", ".beta") if recipe.layer_decay is not None else (".bias",)
            exempt = parameter.ndim <= 1 or official.endswith(names)
            decay = 0.0 if exempt else recipe.weight_decay
        scale = 1.0
        if recipe.layer_decay is not None:
            layers = sum(depths) if recipe.layer_decay_kind == "single" else 12
            scale = recipe.layer_decay ** (layers + 1 - official_layer(official, depths, recipe.layer_decay_kind))
        expected[name] = (decay, scale)
    return expected


# -- the trainer's objects --------------------------------------------------------------------


def trainer_objects(case: Case, preset_name: str) -> tuple[Recipe, torch.nn.Module, float, int]:
    """The recipe, module, peak lr and updates per epoch a run of `case` on the preset trains with."""
    preset = PRESETS[preset_name]
    synthetic = preset.name in ("cpu", "tiny")
    classes = preset.synthetic_classes if synthetic else 1000
    spec = resolve(case.spec, preset, classes)
    recipe = spec.recipe if case.phase == "train" else pretrain_recipe(spec)
    plan = batch_plan(recipe, preset)
    images = preset.synthetic_train if synthetic else IMAGENET_TRAIN_IMAGES
    updates_per_epoch = max(1, images // plan.per_device // plan.accumulation)  # drop_last batches
    network = build(Spec(spec.network, spec.recipe))
    if case.phase == "pretrain":
        encoder = MaskedEncoder(network)
        network = FcmaeModel(encoder, FcmaeDecoder(encoder.width, encoder.patch_size, spec.pretrain.decoder_width))
    return recipe, network, plan.lr, updates_per_epoch


def lr_deviations(recipe: Recipe, optimizer, scheduler, peak: float, updates_per_epoch: int) -> dict:
    """Step the trainer's scheduler through every update; the worst relative deviation from the
    official lr in and after the warm-up, and the ratio of the areas under the two curves."""
    total, warmup = recipe.epochs * updates_per_epoch, recipe.warmup_epochs * updates_per_epoch
    unit = next(group for group in optimizer.param_groups if group.get("lr_scale", 1.0) == 1.0)
    worst, area = {"warm-up": 0.0, "after": 0.0}, [0.0, 0.0]
    for t in range(total):
        # Update t (from 0) trains with the lr the scheduler set when it was built (t = 0) or after
        # update t - 1: Trainer.optimizer_step calls step_update(updates) once `updates` is t.
        ours, theirs = unit["lr"], official_lr(recipe, peak, updates_per_epoch, t)
        scheduler.step_update(num_updates=t + 1)
        area[0], area[1] = area[0] + ours, area[1] + theirs
        if theirs > 0:
            phase = "warm-up" if t < warmup else "after"
            worst[phase] = max(worst[phase], abs(ours - theirs) / theirs)
    return {"lr_warmup": worst["warm-up"], "lr_after_warmup": worst["after"], "area": area[0] / area[1]}


def wrong_groups(optimizer, module: torch.nn.Module, expected: dict) -> list[str]:
    """Parameters whose (weight decay, lr scale) differ from the official assignment."""
    assigned = {}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            assigned[id(parameter)] = (group["weight_decay"], group.get("lr_scale", 1.0))
    return [
        name
        for name, parameter in module.named_parameters()
        if not all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(assigned[id(parameter)], expected[name]))
    ]


def check(case: Case, preset_name: str) -> tuple[dict, list[str], str, bool]:
    """The lr deviations of `case` on the preset, its wrongly grouped parameters, its EMA, and whether it passes."""
    recipe, module, peak, updates_per_epoch = trainer_objects(case, preset_name)
    depths = build_depths(module)
    decay_grn = (PretrainTrainer if case.phase == "pretrain" else Trainer).decay_grn
    optimizer, scheduler, decay = build_optimisation(module, recipe, peak, depths, updates_per_epoch, decay_grn)
    total = recipe.epochs * updates_per_epoch
    deviations = lr_deviations(recipe, optimizer, scheduler, peak, updates_per_epoch)
    expected = official_groups(recipe, case.phase, dict(module.named_parameters()), depths)
    wrong = wrong_groups(optimizer, module, expected)
    ema, ema_ok = "-", True
    if decay is not None:
        share = first_weights_share(decay, total)
        ema, ema_ok = f"decay {decay:.6f}, first-step share {share:.2%}", share < EMA_LIMIT
    ok = deviations["lr_after_warmup"] <= LR_TOLERANCE and not wrong and ema_ok
    return {"case": case.name, "preset": preset_name, "updates": total, **deviations}, wrong, ema, ok


def build_depths(module: torch.nn.Module) -> tuple[int, ...]:
    network = module.encoder.network if isinstance(module, FcmaeModel) else module
    return network.spec.network.depths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()
    failures = 0
    print("case | preset | updates | max lr dev. after warm-up | in warm-up | lr area ours/official | groups | EMA")
    for case in cases():
        for preset in args.presets:
            result, wrong, ema, ok = check(case, preset)
            failures += not ok
            groups = "exact" if not wrong else f"{len(wrong)} wrong"
            print(
                f"{result['case']} | {preset} | {result['updates']} | {result['lr_after_warmup']:.4%} | "
                f"{result['lr_warmup']:.2%} | {result['area']:.4f} | {groups} | {ema}" + ("" if ok else "  <- FAILS")
            )
    print(f"{failures} failing case(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
