"""TensorBoard events, W&B offline runs and batch-log progress lines of real tiny training jobs,
read back with TensorBoard's own reader and W&B's own files."""

import dataclasses
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line
from test_train import tiny_task

from roadmap.fcmae.trainer import pretrain_task
from roadmap.files.layout import read_json_lines
from roadmap.launch.executors import ClusterOptions
from roadmap.launch.job import run_step
from roadmap.launch.progress import ProgressLines, array_lines, running_progress
from roadmap.launch.run import _RunProgress, launch
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run, write_plan
from roadmap.train.experiment_log import ExperimentLog, epoch_scalars
from roadmap.train.progress import StepProgress, duration

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
    spec = trained.spec
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
    """A run with stdout in a file and stderr in a pipe (no terminal: tqdm's bars, on stderr, are
    disabled) prints progress lines to stdout, and so does the job's own log (the batch log a SLURM
    job leaves)."""
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


def fcmae_plan(results: Path, seeds: int = 1):
    """The tiny `--steps fcmae` run of convnext_tiny: rows convnext_tiny and fcmae (pre-training first)."""
    options = RunOptions(
        model="convnext_tiny", steps=("fcmae",), preset="tiny", epochs=1, seeds=seeds, results=str(results)
    )
    plan = plan_run(options)
    return plan, {row.step: row.epochs for row in plan.info.rows}


@pytest.mark.slow  # a pre-training and a fine-tuning through submitit's local executor: 15 to 50 s
def test_pretraining_prints_progress_lines_where_stdout_is_no_terminal(tmp_path, capsys, monkeypatch):
    """The local launcher's lines follow the pre-training phase (its progress.json is in pretrain/),
    then the fine-tuning; the job's own log has the pre-training's lines too."""
    monkeypatch.setenv("ROADMAP_PROGRESS_SECONDS", "0")  # read here and by the job it starts
    plan, epochs = fcmae_plan(tmp_path)
    write_plan(plan)
    task = next(task for task in plan.tasks if task.step == "fcmae")
    submitit = plan.run_dir / "submitit"
    results = launch([task], epochs, "local", submitit, ClusterOptions(), 1, wait=True)
    assert [result["status"] for result in results] == ["done"]
    printed = capsys.readouterr().out  # stderr captured too (no terminal): no bars, lines instead
    pretraining = [line for line in printed.splitlines() if line.startswith("fcmae seed 0 pretrain: epoch ")]
    pretrain_epochs = task.spec.pretrain.epochs
    assert pretraining and f"/{pretrain_epochs}, iteration " in pretraining[0], printed
    for part in ("images/s, data wait ", "%, step ETA ", ", run ETA ~"):
        assert part in pretraining[0]
    assert "fcmae seed 0: epoch 1/1, iteration " in printed and "[1/1] fcmae seed 0: top-1" in printed
    job_logs = "".join(path.read_text() for path in submitit.glob("*_log.out"))
    assert f"fcmae seed 0 pretrain: epoch 1/{pretrain_epochs}, iteration" in job_logs


def test_array_lines_from_the_run_folder(trained, tmp_path):
    """The SLURM launcher's lines come from the files alone: a step with a finished result.json and a
    step whose job ended say nothing, a running step and a pre-training step say their progress line
    with the array's run ETA, a step not started adds its epochs to that ETA."""
    plan, epochs = fcmae_plan(tmp_path / "fcmae", seeds=2)
    (supervised, ended), (fcmae, waiting) = ([t for t in plan.tasks if t.step == s] for s in ("convnext_tiny", "fcmae"))
    done = dataclasses.replace(trained, run_dir=str(tmp_path / "resnet"))
    shutil.copytree(trained.paths.folder, done.paths.folder)  # result.json of a real finished step
    rates = {"images_per_s": 100.0, "data_wait_share": 0.25, "seconds": 5.0}
    # The trainer's own writer: 10 s per finished epoch, halfway through the second of 2: 5 s left.
    StepProgress(supervised, None).update(1, 2, 4, 8, rates, 10.0)
    pretraining = pretrain_task(fcmae)
    pretrain_epochs = pretraining.spec.recipe.epochs
    # 4 s per pre-training epoch, a quarter into the third: 4 x (E - 2.25) s, then its fine-tuning.
    StepProgress(pretraining, None).update(2, pretrain_epochs, 2, 8, rates, 8.0)
    left = [5.0, 4 * (pretrain_epochs - 2.25) + 4 * epochs["fcmae"]]
    waiting_work = (epochs["fcmae"] + pretrain_epochs) * (10.0 + 4.0) / 2  # at the running steps' mean pace
    eta = max(*left, (sum(left) + waiting_work) / 2)
    tasks = [done, supervised, ended, fcmae, waiting]
    said: dict[int, tuple] = {}
    lines = array_lines(tasks, {**epochs, "resnet50": EPOCHS}, {2}, said)
    assert lines == [
        f"convnext_tiny seed 0: epoch 2/2, iteration 4/8, 100.0 images/s, data wait 25%, step ETA 5s, "
        f"run ETA ~{duration(eta)}",
        f"fcmae seed 0 pretrain: epoch 3/{pretrain_epochs}, iteration 2/8, 100.0 images/s, data wait 25%, "
        f"step ETA {duration(left[1] - 4 * epochs['fcmae'])}, run ETA ~{duration(eta)}",
    ]
    assert array_lines(tasks, {**epochs, "resnet50": EPOCHS}, {2}, said) == []  # nothing moved
    StepProgress(supervised, None).update(1, 2, 6, 8, rates, 10.0)
    moved = array_lines(tasks, {**epochs, "resnet50": EPOCHS}, {2}, said)
    assert len(moved) == 1 and moved[0].startswith("convnext_tiny seed 0: epoch 2/2, iteration 6/8")


RATES = {"images_per_s": 100.0, "data_wait_share": 0.25, "seconds": 5.0}


def test_local_progress_lines_count_the_steps_left_from_the_launchers_record(tmp_path, capsys, monkeypatch):
    """Two steps trained one after the other where no bar shows (pytest's stderr is no terminal): the
    first step's line adds the second step's epochs to the run ETA, the second's adds none. The
    roadmap bar could not say so: a disabled tqdm bar ignores update(), its count stayed 0."""
    monkeypatch.setenv("ROADMAP_PROGRESS_SECONDS", "0")
    first, second = plan_run(RunOptions(upto="recipe", preset="tiny", results=str(tmp_path), epochs=2)).tasks
    run = _RunProgress(2, print)
    assert run.bar.disable
    for task in (first, second):  # 10 s per finished epoch, halfway through the second of 2: 5 s left
        StepProgress(task, None).update(1, 2, 4, 8, RATES, 10.0)
    ProgressLines(first, 2, run).poll()
    result = {"status": "done", "top1": 50.0, "epochs": 2, "wall_time_s": 20.0, "gflops": 4.1, "proxy_gflops": 0.01}
    run.finished(first, {**result, "resolution": 32})
    ProgressLines(second, 2, run).poll()
    lines = [line for line in capsys.readouterr().out.splitlines() if "iteration 4/8" in line]
    assert [line.split(", run ETA ")[-1] for line in lines] == [f"~{duration(5 + 2 * 10)}", f"~{duration(5)}"]
    assert lines[0].startswith("resnet50 seed 0: ") and lines[1].startswith("recipe seed 0: ")


def test_progress_of_another_configuration_is_ignored(tmp_path):
    """progress.json carries its task's key: a file left by a crashed job of another configuration
    shows no queued step as running, and on an FCMAE row hides no running pre-training."""
    plan, epochs = fcmae_plan(tmp_path)
    supervised, fcmae = (next(t for t in plan.tasks if t.step == step) for step in ("convnext_tiny", "fcmae"))
    for task in (supervised, fcmae):  # the stale files: same folders, an earlier configuration's key
        StepProgress(dataclasses.replace(task, key="0123456789abcdef"), None).update(0, 2, 4, 8, RATES, 0.0)
        assert task.paths.read_progress()["key"] == "0123456789abcdef"
    assert running_progress(supervised) is None and running_progress(fcmae) is None
    StepProgress(pretrain_task(fcmae), None).update(0, 5, 2, 8, RATES, 0.0)  # the live pre-training
    assert running_progress(fcmae)["phase"] == "pretrain"
    lines = array_lines([supervised, fcmae], epochs, set())
    assert len(lines) == 1 and lines[0].startswith("fcmae seed 0 pretrain: epoch 1/5, iteration 2/8"), lines
    StepProgress(supervised, None).update(0, 2, 6, 8, RATES, 0.0)  # its own job starts: its file counts
    assert running_progress(supervised)["key"] == supervised.key


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
    # The scalars are charted against the batches trained, logged as a metric (W&B keeps a value of it
    # at or below an earlier one, as a resumed job logs; a `step=` that does not grow is dropped).
    records = wandb_records(next(runs[0].glob("run-*.wandb")))
    metrics = {(metric.name or metric.glob_name, metric.step_metric) for metric in records["metric"]}
    assert {("batches", ""), ("epoch/*", "batches"), ("iteration/*", "batches")} <= metrics, metrics
    rows = [{item.key or "/".join(item.nested_key): item.value_json for item in h.item} for h in records["history"]]
    assert [(row["batches"], row["epoch/top1"]) for row in rows if "epoch/top1" in row] == [
        (str(BATCHES), repr(read_json_lines(task.paths.metrics)[0]["top1"]))
    ]


def wandb_records(path: Path) -> dict[str, list]:
    """The records of a W&B run file by kind (`history`, `metric`, ...): W&B's wandb_internal protobuf
    records in LevelDB's log format (32 KiB blocks; each chunk a 7-byte header: CRC, length, type
    full / first / middle / last) after a 7-byte file header. W&B itself ships no reader of it."""
    proto = pytest.importorskip("wandb.proto.wandb_internal_pb2")  # W&B is an optional extra
    data, block, position = path.read_bytes(), 32768, 7
    records: dict[str, list] = {}
    pending = b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk, position = data[position + 7 : position + 7 + length], position + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4) and pending:
            record = proto.Record.FromString(pending)
            records.setdefault(record.WhichOneof("record_type"), []).append(
                getattr(record, record.WhichOneof("record_type"))
            )
    return records
