"""The optimizer groups, learning-rate schedules and EMA decay of a step, as the official code makes them.

One owner for how a recipe trains per iteration (papers.md 3 and 5.2; the ConvNeXt and ConvNeXt-V2
repositories' schedulers and optimizer factories, torchvision's reference recipe):

- legacy (torchvision): SGD, the lr divided by 10 at 1/3 and 2/3 of training (epochs 30 and 60 of
  90); a shortened schedule keeps those two points at the same fractions;
- modern, V2 fine-tuning and FCMAE pre-training: a linear warm-up from `warmup_lr` over the warm-up
  epochs, then a cosine from the peak to `min_lr` over the remaining iterations, updated every
  optimizer step;
- weight decay: off for 1-D parameters and biases where the recipe says so, except GRN's gamma and
  beta in FCMAE pre-training (the official sparse encoder holds them as (1, C) tensors, which its
  `add_weight_decay` decays);
- layer-wise lr decay with the official V2 layer numbering (`single`: the stem shares layer 1
  with the first block; `group`: twelve fixed groups, ids not renumbered on a shallower proxy);
- the EMA decay fitted to the run's length, so that it averages over the same fraction of
  training as at the paper's length.

timm builds the optimizer and the schedulers; its `lr_scale` per group carries the layer decay.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from timm.models import group_parameters
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch import nn

from roadmap.errors import UserError
from roadmap.network.build import exempt_from_weight_decay
from roadmap.spec import Recipe

# The version of these rules, part of every step's key (roadmap.runs.plan): 2 = the official schedules
# per iteration, parameter groups and fitted EMA, both weights evaluated (1: before, unnamed).
TRAINING_RULES = 2
# ImageNet-1K's training set: the paper's EMA horizon is counted in its updates.
IMAGENET_TRAIN_IMAGES = 1_281_167
# GRN's affine parameters under every naming (timm's GlobalResponseNorm: `grn.weight`, `grn.bias`).
GRN_PARAMETER = re.compile(r"(^|\.)grn\.")
# The official `group` rule divides ConvNeXt-B's [3, 3, 27, 3] blocks into this many groups.
GROUP_LAYERS = 12


class OptimisationError(UserError, ValueError):
    """A recipe whose optimizer or schedule cannot be built."""


def exempt_from_decay(name: str, parameter: torch.Tensor, decay_grn: bool = False) -> bool:
    """Whether the official code trains `name` without weight decay (roadmap.network.build's rule: 1-D
    tensors and biases), unless `decay_grn` and the parameter belongs to a GRN."""
    if decay_grn and GRN_PARAMETER.search(name):
        return False
    return exempt_from_weight_decay(name, parameter)


def weight_decay_groups(model: nn.Module, weight_decay: float, decay_grn: bool = False) -> list[dict[str, Any]]:
    """Two parameter groups, decayed and exempt (`exempt_from_decay`)."""
    decayed, exempt = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (exempt if exempt_from_decay(name, parameter, decay_grn) else decayed).append(parameter)
    return [{"params": exempt, "weight_decay": 0.0}, {"params": decayed, "weight_decay": weight_decay}]


def official_layer_id(timm_layer: int, depths: tuple[int, ...], kind: str) -> int:
    """ConvNeXt V2's fine-tuning layer id of group `timm_layer` of a roadmap network's `group_matcher`
    (timm's numbering: 0 the stem, 1..sum(depths) the blocks in order, each stage's downsampling
    layer with its first block, then the head).

    `single`: the blocks keep their ids, the stem (the official `downsample_layers.0`) shares layer 1
    with the first block, the head is sum(depths) + 1. `group`: the stem is 0, stages 0 and 1 are 1
    and 2, stage 2 takes three blocks per layer from 3, stage 3 is 12, the head 13; the official ids
    are kept on networks shallower than ConvNeXt-B.
    """
    blocks = sum(depths)
    if kind == "single":
        return max(timm_layer, 1)
    if timm_layer == 0:
        return 0
    if timm_layer > blocks:
        return GROUP_LAYERS + 1
    block = timm_layer - 1
    stage = next(index for index in range(len(depths)) if block < sum(depths[: index + 1]))
    within = block - sum(depths[:stage])
    return {0: 1, 1: 2, 2: 3 + within // 3}.get(stage, GROUP_LAYERS)


def layer_decay_groups(
    network: nn.Module, depths: tuple[int, ...], weight_decay: float, layer_decay: float, kind: str = "single"
) -> list[dict[str, Any]]:
    """One group per (official layer, decayed or not), each with lr_scale = decay ** (last - layer).

    The layers are the network's own `group_matcher` groups as timm numbers them, mapped to the
    official ids: timm's `param_groups_layer_decay` would use its consecutive ids as they are, which
    puts the stem a layer below the first block under `single` and shortens the twelve official
    groups of `group` on a shallower network.
    """
    if kind not in ("single", "group"):
        raise OptimisationError(f"layer decay kind must be 'single' or 'group', got {kind!r}")
    if not 0.0 < layer_decay <= 1.0:
        raise OptimisationError(f"layer decay must be in (0, 1], got {layer_decay}")
    last = sum(depths) + 1 if kind == "single" else GROUP_LAYERS + 1
    timm_layers = group_parameters(network, network.group_matcher(coarse=False), reverse=True)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, parameter in network.named_parameters():
        if not parameter.requires_grad:
            continue
        layer, exempt = official_layer_id(timm_layers[name], depths, kind), exempt_from_decay(name, parameter)
        group = groups.setdefault(
            (layer, exempt),
            {"params": [], "weight_decay": 0.0 if exempt else weight_decay, "lr_scale": layer_decay ** (last - layer)},
        )
        group["params"].append(parameter)
    return [groups[key] for key in sorted(groups)]


def create_optimizer(
    model: nn.Module, recipe: Recipe, lr: float, depths: tuple[int, ...] = (), decay_grn: bool = False
) -> torch.optim.Optimizer:
    """The recipe's optimizer over the official parameter groups (timm's optimizer factory)."""
    if recipe.layer_decay is not None:
        groups: nn.Module | list[dict[str, Any]] = layer_decay_groups(
            model, depths, recipe.weight_decay, recipe.layer_decay, recipe.layer_decay_kind
        )
    elif recipe.no_decay_1d:
        groups = weight_decay_groups(model, recipe.weight_decay, decay_grn)
    else:
        groups = model  # torchvision's recipe decays every parameter (filter_bias_and_bn off)
    extra = {"eps": recipe.opt_eps, "betas": recipe.opt_betas} if recipe.opt.endswith("adamw") else {}
    return create_optimizer_v2(
        groups,
        opt=recipe.opt,
        lr=lr,
        weight_decay=recipe.weight_decay,
        momentum=recipe.momentum,
        filter_bias_and_bn=False,
        **extra,
    )


def create_lr_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe, updates_per_epoch: int) -> Any:
    """timm's scheduler of the recipe, stepped with `step_update(updates)` after every optimizer step."""
    if recipe.sched == "cosine":
        if not 0 <= recipe.warmup_epochs < recipe.epochs:
            raise OptimisationError(
                f"{recipe.name}: warm-up must be shorter than the {recipe.epochs} epochs, got {recipe.warmup_epochs}"
            )
        # With warmup_prefix timm adds the warm-up to num_epochs; the official total includes it.
        schedule = {"num_epochs": recipe.epochs - recipe.warmup_epochs, "warmup_prefix": True}
    elif recipe.sched == "step":
        schedule = {"num_epochs": recipe.epochs, "decay_epochs": recipe.decay_epochs, "decay_rate": recipe.decay_rate}
    else:
        raise OptimisationError(f"{recipe.name}: unknown schedule {recipe.sched!r}; choose cosine or step")
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=recipe.sched,
        warmup_epochs=recipe.warmup_epochs,
        warmup_lr=recipe.warmup_lr,
        min_lr=recipe.min_lr,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
        **schedule,
    )
    return scheduler


def build_optimisation(
    model: nn.Module, recipe: Recipe, lr: float, depths: tuple[int, ...], updates_per_epoch: int, decay_grn: bool
) -> tuple[torch.optim.Optimizer, Any, float | None]:
    """What a trainer steps: the optimizer, its scheduler, and the EMA decay fitted to the run (None
    without an EMA). roadmap.train.trainer.Trainer builds them here, and benchmarks/official_schedules.py
    checks what this returns."""
    optimizer = create_optimizer(model, recipe, lr, depths, decay_grn)
    scheduler = create_lr_scheduler(optimizer, recipe, updates_per_epoch)
    total = recipe.epochs * updates_per_epoch
    ema_decay = fitted_ema_decay(recipe.ema_decay, recipe.ema_reference_updates, total) if recipe.ema else None
    return optimizer, scheduler, ema_decay


def scheduled_lr(optimizer: torch.optim.Optimizer) -> float:
    """The schedule's lr now, before any layer decay: timm's scheduler sets each group's lr to the
    schedule's value times the group's `lr_scale`, so group 0 (the stem under layer decay) holds
    a fraction of it. Read from the group with the largest scale (1, the head's, under layer decay),
    whose division is exact."""
    group = max(optimizer.param_groups, key=lambda group: group.get("lr_scale", 1.0))
    return group["lr"] / group.get("lr_scale", 1.0)


def paper_updates(recipe: Recipe) -> int:
    """Optimizer updates of `recipe` at its own length on ImageNet-1K (the official per-epoch count,
    training images // batch)."""
    return recipe.epochs * (IMAGENET_TRAIN_IMAGES // recipe.batch_size)


def fitted_ema_decay(decay: float, reference_updates: int | None, updates: int) -> float:
    """The EMA decay that averages over the same fraction of `updates` as `decay` does over
    `reference_updates`: its time constant 1 / (1 - decay) scales with the run's length.

    1 - fitted = (1 - decay) x reference / updates, floored at 0 (then the EMA is the raw model).
    Without a reference (None) the decay is the recipe's.
    """
    if reference_updates is None or updates < 1:
        return decay
    return max(0.0, 1.0 - (1.0 - decay) * reference_updates / updates)


def first_weights_share(decay: float, updates: int) -> float:
    """The share of the first step's weights left in an EMA (no warm-up) after `updates` updates."""
    return decay**updates if decay > 0 else 0.0
