"""The recipes as resolved for training: the paper preset against papers.md section 3.1, and the
optimizer groups timm builds from them."""

import dataclasses

import pytest
import torch

from roadmap import build, specs
from roadmap.train.optimisation import create_optimizer
from roadmap.train.presets import PRESETS, PresetError, batch_plan, get_preset, resolve


def final_convnext_tiny():
    return specs("resnet50")[-1][1]


def test_modern_recipe_at_paper_preset_matches_table_5():
    spec = resolve(final_convnext_tiny(), get_preset("paper"), num_classes=1000)
    # papers.md 3.1 (Table 5, ImageNet-1K, ConvNeXt-T) and 3.2 (EMA off for the roadmap).
    expected = {
        "name": "modern",
        "epochs": 300,
        "batch_size": 4096,
        "reference_batch_size": 4096,
        "opt": "adamw",
        "lr": 4e-3,
        "momentum": 0.9,
        "opt_eps": 1e-8,
        "opt_betas": (0.9, 0.999),
        "weight_decay": 0.05,
        "no_decay_1d": True,
        "sched": "cosine",
        "decay_epochs": 30.0,
        "decay_rate": 0.1,
        "warmup_epochs": 20,
        "warmup_lr": 0.0,
        "min_lr": 1e-6,
        "auto_augment": "rand-m9-mstd0.5-inc1",
        "mixup": 0.8,
        "cutmix": 1.0,
        "mixup_prob": 1.0,
        "mixup_switch_prob": 0.5,
        "label_smoothing": 0.1,
        "random_erasing": 0.25,
        "random_erasing_mode": "pixel",
        "color_jitter": 0.4,
        "interpolation": "bicubic",
        "crop_pct": 0.875,
        "drop_path_rate": 0.1,
        "layer_scale_init": 1e-6,
        "weight_init": "trunc_normal",
        "ema": False,
        "ema_decay": 0.9999,
        "gradient_clip": None,
        # timm's RandomResizedCrop area range; no layer-wise lr decay (training from scratch).
        "crop_scale": (0.08, 1.0),
        "layer_decay": None,
        "layer_decay_kind": "single",
        "ema_reference_updates": None,  # EMA off: nothing to fit
        "head_init_scale": 1.0,
    }
    assert dataclasses.asdict(spec.recipe) == expected
    assert spec.network.layer_scale and spec.network.num_classes == 1000
    # Effective batch 4096 = per-device batch x devices x accumulation; lr scales linearly.
    plan = batch_plan(spec.recipe, get_preset("paper"), devices=8)
    assert (plan.per_device, plan.accumulation, plan.effective, plan.lr) == (128, 4, 4096, pytest.approx(4e-3))
    half = batch_plan(spec.recipe, get_preset("paper"), devices=8, accumulation=2)
    assert half.effective == 2048 and half.lr == pytest.approx(2e-3)
    assert "4096" in plan.describe(spec.recipe) and "linear scaling" in half.describe(spec.recipe)


def test_legacy_recipe_is_torchvision():
    spec = resolve(specs("resnet50")[0][1], get_preset("paper"), num_classes=1000)
    recipe = spec.recipe
    assert (recipe.epochs, recipe.opt, recipe.lr, recipe.momentum, recipe.weight_decay) == (
        90,
        "momentum",
        0.1,
        0.9,
        1e-4,
    )
    assert (recipe.sched, recipe.decay_epochs, recipe.decay_rate, recipe.no_decay_1d) == ("step", 30.0, 0.1, False)
    assert recipe.auto_augment is None and recipe.mixup == 0 and recipe.random_erasing == 0
    plan = batch_plan(recipe, get_preset("paper"), devices=2)
    assert plan.effective == 256 and plan.lr == pytest.approx(0.1)


def test_proxy_schedules_keep_their_proportions():
    cpu = get_preset("cpu")
    legacy = resolve(specs("resnet50")[0][1], cpu, 16).recipe
    modern = resolve(final_convnext_tiny(), cpu, 16).recipe
    assert modern.epochs / legacy.epochs == pytest.approx(300 / 90, rel=0.2)
    # The decays stay at 1/3 and 2/3 of the epochs trained (30 / 90 of 4), not at the scale's 1.2.
    assert modern.warmup_epochs >= 1 and legacy.decay_epochs == pytest.approx(30 * legacy.epochs / 90)
    with pytest.raises(PresetError, match="positive"):
        resolve(final_convnext_tiny(), cpu, 16, epochs=0)
    with pytest.raises(PresetError, match="cpu, tiny, paper"):
        get_preset("huge")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_proxies_keep_every_structural_change(preset):
    """Consecutive rows stay different networks after scaling (no step collapses to a no-op)."""
    rows = [resolve(spec, get_preset(preset), 10) for _, spec in specs("resnet50", branches=False)]
    for before, after in zip(rows, rows[1:]):
        assert before != after


def test_no_weight_decay_on_one_dimensional_parameters():
    spec = resolve(final_convnext_tiny(), get_preset("tiny"), 10)
    model = build(spec)
    optimizer = create_optimizer(model, spec.recipe, 1e-3, spec.network.depths)
    decayed = {id(p) for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    for name, parameter in model.named_parameters():
        assert (id(parameter) in decayed) == (parameter.ndim > 1), name
    assert any("layer_scale" in name for name, _ in model.named_parameters())
    assert isinstance(optimizer, torch.optim.AdamW)
