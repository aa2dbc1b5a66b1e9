"""FCMAE as a row and the convnext-v2-codesign roadmap: planning, both phases trained by the real
loop and jobs, resumption of each phase after kill -9, the report's co-design table, bad input."""

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_cli  # the script in a subprocess
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line
from test_train import untimed  # the timing filter of the training tests
from timm.utils import random_seed

from roadmap.fcmae.trainer import FineTuner, PretrainTrainer, pretrain_task
from roadmap.files.atomic import read_json
from roadmap.files.layout import read_json_lines
from roadmap.network.build import build
from roadmap.network.roadmaps import ROADMAPS, specs
from roadmap.report.codesign import codesign_table, write_codesign
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run, rows_for
from roadmap.spec import Spec
from steps import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
CODESIGN = ("v1_supervised", "v1_fcmae", "v2_supervised", "v2_fcmae")


def test_codesign_rows_are_the_four_cells():
    rows = dict(specs("convnext_v2_codesign", branches=True))
    assert list(rows) == list(CODESIGN)
    v1, v2 = rows["v1_supervised"], rows["v2_supervised"]
    assert not v1.network.grn and v1.network.layer_scale and v1.recipe.ema and v1.pretrain is None
    assert v2.network.grn and not v2.network.layer_scale and v2.pretrain is None
    # FCMAE changes the recipe and adds pre-training, never the network.
    assert rows["v1_fcmae"].network == v1.network and rows["v2_fcmae"].network == v2.network
    for name in ("v1_fcmae", "v2_fcmae"):
        spec = rows[name]
        assert spec.pretrain.mask_ratio == 0.6 and spec.pretrain.epochs == 800
        assert spec.pretrain.lr == pytest.approx(1.5e-4 * 4096 / 256) and spec.pretrain.opt_betas == (0.9, 0.95)
        assert spec.pretrain.crop_scale == (0.2, 1.0)
        # ConvNeXt-T's fine-tuning (papers.md 5.2): blr 8e-4 at batch 1024, layer decay 0.9, EMA, 300 epochs.
        recipe = spec.recipe
        assert (
            recipe.name,
            recipe.lr,
            recipe.batch_size,
            recipe.layer_decay,
            recipe.ema,
            recipe.epochs,
            recipe.drop_path_rate,
        ) == ("v2-finetune-tiny", pytest.approx(3.2e-3), 1024, 0.9, True, 300, 0.2)
        assert Spec.from_dict(json.loads(spec.to_json())) == spec


def test_specs_without_fcmae_keep_their_keys():
    """Fields added for FCMAE stay out of every other spec's dict, so finished steps keep their keys."""
    for roadmap in ROADMAPS:
        for _, spec in specs(roadmap):
            data = spec.to_dict()
            if spec.pretrain is None:
                assert "pretrain" not in data and "crop_scale" not in data["recipe"]
                assert "layer_decay" not in data["recipe"]


def test_base_model_gets_the_base_fine_tuning():
    options = RunOptions(roadmap="convnext_v2_codesign", model="convnext_base", preset="paper")
    rows = dict(rows_for(options).rows)
    assert list(rows) == list(CODESIGN) and rows["v2_fcmae"].network.widths == (128, 256, 512, 1024)
    recipe = rows["v1_fcmae"].recipe
    assert (recipe.layer_decay, recipe.layer_decay_kind, recipe.epochs) == (0.6, "group", 100)


def test_plan_counts_pre_training_hours(tmp_path):
    result = run_cli(
        "--roadmap",
        "convnext-v2-codesign",
        "--preset",
        "tiny",
        "--results",
        str(tmp_path),
        "--plan",
        "--format",
        "json",
        "--throughput",
        "1000",
        "--loader-throughput",
        "2000",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["step"]: row for row in json.loads(result.stdout)}
    info = plan_run(RunOptions(roadmap="convnext_v2_codesign", preset="tiny", results=str(tmp_path))).info
    images = info.train_images
    planned = {row.step: row for row in info.rows}
    for step in CODESIGN:
        epochs = planned[step].epochs + planned[step].pretrain_epochs
        assert rows[step]["device_hours"] == pytest.approx(epochs * images / 1000 / 3600)
    assert rows["v1_supervised"]["pretrain_device_hours"] == 0 and rows["v2_fcmae"]["pretrain_device_hours"] > 0


def test_phases_hand_over_the_encoder_exactly(tmp_path):
    """Pre-training's data is FCMAE's; fine-tuning starts from the encoder it wrote, weight for weight,
    with layer-wise lr decay on the parameter groups."""
    options = RunOptions(model="convnext_tiny", steps=("fcmae",), preset="tiny", results=str(tmp_path), epochs=1)
    task = next(task for task in plan_run(options).tasks if task.step == "fcmae")
    assert task.resolution == 64  # raised from the tiny preset's 32 px: two or more 32 px patches
    phase = pretrain_task(task)
    pretrainer = PretrainTrainer(phase)
    crop = pretrainer.train_set.transforms[64].transforms[0]
    assert crop.scale == (0.2, 1.0) and "RandAugment" not in repr(pretrainer.train_set.transforms[64])
    assert pretrainer.loader.random_erasing is None  # no erasing on the device either
    parent = pretrainer.run()
    assert parent["status"] == "done" and parent["epochs"] == phase.spec.recipe.epochs
    encoder = torch.load(phase.paths.encoder)
    trainer = FineTuner(task, parent)
    state = trainer.model.state_dict()
    assert set(encoder) == {name for name in state if not name.startswith("head.")}
    for name, value in encoder.items():
        assert torch.equal(state[name], value), name
    scales = sorted({group["lr_scale"] for group in trainer.optimizer.param_groups})
    blocks = sum(task.spec.network.depths)  # one layer per block (the stem with the first), head
    assert scales == pytest.approx([0.9 ** (blocks - layer) for layer in range(blocks + 1)])
    # The new classifier starts at 0.001 of its initialisation (V2's head_init_scale), zero bias.
    random_seed(task.seed, 0)
    initial = build(task.spec).head.fc
    torch.testing.assert_close(trainer.model.head.fc.weight, initial.weight.to(trainer.device) * 0.001)
    assert not trainer.model.head.fc.bias.any()


def _kill_when(process: subprocess.Popen, folder: Path, deadline: float) -> None:
    """SIGKILL the launcher as soon as `folder` holds its first epoch's checkpoint (progress.json is
    written at most once a second: waiting for it let a tiny phase finish before the kill)."""
    while time.time() < deadline:
        if (folder / "checkpoint.pt").exists():
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"{folder} never reached its second epoch")
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(4)  # the orphaned job notices its launcher is gone and exits


@pytest.mark.slow
def test_kill_in_each_phase_then_rerun_gives_identical_metrics(tmp_path):
    args = [
        "--model",
        "convnext_tiny",
        "--steps",
        "fcmae",
        "--preset",
        "tiny",
        "--executor",
        "local",
        "--epochs",
        "4",
        "--workers",
        "1",
        "--deterministic",
    ]
    clean = run_cli(*args, "--results", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr[-2000:]
    killed = tmp_path / "killed"
    row = killed / "convnext-tiny-tiny-synthetic-custom" / "fcmae" / "0"
    deadline = time.time() + 400
    for phase_folder in (row / "pretrain", row):
        process = subprocess.Popen(
            [sys.executable, "run_roadmap.py", *args, "--results", str(killed)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _kill_when(process, phase_folder, deadline)
        assert not (phase_folder / "result.json").exists()
    resumed = run_cli(*args, "--results", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference = tmp_path / "clean" / "convnext-tiny-tiny-synthetic-custom" / "fcmae" / "0"
    for folder in ("pretrain", "."):
        assert untimed(read_json_lines(row / folder / "metrics.jsonl")) == untimed(
            read_json_lines(reference / folder / "metrics.jsonl")
        ), folder
    ours, theirs = read_json(row / "result.json"), read_json(reference / "result.json")
    for field in ("status", "top1", "top5", "pretrain_loss", "epochs", "key"):
        assert ours[field] == theirs[field], field
    assert (row / "pretrain" / "encoder.pt").exists() and ours["pretrain"]["key"] == f"{ours['key']}-pretrain"
    again = run_cli(*args, "--results", str(killed))  # both phases finished: nothing trains
    assert again.returncode == 0 and "0 to train, 2 already done" in again.stdout, again.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--steps", "fcmae"], "fcmae: needs a ConvNeXt-style network"),
        (["--roadmap", "convnext-v2-codesign", "--mask-ratio", "1.5"], "--mask-ratio must be in (0, 1)"),
        (["--roadmap", "convnext-v2-codesign", "--mask-ratio", "0"], "--mask-ratio must be in (0, 1)"),
        (["--mask-ratio", "0.5"], "--mask-ratio applies to FCMAE rows"),
        (["--roadmap", "convnext-v2-codesign", "--model", "convnextv2_tiny"], "starts from a V1 ConvNeXt"),
        (["--roadmap", "convnext-v2-codesign", "--mode", "single"], "only mode 'cumulative' applies"),
    ],
)
def test_bad_fcmae_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys, args, expected):
    assert expected in one_error_line(capsys, ["--preset", "tiny", "--results", str(tmp_path), *args])
    assert list(tmp_path.iterdir()) == []


def test_fcmae_step_refuses_a_bad_mask_ratio():
    convnext = dict(specs("convnext_v2_codesign"))["v1_supervised"]
    with pytest.raises(ValueError, match=r"mask ratio must be in \(0, 1\)"):
        REGISTRY["fcmae"].apply(convnext, mask_ratio=1.0)


# --- the co-design page: seeds, spread and a verdict only where an interval allows one ---------------
T_975_DOF_4, T_975_DOF_8 = 2.7764451051977987, 2.306004135204166


def codesign_rows(top1: list[float], std: float, seeds: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": list(CODESIGN),
            "top1_mean": top1,
            "top1_std": [std] * 4,
            "seeds_done": [seeds] * 4,
            "paper_top1": [83.8, 83.7, 84.3, 84.6],
            "pretrain_loss": [math.nan, 0.5, math.nan, 0.4],
        }
    )


def test_codesign_intervals_and_verdicts_by_hand(tmp_path):
    """3 seeds per row, std 0.2: a block's gain has se sqrt(0.08 / 3) and 4 Welch dof (half-width
    2.7764 * 0.1633 = 0.4534); the interaction over four rows se sqrt(0.16 / 3), 8 dof (0.5325)."""
    frame = codesign_table(codesign_rows([40.0, 40.3, 41.0, 43.0], 0.2, 3)).set_index("block")
    block_half, interaction_half = T_975_DOF_4 * math.sqrt(0.08 / 3), T_975_DOF_8 * math.sqrt(0.16 / 3)
    v1, v2, interaction = frame.loc["V1 (LayerScale)"], frame.loc["V2 (GRN)"], frame.iloc[2]
    assert (v1["gain 95% low"], v1["gain 95% high"]) == pytest.approx((0.3 - block_half, 0.3 + block_half))
    assert v1.verdict == "within noise" and v2.verdict == "gain" and v1.seeds == "3 / 3"
    assert interaction["FCMAE gain"] == pytest.approx(1.7) and interaction.seeds == "3 / 3 / 3 / 3"
    assert interaction["gain 95% low"] == pytest.approx(1.7 - interaction_half) and interaction.verdict == "gain"
    assert v1.spread == pytest.approx(0.2) and interaction.spread == pytest.approx(0.2)
    paths = write_codesign(codesign_rows([40.0, 40.3, 41.0, 43.0], 0.2, 3), tmp_path, "Run x.")
    text = paths["codesign_md"].read_text()
    assert "within noise" in text and "The claim holds on this run when the last row's verdict is gain" in text
    assert "The paper gives no seed std for these rows" in text


def test_codesign_with_one_seed_has_no_verdict_and_says_so(tmp_path):
    frame = codesign_table(codesign_rows([40.0, 40.3, 41.0, 43.0], math.nan, 1))
    assert frame.verdict.isna().all() and frame["gain 95% low"].isna().all() and frame.spread.isna().all()
    assert list(frame.seeds) == ["1 / 1", "1 / 1", "1 / 1 / 1 / 1"]
    text = write_codesign(codesign_rows([40.0, 40.3, 41.0, 43.0], math.nan, 1), tmp_path, "Run x.")["codesign_md"]
    text = text.read_text()
    assert text.count("none: fewer than 2 seeds") == 3  # every verdict cell
    assert "no interval and no verdict" in text and "cannot say whether the claim holds" in text
    for value in ("83.80", "83.70", "-0.10", "+0.30", "+0.40", "+0.30", "+1.70"):
        assert value in text, value
