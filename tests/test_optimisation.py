"""The official schedules per iteration, parameter groups and fitted EMA (roadmap.train.optimisation), pinned
with hand-computed figures, and the checker of every recipe x preset (benchmarks/official_schedules.py)."""

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import roadmap
import roadmap.runs.plan
from roadmap.fcmae.decoder import FcmaeDecoder
from roadmap.fcmae.masking import MaskedEncoder
from roadmap.fcmae.model import FcmaeModel
from roadmap.fcmae.trainer import PretrainTrainer, pretrain_recipe, pretrain_task
from roadmap.network.build import build
from roadmap.recipes import LEGACY, MODERN, V2_FINETUNE
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run
from roadmap.spec import Spec
from roadmap.train.optimisation import (
    TRAINING_RULES,
    OptimisationError,
    create_lr_scheduler,
    create_optimizer,
    first_weights_share,
    fitted_ema_decay,
    layer_decay_groups,
    paper_updates,
    scheduled_lr,
)
from roadmap.train.presets import get_preset, resolve
from roadmap.train.trainer import Trainer
from steps import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def lrs(recipe, updates_per_epoch, iterations, peak=1.0):
    """The lr of the scale-1 group at each of `iterations`, as the trainer steps the scheduler."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=peak)
    scheduler = create_lr_scheduler(optimizer, recipe, updates_per_epoch)
    values = []
    for t in iterations:
        scheduler.step_update(num_updates=t)
        values.append(optimizer.param_groups[0]["lr"])
    return values


def test_cosine_warms_up_to_the_peak_then_spans_the_remaining_updates():
    # 10 epochs of 5 updates, warm-up 2 epochs: W = 10, T = 50; the cosine runs over t = 10..50.
    recipe = replace(MODERN, epochs=10, warmup_epochs=2, min_lr=1e-6, lr=4e-3)
    at = lrs(recipe, 5, [0, 5, 10, 30, 50], peak=4e-3)
    assert at[0] == 0.0
    assert at[1] == pytest.approx(4e-3 * 5 / 10)  # linear from 0
    assert at[2] == pytest.approx(4e-3)  # the peak right after the warm-up (timm without prefix: 3.62e-3)
    assert at[3] == pytest.approx(1e-6 + (4e-3 - 1e-6) / 2)  # half-way through the cosine after it
    assert at[4] == pytest.approx(1e-6)


def test_cosine_without_warm_up_is_the_v2_atto_fine_tune():
    recipe = replace(V2_FINETUNE["atto"], epochs=6)  # 0 warm-up epochs
    at = lrs(recipe, 4, [0, 6, 12], peak=8e-4)  # T = 24: a quarter and half of the cosine
    quarter = 1e-6 + (8e-4 - 1e-6) * 0.5 * (1 + math.cos(math.pi / 4))
    assert at == pytest.approx([8e-4, quarter, 1e-6 + (8e-4 - 1e-6) / 2])


def test_legacy_decays_twice_at_a_third_and_two_thirds_on_the_cpu_proxy():
    recipe = resolve(roadmap.specs("resnet50")[0][1], get_preset("cpu"), 16).recipe
    assert (recipe.epochs, recipe.decay_epochs) == (4, pytest.approx(4 / 3))  # 90 -> 4 epochs, 30 -> 4/3
    # 31 updates per epoch: T = 124, decays at 124/3 = 41.3 and 82.7 (was: every 1.2 epochs, three times).
    at = lrs(recipe, 31, [0, 41, 42, 82, 83, 123], peak=0.1)
    assert at == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    paper = resolve(roadmap.specs("resnet50")[0][1], get_preset("paper"), 1000).recipe
    assert paper.decay_epochs == 30.0  # torchvision's epochs 30 and 60 of 90


def test_v2_single_layer_decay_puts_the_stem_with_the_first_block():
    network = roadmap.build(roadmap.model("convnextv2_atto"))  # depths (2, 2, 6, 2), 12 blocks
    groups = layer_decay_groups(network, (2, 2, 6, 2), weight_decay=0.3, layer_decay=0.9, kind="single")
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    named = dict(network.named_parameters())
    assert len(scale) == len(named)
    expected = {  # official layer id -> 0.9 ** (13 - id)
        "stem.conv.weight": 0.9**12,  # 0.282 of the peak (0.254 when the stem was layer 0)
        "stages.0.blocks.0.pointwise1.weight": 0.9**12,
        "stages.0.blocks.1.pointwise1.weight": 0.9**11,
        "stages.1.downsample.conv.weight": 0.9**10,
        "stages.2.blocks.5.pointwise1.weight": 0.9**3,  # id 2 + 2 + 5 + 1 = 10
        "stages.3.blocks.1.pointwise1.weight": 0.9**1,
        "head.fc.weight": 1.0,
    }
    for name, value in expected.items():
        assert scale[id(named[name])] == pytest.approx(value), name


def test_the_logged_lr_is_the_schedules_not_the_stems_under_layer_decay():
    """The V2 atto fine-tune (layer decay 0.9, no warm-up): at update 0 the schedule is at its peak;
    group 0 (the stem, layer 1 of 13) holds 0.9**12 of it, which the trainer used to log."""
    recipe = replace(V2_FINETUNE["atto"], epochs=6)
    network = roadmap.build(roadmap.model("convnextv2_atto"))
    optimizer = create_optimizer(network, recipe, 8e-4, (2, 2, 6, 2))
    scheduler = create_lr_scheduler(optimizer, recipe, 4)
    scheduler.step_update(num_updates=0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(8e-4 * 0.9**12)
    assert scheduled_lr(optimizer) == 8e-4
    scheduler.step_update(num_updates=12)  # half-way through the cosine
    assert scheduled_lr(optimizer) == pytest.approx(1e-6 + (8e-4 - 1e-6) / 2)
    plain = create_optimizer(network, MODERN, 4e-3)  # no layer decay: every group's lr is the schedule's
    assert scheduled_lr(plain) == plain.param_groups[0]["lr"] == 4e-3


def test_v2_group_layer_decay_keeps_the_twelve_official_ids_on_a_proxy():
    spec = resolve(REGISTRY.get("fcmae").function(roadmap.model("convnextv2_base")), get_preset("cpu"), 16)
    depths = spec.network.depths
    assert depths == (1, 1, 9, 1)
    network = roadmap.build(spec)
    groups = layer_decay_groups(network, depths, 0.05, 0.6, kind="group")
    scale = {id(p): g["lr_scale"] for g in groups for p in g["params"]}
    named = dict(network.named_parameters())
    expected = {
        "stem.conv.weight": 0.6**13,  # 0.6 ** 7 when timm renumbered the groups
        "stages.0.blocks.0.pointwise1.weight": 0.6**12,
        "stages.1.blocks.0.pointwise1.weight": 0.6**11,
        "stages.2.blocks.2.pointwise1.weight": 0.6**10,
        "stages.2.blocks.3.pointwise1.weight": 0.6**9,
        "stages.2.blocks.8.pointwise1.weight": 0.6**8,
        "stages.3.downsample.conv.weight": 0.6**1,
        "head.fc.weight": 1.0,
    }
    for name, value in expected.items():
        assert scale[id(named[name])] == pytest.approx(value), name
    with pytest.raises(OptimisationError, match="layer decay must be in"):
        layer_decay_groups(network, depths, 0.05, 0.0)


def decayed_names(module, optimizer):
    decayed = {id(p) for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    return {name for name, parameter in module.named_parameters() if id(parameter) in decayed}


def test_weight_decay_per_parameter_as_each_official_recipe():
    spec = resolve(REGISTRY.get("fcmae").function(roadmap.model("convnextv2_tiny")), get_preset("tiny"), 8)
    network = roadmap.build(spec)
    names = {name for name, _ in network.named_parameters()}
    matrices = {name for name, p in network.named_parameters() if p.ndim > 1}
    grn = {name for name in names if ".grn." in name}
    assert grn and grn.isdisjoint(matrices)
    # Fine-tuning (V2 get_parameter_groups): 1-D, biases, GRN gamma/beta exempt.
    finetune = create_optimizer(network, spec.recipe, 1e-3, spec.network.depths)
    assert decayed_names(network, finetune) == matrices
    # Pre-training (timm's add_weight_decay on the sparse encoder's (1, C) GRN tensors): GRN decayed.
    encoder = MaskedEncoder(network)
    model = FcmaeModel(encoder, FcmaeDecoder(encoder.width, encoder.patch_size, 64))
    pretrain = create_optimizer(model, pretrain_recipe(spec), 1e-3, decay_grn=True)
    pretrain_matrices = {name for name, p in model.named_parameters() if p.ndim > 1 or ".grn." in name}
    assert decayed_names(model, pretrain) == pretrain_matrices
    assert {"encoder.network." + name for name in grn} <= pretrain_matrices
    # torchvision's legacy recipe decays every parameter, biases and BatchNorm included.
    resnet = roadmap.build(roadmap.specs("resnet50")[0][1])
    legacy = create_optimizer(resnet, LEGACY, 0.1)
    assert decayed_names(resnet, legacy) == {name for name, _ in resnet.named_parameters()}


def test_ema_decay_fitted_to_the_same_fraction_of_training():
    # V2-T fine-tuning: 300 epochs x (1,281,167 // 1024 = 1251) = 375,300 updates at the paper's length.
    assert paper_updates(V2_FINETUNE["tiny"]) == 375_300
    # On the cpu preset's 372 updates: 1 - 1e-4 x 375300 / 372 = 0.899113 (a horizon of 2.66% of training).
    assert fitted_ema_decay(0.9999, 375_300, 372) == pytest.approx(1 - 1e-4 * 375_300 / 372)
    assert fitted_ema_decay(0.9999, 375_300, 372) == pytest.approx(0.899113, abs=1e-6)
    assert fitted_ema_decay(0.9999, 375_300, 375_300) == pytest.approx(0.9999)  # the paper's own length
    assert fitted_ema_decay(0.9999, 375_300, 16) == 0.0  # shorter than one time constant: the raw model
    assert fitted_ema_decay(0.9999, None, 372) == 0.9999
    # The first step's weights left: 0.9999 ** 372 = 96.3% unfitted, 0.899113 ** 372 ~ 7e-18 fitted.
    assert first_weights_share(0.9999, 372) == pytest.approx(0.9634, abs=1e-4)
    assert first_weights_share(fitted_ema_decay(0.9999, 375_300, 372), 372) < 1e-15
    resolved = resolve(REGISTRY.get("fcmae").function(roadmap.model("convnextv2_tiny")), get_preset("cpu"), 16)
    assert resolved.recipe.ema_reference_updates == 375_300  # recorded where the preset shortens it
    assert resolve(roadmap.specs("resnet50")[-1][1], get_preset("cpu"), 16).recipe.ema_reference_updates is None


def test_schedule_changes_move_every_key_but_keep_the_spec_hash_of_untouched_fields():
    """A spec without the later fields serialises as before; the trainer's rules version is in the key."""
    spec = roadmap.specs("resnet50")[-1][1]
    assert "grn_pooling" not in spec.to_dict()["network"] and "head_init_scale" not in spec.to_dict()["recipe"]
    assert Spec.from_dict(spec.to_dict()) == spec


@pytest.mark.slow
def test_the_checker_passes_every_recipe_on_the_cpu_presets():
    checked = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "official_schedules.py"), "--presets", "tiny", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 failing case(s)" in checked.stdout and checked.stdout.count(" | exact | ") == 14


def test_the_training_rules_are_part_of_every_key(tmp_path, monkeypatch):
    """Results trained under earlier rules (another schedule, groups or EMA) are another experiment."""
    options = RunOptions(upto="recipe", preset="tiny", results=str(tmp_path), epochs=1)
    keys = [task.key for task in plan_run(options).tasks]
    monkeypatch.setattr(roadmap.runs.plan, "TRAINING_RULES", TRAINING_RULES - 1)
    older = [task.key for task in plan_run(options).tasks]
    assert len(keys) == 2 and all(new != old for new, old in zip(keys, older))


def test_pretraining_trainer_decays_grn_and_the_fine_tuning_trainer_does_not(tmp_path):
    options = RunOptions(model="convnextv2_atto", steps=("fcmae",), preset="tiny", results=str(tmp_path), epochs=1)
    task = next(task for task in plan_run(options).tasks if task.step == "fcmae")
    pretrainer = PretrainTrainer(pretrain_task(task))
    decay_of = {id(p): g["weight_decay"] for g in pretrainer.optimizer.param_groups for p in g["params"]}
    grn = [p for name, p in pretrainer.model.named_parameters() if ".grn." in name]
    assert grn and all(decay_of[id(p)] == 0.05 for p in grn)
    network = build(task.spec)
    finetune = create_optimizer(network, task.spec.recipe, 1e-3, task.spec.network.depths)
    decay_of = {id(p): g["weight_decay"] for g in finetune.param_groups for p in g["params"]}
    assert all(decay_of[id(p)] == 0.0 for name, p in network.named_parameters() if ".grn." in name)


@pytest.mark.slow
def test_a_row_with_an_ema_evaluates_both_weights_and_reports_the_ema(tmp_path):
    options = RunOptions(model="convnext_tiny", preset="tiny", results=str(tmp_path), epochs=2, workers=0)
    task = plan_run(options).tasks[0]
    trainer = Trainer(task)
    # 2 epochs of 256 // 32 = 8 updates against the paper's 300 x 312 = 93,600: 1 - 1e-4 x 93,600 / 16 = 0.415.
    assert trainer.recipe.ema_reference_updates == 300 * (1_281_167 // 4096)
    assert trainer.ema_decay == pytest.approx(0.415) and trainer.ema.decay == trainer.ema_decay
    result = trainer.run()
    assert result["reported_weights"] == "ema" and result["ema_decay"] == pytest.approx(0.415)
    assert (result["top1"], result["top5"]) == (result["top1_ema"], result["top5_ema"])
    assert 0 <= result["top1_raw"] <= 100 and 0 <= result["top5_raw"] <= 100
    for record in trainer.history:
        assert record["top1"] == record["top1_ema"] and {"top1_raw", "val_loss_raw", "val_loss_ema"} <= set(record)
