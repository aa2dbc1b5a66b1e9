"""Training end to end on the tiny preset: CLI run and rerun, kill and resume, requeue, divergence,
bad input. Every run here is real: timm recipe pieces, submitit executors, files on disk."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit
import torch
from conftest import TINY_RUN, TINY_RUN_ARGS, run_cli
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap.fcmae.trainer import FineTuner, pretrain_task
from roadmap.files.atomic import read_json
from roadmap.files.layout import read_json_lines
from roadmap.launch.executors import StepJob
from roadmap.launch.job import record_task, run_step
from roadmap.network.build import build
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run
from roadmap.spec import Spec
from roadmap.train.init_weights import InitError
from roadmap.train.task import StepTask
from roadmap.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TIMED_FIELDS = {
    "epoch_time_s",
    "data_wait_s",
    "images_per_s",
    "infer_images_per_s",
    "startup_time_s",
    "eval_startup_time_s",
}


def untimed(records: list[dict]) -> list[dict]:
    return [{key: value for key, value in record.items() if key not in TIMED_FIELDS} for record in records]


@pytest.mark.slow
def test_tiny_run_trains_reports_and_reruns_instantly(tiny_run, tmp_path):
    first = tiny_run.finished  # the shared run of conftest: the CLI, 3 rows x 2 seeds (exit code 0 checked there)
    run_dir = tiny_run.results / TINY_RUN
    plan = read_json(run_dir / "run.json")
    assert [row["step"] for row in plan["rows"]] == ["resnet50", "recipe", "stage_ratio"]
    for step in ("resnet50", "recipe", "stage_ratio"):
        for seed in ("0", "1"):
            result = read_json(run_dir / step / seed / "result.json")
            assert result["status"] == "done" and 0 <= result["top1"] <= 100 and result["top5"] >= result["top1"]
            assert result["epochs"] == len(read_json_lines(run_dir / step / seed / "metrics.jsonl"))
            assert result["proxy_params"] < result["params"]
    assert read_json(run_dir / "recipe" / "0" / "result.json")["gflops"] == pytest.approx(4.089, abs=1e-3)
    history = read_json_lines(run_dir / "resnet50" / "0" / "metrics.jsonl")
    # The process's first train step and first eval batch are start-up: timed apart, once.
    assert history[0]["startup_time_s"] > 0 and history[0]["eval_startup_time_s"] > 0
    assert all(record["startup_time_s"] == 0 == record["eval_startup_time_s"] for record in history[1:])
    assert all(0 <= record["data_wait_s"] <= record["epoch_time_s"] for record in history)
    assert "[6/6] stage_ratio seed 1: top-1" in first.stdout
    for name in ("table.csv", "table.md", "table.tex", "roadmap.png", "trajectory.pdf", "curves.png", "throughput.png"):
        assert (run_dir / "report" / name).stat().st_size > 0
    tiny_run.copy_to(tmp_path)  # the rerun writes its report: into a copy
    started = time.perf_counter()
    again = run_cli(*TINY_RUN_ARGS, "--results", str(tmp_path))
    assert again.returncode == 0 and "0 to train, 6 already done" in again.stdout
    assert time.perf_counter() - started < 30


def tiny_task(tmp_path: Path, step: str = "resnet50", epochs: int = 3, workers: int = 0, launcher_pid=None):
    plan = plan_run(
        RunOptions(upto=step, preset="tiny", results=str(tmp_path), epochs=epochs, workers=workers),
        launcher_pid=launcher_pid,
    )
    return next(task for task in plan.tasks if task.step == step)


def test_the_task_file_gives_the_task_back(tmp_path):
    """task.json holds the specs as their dicts (what the keys hash) and gives back an equal task,
    pointed at where the run folder is now and watching no launcher."""
    task = tiny_task(tmp_path, epochs=1)
    task = dataclasses.replace(task, resolution_schedule=((0, 24), (1, 32)), cost_spec=Spec(), cost_settings=("bf16",))
    record_task(task)
    written = json.loads(task.paths.task.read_text())
    as_json = json.loads(json.dumps({"spec": task.spec.to_dict(), "cost_spec": task.cost_spec.to_dict()}))
    assert {name: written[name] for name in as_json} == as_json
    moved = tmp_path / "moved"
    read = StepTask.from_json(written, moved)
    assert read == dataclasses.replace(task, run_dir=str(moved), launcher_pid=None)
    assert read.train_resolutions == (24, 32) and isinstance(read.spec, Spec)


EPOCHS = 20


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    """SIGKILL the launcher mid-epoch; its job stops too; the rerun resumes and matches a clean run."""
    # --deterministic: on a GPU, bit-identical resumption needs deterministic kernels (a no-op on the CPU).
    # Enough epochs that the kill lands mid-run: with persistent workers a tiny epoch takes a fraction
    # of a second, and the orphaned job takes up to a second to notice its launcher is gone.
    args = [
        "--upto",
        "resnet50",
        "--preset",
        "tiny",
        "--executor",
        "local",
        "--epochs",
        str(EPOCHS),
        "--workers",
        "1",
        "--deterministic",
    ]
    reference = run_cli(*args, "--results", str(tmp_path / "clean"))
    assert reference.returncode == 0, reference.stderr[-2000:]
    killed_dir = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "run_roadmap.py", *args, "--results", str(killed_dir)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    step_dir = killed_dir / "resnet50-tiny-synthetic" / "resnet50" / "0"
    deadline = time.time() + 300
    # Wait until one epoch is checkpointed and the next one is under way, then kill -9.
    while time.time() < deadline:
        progress = step_dir / "progress.json"
        if (step_dir / "checkpoint.pt").exists() and progress.exists():
            try:
                if read_json(progress)["epoch"] >= 1:
                    break
            except (ValueError, KeyError):
                pass
        time.sleep(0.05)
    else:
        pytest.fail("the run never reached its second epoch")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (step_dir / "result.json").exists()
    # The orphaned job notices its launcher is gone and exits within a few seconds.
    time.sleep(4)
    epochs_at_kill = len(read_json_lines(step_dir / "metrics.jsonl"))
    assert 1 <= epochs_at_kill < EPOCHS
    time.sleep(2)
    assert len(read_json_lines(step_dir / "metrics.jsonl")) == epochs_at_kill
    resumed = run_cli(*args, "--results", str(killed_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    clean_dir = tmp_path / "clean" / "resnet50-tiny-synthetic" / "resnet50" / "0"
    clean, again = read_json(clean_dir / "result.json"), read_json(step_dir / "result.json")
    for field in ("status", "top1", "top5", "best_top1", "epochs", "key"):
        assert again[field] == clean[field], field
    assert untimed(read_json_lines(step_dir / "metrics.jsonl")) == untimed(read_json_lines(clean_dir / "metrics.jsonl"))


# The signal goes out as soon as the first epoch is logged; a handful of epochs remain to resume.
REQUEUE_EPOCHS = 12


@pytest.mark.slow
def test_requeued_step_resumes_from_its_checkpoint(tmp_path):
    """Preempt a Checkpointable step under submitit's local executor; it requeues and completes."""
    # Deterministic kernels: on a GPU, resumption is bit-identical only with them (a no-op on the CPU).
    task = dataclasses.replace(tiny_task(tmp_path, epochs=REQUEUE_EPOCHS), numerics={"deterministic": True})
    executor = submitit.LocalExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=60, stderr_to_stdout=True)
    job = executor.submit(StepJob(), task)
    metrics = task.paths.metrics
    deadline = time.time() + 300
    while len(read_json_lines(metrics)) < 1 and time.time() < deadline:
        time.sleep(0.02)
    # SIGUSR2 to the task process, as SLURM sends on preemption (`scancel --signal=USR2`); submitit's
    # local controller relaunches a task that asks to be requeued.
    task_pids = subprocess.run(["pgrep", "-P", str(job._process.pid)], capture_output=True, text=True).stdout.split()
    assert len(task_pids) == 1
    os.kill(int(task_pids[0]), signal.SIGUSR2)
    result = job.result()
    assert result["status"] == "done" and result["epochs"] == REQUEUE_EPOCHS
    log = Path(job.paths.stdout).read_text()
    assert "this job is preempted" in log and "Requeued job" in log
    resumed_after = int(log.split("resuming after epoch ")[1].split()[0])
    assert 1 <= resumed_after < REQUEUE_EPOCHS
    # Resuming from an epoch checkpoint is exact: the same metrics as an uninterrupted run.
    reference = dataclasses.replace(task, run_dir=str(tmp_path / "reference"))
    assert run_step(reference)["top1"] == result["top1"]
    assert untimed(read_json_lines(metrics)) == untimed(read_json_lines(reference.paths.metrics))


def test_evaluation_pass_starts_once_training_has_handed_out_its_last_batch(tmp_path):
    trainer = Trainer(tiny_task(tmp_path, epochs=1, workers=1))
    ahead = trainer.train_pass.batches_ahead()  # one worker, two batches asked ahead (DataLoader's default)
    assert ahead == 2 and trainer.batches > ahead and trainer.val_starts_after == trainer.batches - ahead
    assert trainer.val_pass.started is None
    trainer.train_epoch()
    assert trainer.val_pass.started is not None  # started during training, consumed by evaluation
    early = trainer.evaluate()
    assert trainer.val_pass.started is None
    on_time = trainer.evaluate()  # nothing started this pass ahead: the same figures
    figures = ("val_loss", "top1", "top5")
    assert [early[key] for key in figures] == [on_time[key] for key in figures]


def test_padding_the_short_evaluation_batch_changes_no_figure(tmp_path):
    """A compiled run pads evaluation's last, short batch to the full batch (no second shape to
    compile); the figures are those of the short batch."""
    trainer = Trainer(dataclasses.replace(tiny_task(tmp_path, epochs=1), per_device_batch=24))
    full = trainer.val_pass.batch_size
    assert trainer.pad_eval_to is None and len(trainer.val_pass.dataset) % full  # eager: no padding
    short = trainer.evaluate()
    trainer.pad_eval_to = full
    padded = trainer.evaluate()
    assert padded["val_loss"] == pytest.approx(short["val_loss"], rel=1e-6)
    assert (padded["top1"], padded["top5"]) == (short["top1"], short["top5"])


def test_non_finite_loss_marks_the_step_diverged(tmp_path):
    task = dataclasses.replace(tiny_task(tmp_path, epochs=2), lr=1e12)
    result = run_step(task)
    assert result["status"] == "diverged" and result["top1"] is None
    assert read_json(task.paths.result)["status"] == "diverged"
    assert run_step(task)["status"] == "diverged"  # finished: never trained again


def killed_after_its_first_epoch(task, run_dir: Path):
    """A copy of `task`'s finished 2-epoch folder under `run_dir`, as a job killed after its first
    epoch's checkpoint leaves it (the checkpoint kept before the last one becomes the newest)."""
    copy = dataclasses.replace(task, run_dir=str(run_dir))
    shutil.copytree(task.paths.folder, copy.paths.folder)
    copy.paths.result.unlink()
    os.replace(copy.paths.previous_checkpoint, copy.paths.checkpoint)
    return copy


@pytest.mark.slow  # three tiny jobs in this process: about 25 s
def test_step_started_with_init_resumes_without_its_init_file(tmp_path):
    """--init's file starts a step; a resumed job takes its weights from its checkpoint, so the file
    may be gone by then (it used to be read and hashed again: InitError). A fresh start still needs it."""
    source = tmp_path / "init.pt"
    spec = tiny_task(tmp_path / "plain").spec
    torch.save(build(spec).state_dict(), source)  # weights in our names, drawn from the test's stream
    options = RunOptions(upto="resnet50", preset="tiny", results=str(tmp_path / "uninterrupted"), epochs=2, workers=0)
    task = plan_run(dataclasses.replace(options, init=str(source))).tasks[0]
    assert task.init is not None and run_step(task)["status"] == "done"
    resumed = killed_after_its_first_epoch(task, tmp_path / "resumed")
    source.unlink()
    result = run_step(resumed)
    assert result["status"] == "done" and result["top1"] == read_json(task.paths.result)["top1"]
    assert untimed(read_json_lines(resumed.paths.metrics)) == untimed(read_json_lines(task.paths.metrics))
    with pytest.raises(InitError, match="cannot read it"):  # a job with no checkpoint starts from the file
        run_step(dataclasses.replace(task, run_dir=str(tmp_path / "fresh")))


def test_resumed_fine_tuning_needs_no_pretrained_encoder(tmp_path):
    """An FCMAE row's fine-tuning loads pretrain/encoder.pt when it starts, not when it resumes."""
    options = RunOptions(model="convnext_tiny", steps=("fcmae",), preset="tiny", results=str(tmp_path), epochs=1)
    task = next(task for task in plan_run(options).tasks if task.step == "fcmae")
    encoder = pretrain_task(task).paths.encoder
    encoder.parent.mkdir(parents=True)
    network = build(task.spec)
    torch.save({name: value for name, value in network.state_dict().items() if not name.startswith("head.")}, encoder)
    parent = {"status": "done"}
    with pytest.raises(TypeError, match="FineTuner"):  # the plain loop would train it from scratch
        Trainer(task, parent)
    started = FineTuner(task, parent)
    started.save_checkpoint()  # as after an epoch
    weights = started.model.state_dict()
    encoder.unlink()
    resumed = FineTuner(task, parent)  # used to raise FileNotFoundError for encoder.pt
    assert resumed.load_checkpoint() and resumed.epoch == 0
    assert all(torch.equal(value, weights[name]) for name, value in resumed.model.state_dict().items())
    task.paths.checkpoint.unlink()
    with pytest.raises(FileNotFoundError):  # a fresh start still begins from the encoder
        FineTuner(task, parent)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--dataset", "folder", "--data", "/nonexistent/imagenet"], "does not exist"),
        (["--dataset", "cifar10"], "needs --data PATH"),
        (["--preset", "huge"], "unknown preset 'huge'; choose one of: cpu, tiny, paper"),
        (["--dataset", "imagenet21k"], "unknown dataset 'imagenet21k'; choose one of: synthetic"),
        (["--epochs", "0"], "positive integer"),
        (["--batch-size", "-4"], "positive integer"),
        (["--seeds", "0"], "positive integer"),
        (["--mode", "sideways"], "unknown mode"),
    ],
)
def test_bad_training_input_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys, args, expected):
    # In-process (the CLI's own main); test_folder_without_classes_is_refused runs the script itself.
    argv = ["--upto", "recipe", "--preset", "tiny", "--results", str(tmp_path), *args]
    assert expected in one_error_line(capsys, argv)
    assert list(tmp_path.iterdir()) == []


def test_folder_without_classes_is_refused(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    (tmp_path / "data" / "val").mkdir()
    result = run_cli(
        "--preset",
        "tiny",
        "--dataset",
        "folder",
        "--data",
        str(tmp_path / "data"),
        "--results",
        str(tmp_path / "results"),
        timeout=120,
    )
    assert result.returncode == 2 and "no class subfolders" in result.stderr
    assert not (tmp_path / "results").exists()
