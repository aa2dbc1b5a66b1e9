"""Compiled training and numerics as recorded settings (torch.compile on the CPU: slow, marked so)."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import torch

import roadmap
from roadmap.cost.numerics import Numerics, compiled_graphs
from roadmap.files.atomic import read_json
from roadmap.files.layout import read_json_lines
from roadmap.launch.job import run_step
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run
from roadmap.train.trainer import Trainer

# Compiled kernels sum in another order than eager ones: losses agree to this relative tolerance.
LOSS_TOLERANCE = 1e-3
TIMED_FIELDS = {
    "epoch_time_s",
    "data_wait_s",
    "images_per_s",
    "infer_images_per_s",
    "startup_time_s",
    "eval_startup_time_s",
}


def untimed(record):
    return {key: value for key, value in record.items() if key not in TIMED_FIELDS}


def tiny_task(tmp_path, step="resnet50", epochs=3, **numerics):
    plan = plan_run(RunOptions(upto=step, preset="tiny", results=str(tmp_path), epochs=epochs, workers=0))
    task = next(task for task in plan.tasks if task.step == step)
    return dataclasses.replace(task, numerics={**task.numerics, **numerics})


def train_first_epochs(task, epochs):
    """Train `epochs` epochs of `task` and leave only its checkpoint behind (as a killed run would)."""
    trainer = Trainer(task)
    trainer.recipe = dataclasses.replace(trainer.recipe, epochs=epochs)
    trainer.run()
    task.paths.result.unlink()


@pytest.mark.slow
def test_compiled_run_resumes_an_eager_checkpoint_and_matches_eager(tmp_path):
    # fp32 and NCHW asked for: the device's defaults (bf16, channels-last on a GPU) are not what this checks.
    eager = tiny_task(tmp_path / "eager", compile=False, precision="fp32", channels_last=False)
    reference = run_step(eager)
    mixed = dataclasses.replace(eager, run_dir=str(tmp_path / "mixed"))
    train_first_epochs(mixed, 1)
    written = read_json_lines(mixed.paths.metrics)  # the eager epoch, as its checkpoint holds it
    compiled = dataclasses.replace(mixed, numerics={**mixed.numerics, "compile": True})
    assert compiled.key == eager.key  # compilation is how it runs, not what it trains
    result = run_step(compiled)
    assert result["status"] == "done" and result["epochs"] == 3
    assert (result["compiled"], result["precision"], result["channels_last"]) == (True, "fp32", False)
    assert result["recompiles_after_first_epoch"] == 0 and result["startup_time_s"] > 0
    history = read_json_lines(compiled.paths.metrics)
    expected = read_json_lines(eager.paths.metrics)
    assert untimed(history[0]) == untimed(written[0])  # the eager epoch, resumed as it was written
    assert history[1]["startup_time_s"] > 0 and history[2]["startup_time_s"] == 0
    assert reference["compiled"] is False and read_json(eager.paths.result)["environment"]["torch"]
    if torch.cuda.is_available():
        # Two GPU runs of one step differ from their first epoch on (cuDNN's and the pooling
        # backward's summation order, measured on an H200): only the CPU compares them number for number.
        return
    assert untimed(written[0]) == untimed(expected[0])
    for record, reference_record in zip(history[1:], expected[1:]):
        for field in ("train_loss", "val_loss"):
            assert record[field] == pytest.approx(reference_record[field], rel=LOSS_TOLERANCE), field
        assert abs(record["top1"] - reference_record["top1"]) <= 100 / 128 + 1e-9  # at most one image


@pytest.mark.slow
def test_a_modern_row_compiles_once(tmp_path):
    """LayerNorm, GELU, drop path, layer scale and Mixup: nothing recompiles after the first epoch."""
    result = run_step(tiny_task(tmp_path, step="ln", epochs=2, compile=True))
    assert result["status"] == "done" and result["recompiles_after_first_epoch"] == 0


@pytest.mark.slow
def test_compiled_evaluation_compiles_nothing_for_the_short_last_batch(tmp_path):
    # A fresh start, as in a job's process: the tests before this one in the same process may have
    # left torch.compile a graph with a dynamic batch size for this network's code, which any batch fits.
    torch.compiler.reset()
    trainer = Trainer(dataclasses.replace(tiny_task(tmp_path, epochs=1, compile=True), per_device_batch=24))
    assert len(trainer.val_pass.dataset) % trainer.pad_eval_to  # the last batch is short
    trainer.evaluate()  # compiles the network for evaluation
    graphs = compiled_graphs()
    trainer.evaluate()
    assert compiled_graphs() == graphs
    trainer.pad_eval_to = None  # unpadded, the short batch is a new shape: torch.compile builds again
    trainer.evaluate()
    assert compiled_graphs() > graphs


def test_precision_is_applied_and_recorded(tmp_path):
    result = run_step(tiny_task(tmp_path, epochs=1, precision="bf16", channels_last=True, compile=False))
    assert (result["precision"], result["channels_last"], result["compiled"]) == ("bf16", True, False)
    environment = result["environment"]
    assert {"torch", "timm", "cuda", "cudnn", "roadmap", "git_commit", "device"} <= set(environment)
    checkout = Path(roadmap.__file__).resolve().parents[1]
    if (checkout / ".git").exists():  # run from a checkout: its commit is recorded
        head = subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert environment["git_commit"].removesuffix("+dirty") == head.stdout.strip()


def test_proxy_presets_do_not_compile_unless_asked(tmp_path):
    def planned(preset, numerics=Numerics()):
        options = RunOptions(upto="resnet50", preset=preset, results=str(tmp_path), numerics=numerics)
        return plan_run(options).tasks[0].numerics["compile"]

    # None: the device decides (on with CUDA, off on the CPU); the proxies train for seconds per epoch.
    assert planned("paper") is None and planned("tiny") is False and planned("cpu") is False
    assert planned("tiny", Numerics(compile=True)) is True
