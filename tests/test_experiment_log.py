"""TensorBoard events, W&B offline runs and batch-log progress lines of real tiny training jobs,
read back with TensorBoard's own reader and W&B's own files."""

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line
from test_train import tiny_task

from roadmap.experiment_log import ExperimentLog, epoch_scalars
from roadmap.files import read_json_lines
from roadmap.job import run_step
from roadmap.spec import Spec

ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 2


def scalars(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def session_start(events: EventAccumulator):
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    return plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info


# The tiny preset: 256 training images in batches of 32; a scalar's step is the batches trained.
BATCHES = 256 // 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny step x seed trained in this process (its folder is shared: tests copy before writing)."""
    task = tiny_task(tmp_path_factory.mktemp("trained"), epochs=EPOCHS)
    assert run_step(task)["status"] == "done"
    return task


def assert_scalars_match_metrics(task) -> None:
    """Every number of every metrics.jsonl record is the epoch scalar of its key, at the epoch's last
    batch, to float32 precision; one point per epoch."""
    records = read_json_lines(task.paths.metrics)
    events = scalars(task.paths.tensorboard)
    assert len(records) == EPOCHS
    for tag in epoch_scalars(records[0]):
        points = events.Scalars(tag)
        assert [point.step for point in points] == [record["epoch"] * BATCHES for record in records], tag
        expected = [record[tag.removeprefix("epoch/")] for record in records]
        assert [point.value for point in points] == pytest.approx(expected, rel=1e-6, abs=1e-30), tag


def test_event_scalars_match_metrics_and_carry_hparams(trained):
    assert_scalars_match_metrics(trained)
    tags = scalars(trained.paths.tensorboard).Tags()["scalars"]
    for key in ("train_loss", "lr", "top1", "top5", "images_per_s", "data_wait_s"):
        assert f"epoch/{key}" in tags
    assert len(list(trained.paths.tensorboard.glob("events.out.tfevents.*"))) == 1
    hparams = session_start(scalars(trained.paths.tensorboard)).hparams
    spec = Spec.from_dict(trained.spec)
    assert hparams["spec_hash"].string_value == spec.content_hash()
    assert hparams["preset"].string_value == "tiny" and hparams["key"].string_value == trained.key
    assert hparams["recipe/epochs"].number_value == EPOCHS
    assert hparams["recipe/opt"].string_value == spec.recipe.opt


def test_resumed_step_writes_no_point_twice(trained, tmp_path):
    """A job killed after its last epoch's events reached disk but with only the epoch before it
    checkpointed: the resumed job trains that epoch again, and the reader shows each epoch once."""
    task = dataclasses.replace(trained, run_dir=str(tmp_path / "run"))
    shutil.copytree(trained.paths.folder, task.paths.folder)
    task.paths.result.unlink()
    os.replace(task.paths.previous_checkpoint, task.paths.checkpoint)  # the checkpoint after epoch 1
    assert run_step(task)["status"] == "done"
    files = sorted(task.paths.tensorboard.glob("events.out.tfevents.*"))
    assert len(files) == 2  # one per process
    written = [
        value.tag for path in files for event in EventFileLoader(str(path)).Load() for value in event.summary.value
    ]
    assert written.count("epoch/top1") == EPOCHS + 1  # on disk, epoch 2 twice; the purge hides the first
    assert written.count("_hparams_/session_start_info") == 1  # the resumed job wrote none
    assert_scalars_match_metrics(task)


def test_iteration_points_are_window_means_of_the_loss(trained, tmp_path):
    """Every 50 batches: the mean loss over the batches since the last point (per rank), and the lr."""
    task = dataclasses.replace(trained, run_dir=str(tmp_path / "run"))
    log = ExperimentLog()
    log.open(task, 0, ("top1",))
    log.iteration(0, 10, 99.0, 0.1, 2)  # not a point
    log.iteration(0, 50, 200.0, 0.1, 2)  # mean of 50 batches x 2 ranks: 2.0
    log.iteration(0, 100, 300.0, 0.2, 2)  # the 50 batches since: 1.0
    log.iteration(128, 50, 50.0, 0.3, 2)  # a new epoch's sums start again: 0.5
    log.close()
    events = scalars(task.paths.tensorboard)
    loss = [(point.step, point.value) for point in events.Scalars("iteration/train_loss")]
    assert loss == [(50, 2.0), (100, 1.0), (178, 0.5)]
    assert [point.value for point in events.Scalars("iteration/lr")] == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.slow  # a whole CLI run through submitit's local executor: about half a minute
def test_progress_lines_when_stdout_is_a_file(tmp_path):
    """A run with its output sent to a file (bars disabled) prints progress lines, and so does the
    job's own log (the batch log a SLURM job leaves)."""
    output = tmp_path / "out.txt"
    args = ["--upto", "resnet50", "--preset", "tiny", "--epochs", "3", "--executor", "local"]
    with open(output, "w") as handle:
        finished = subprocess.run(
            [sys.executable, "run_roadmap.py", *args, "--results", str(tmp_path / "results")],
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            env={**os.environ, "ROADMAP_PROGRESS_SECONDS": "0"},
        )
    assert finished.returncode == 0, finished.stderr[-2000:]
    lines = [line for line in output.read_text().splitlines() if line.startswith("resnet50 seed 0: epoch ")]
    assert lines, output.read_text()
    assert f"iteration {BATCHES}/{BATCHES}" in lines[0] and "/3, " in lines[0]
    for part in ("images/s, data wait ", "%, step ETA ", ", run ETA ~"):
        assert part in lines[0]
    job_logs = "".join(path.read_text() for path in (tmp_path / "results").rglob("submitit/*_log.out"))
    assert "resnet50 seed 0: epoch 1/3, iteration" in job_logs and "step ETA" in job_logs


def test_wandb_without_its_package_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # how Python marks a module that cannot be imported
    argv = ["--upto", "resnet50", "--preset", "tiny", "--results", str(tmp_path), "--wandb", "roadmap"]
    assert 'pip install ".[wandb]"' in one_error_line(capsys, argv)
    assert list(tmp_path.iterdir()) == []


def test_wandb_offline_run_per_step_and_seed(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    task = dataclasses.replace(tiny_task(tmp_path, epochs=1), wandb_project="roadmap-test")
    assert run_step(task)["status"] == "done"
    runs = list(task.paths.wandb.glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb")), list(task.paths.wandb.rglob("*"))
