"""Faults and bad input, round 2 (issue 27): damaged folders, runaway resources, shared folders,
stale results. Bad input is one stderr line with exit code 2 and nothing written; real files only."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_faults import finish, launch  # the script in a subprocess, as a user runs it
from torch.utils.data import TensorDataset

from roadmap.cli.commands import main
from roadmap.cost.processes import available_cpus, usable_workers
from roadmap.data.datasets import load_datasets
from roadmap.data.folder_scan import scan
from roadmap.data.loaders import _data_loader
from roadmap.data.source import DataSource
from roadmap.files.atomic import claim_holder, write_atomic, write_json
from roadmap.files.layout import FORMAT_KEY, FORMAT_VERSION, StepPaths
from roadmap.report.write import report
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run
from roadmap.runs.seeds import collect

TINY = ["--preset", "tiny", "--executor", "local"]
RUN = "resnet50-tiny-synthetic"
ROOT = Path(__file__).resolve().parents[1]


def one_error_line(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit code 2 and a single stderr line without a traceback; return it."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("run_roadmap.py: error: ")
    return lines[0]


def files_under(root: Path) -> list[Path]:
    return sorted(root.rglob("*")) if root.exists() else []


# -- 1. paths stay inside --results ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".", "/tmp/abs"])
def test_run_name_that_is_a_path_is_refused(tmp_path, capsys, name):
    results = tmp_path / "deep" / "er" / "results"
    line = one_error_line(capsys, [*TINY, "--plan", "--throughput", "100", "--run", name, "--results", str(results)])
    assert f"--run {name!r} is not a run name" in line
    assert files_under(tmp_path) == []


def test_report_of_a_run_name_that_is_a_path_is_refused(tmp_path, capsys):
    line = one_error_line(capsys, ["report", "--run", "../x", "--results", str(tmp_path / "results")])
    assert "is not a run name" in line
    assert files_under(tmp_path) == []


# -- 2. workers bounded by the machine ------------------------------------------------------------


def test_workers_above_the_cpus_are_capped_before_any_fork(caplog):
    # The loader is built, not iterated: nothing forks here, before or after the fix.
    available = available_cpus()
    dataset = TensorDataset(torch.zeros(4, 1))
    with caplog.at_level(logging.WARNING):
        loader = _data_loader(dataset, 1, 100000, torch.device("cpu"))
        again = _data_loader(dataset, 1, 100000, torch.device("cpu"))
    assert loader.num_workers == again.num_workers == available
    assert caplog.text.count(f"--workers 100000 capped at the {available} CPUs") == 1  # said once
    assert _data_loader(dataset, 1, 0, torch.device("cpu")).num_workers == 0


def test_available_cpus_follow_slurm_then_the_affinity_mask(monkeypatch):
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    assert available_cpus() == 3 and usable_workers(100000) == 3 and usable_workers(2) == 2


# -- 3. impossible sizes refused when the run is planned -----------------------------------------


def test_batch_larger_than_the_data_is_refused_at_planning(tmp_path, capsys):
    results = tmp_path / "results"
    argv = [*TINY, "--upto", "resnet50", "--plan", "--throughput", "100", "--batch-size", "100000"]
    line = one_error_line(capsys, [*argv, "--results", str(results)])
    assert "a batch of 100000" in line and "256 training images" in line and "--batch-size 256 or less" in line
    assert files_under(tmp_path) == []


def test_folder_with_fewer_images_than_one_batch_is_refused_before_launch(tmp_path, capsys):
    data = tmp_path / "data"
    for split in ("train", "val"):
        for name in ("a", "b"):
            (data / split / name).mkdir(parents=True)
            for index in range(2):
                Image.fromarray(np.full((8, 8, 3), index * 90, np.uint8)).save(data / split / name / f"{index}.png")
    argv = [*TINY, "--upto", "resnet50", "--dataset", "folder", "--data", str(data), "--batch-size", "8"]
    line = one_error_line(capsys, [*argv, "--results", str(tmp_path / "results")])
    assert "a batch of 8" in line and "4 training images" in line
    assert not (tmp_path / "results").exists()


# -- 4. a folder dataset scanned the way it will be read ------------------------------------------


def image_set(root: Path, classes=("a", "b"), per_class: int = 4) -> Path:
    """train/ and val/ with real JPEG files of random pixels (JPEG: verify() only reads the header)."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index}.jpg", quality=90)
    return root


def test_truncated_jpeg_is_skipped_and_counted_at_the_scan(tmp_path, caplog):
    data = image_set(tmp_path / "data")
    whole = (data / "val" / "a" / "0.jpg").read_bytes()
    truncated = data / "val" / "a" / "cut.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING):
        pair = load_datasets(DataSource("folder", str(data)))
    assert pair.val.skipped == [str(truncated)] and len(pair.val) == 8
    assert "skipped 1 corrupt image file(s) (1 corrupt)" in caplog.text
    for index in range(len(pair.val)):  # what remains decodes, as the loader will
        pair.val[index]


def test_fifo_bomb_and_dot_folders_are_not_data(tmp_path, caplog):
    data = image_set(tmp_path / "data")
    os.mkfifo(data / "train" / "a" / "pipe.jpg")  # open() would block for ever
    # A PNG above PIL's pixel limit, a few KB on disk (one colour compresses well).
    Image.new("L", (10000, 10000)).save(data / "train" / "b" / "bomb.png")
    for split in ("train", "val"):
        (data / split / ".ipynb_checkpoints").mkdir()
        Image.new("RGB", (8, 8)).save(data / split / ".ipynb_checkpoints" / "x.jpg")
    (data / "train" / "a" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (8, 8)).save(data / "train" / "a" / ".ipynb_checkpoints" / "y.jpg")
    with caplog.at_level(logging.WARNING):
        pair = load_datasets(DataSource("folder", str(data)))
    assert pair.num_classes == 2 and pair.train.classes == ["a", "b"] and len(pair.train) == 8
    assert sorted(pair.train.skipped) == sorted(
        [str(data / "train" / "a" / "pipe.jpg"), str(data / "train" / "b" / "bomb.png")]
    )
    assert "1 not a regular file" in caplog.text and "pixel limit" in caplog.text


def test_symlinked_folders_are_followed_once(tmp_path):
    data = image_set(tmp_path / "data")
    (data / "train" / "a" / "loop").symlink_to(data / "train" / "a")  # os.walk(followlinks) never ends
    extra = tmp_path / "more-b"
    extra.mkdir()
    Image.new("RGB", (8, 8)).save(extra / "9.jpg")
    (data / "train" / "b" / "more").symlink_to(extra)
    (data / "train" / "b" / "again").symlink_to(extra)  # the same folder twice counts once
    pair = load_datasets(DataSource("folder", str(data)))
    assert len(pair.train) == 4 + 5 and pair.train.skipped == []
    assert sum(path.endswith("9.jpg") for path, _ in pair.train.samples) == 1


@pytest.mark.slow
def test_a_damaged_folder_trains_skipping_and_counting(tmp_path):
    """The issue's folder: a truncated JPEG in val/, a bomb, a FIFO and a dot-folder, trained for real."""
    data = image_set(tmp_path / "data", per_class=8)
    whole = (data / "val" / "a" / "0.jpg").read_bytes()
    (data / "val" / "a" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    Image.new("L", (10000, 10000)).save(data / "train" / "b" / "bomb.png")
    os.mkfifo(data / "train" / "a" / "pipe.jpg")
    for split in ("train", "val"):
        (data / split / ".ipynb_checkpoints").mkdir()
    extra = ("--upto", "resnet50", "--dataset", "folder", "--data", str(data), "--batch-size", "8", "--epochs", "1")
    code, out, err = finish(launch(tmp_path / "results", *extra), timeout=300)
    assert code == 0 and "Traceback" not in err, out + err
    assert "skipped 2 corrupt image file(s) (1 not a regular file, 1 above PIL's pixel limit" in err
    assert "skipped 1 corrupt image file(s) (1 corrupt)" in err
    plan = json.loads((tmp_path / "results" / "resnet50-tiny-folder" / "run.json").read_text())
    assert (plan["num_classes"], plan["train_images"], plan["val_images"]) == (2, 16, 16)
    result = json.loads((tmp_path / "results" / "resnet50-tiny-folder" / "resnet50" / "0" / "result.json").read_text())
    assert result["status"] == "done"


def test_class_mismatch_names_the_differing_folder(tmp_path, capsys):
    data = image_set(tmp_path / "data")
    (data / "train" / "extra").mkdir()
    Image.new("RGB", (8, 8)).save(data / "train" / "extra" / "0.jpg")
    argv = [*TINY, "--dataset", "folder", "--data", str(data), "--results", str(tmp_path / "results")]
    line = one_error_line(capsys, argv)
    assert "extra/ only in train/" in line
    assert not (tmp_path / "results").exists()


def test_shrunk_copy_leaves_out_what_the_loader_cannot_read(tmp_path):
    data = image_set(tmp_path / "data")
    whole = (data / "train" / "a" / "0.jpg").read_bytes()
    (data / "train" / "a" / "cut.jpg").write_bytes(whole[: len(whole) // 2])  # small: copied byte for byte
    (data / "train" / "b" / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (8, 8)).save(data / "train" / "b" / ".ipynb_checkpoints" / "x.jpg")
    pair = load_datasets(DataSource("folder", str(data), shrink=256, cache_dir=str(tmp_path / "cache")))
    assert len(pair.train) == 8 and pair.train.skipped == []
    copied = [path.name for path in (tmp_path / "cache").rglob("*.jpg")]
    assert "cut.jpg" not in copied and "x.jpg" not in copied


# -- 5. results shared like other files -----------------------------------------------------------


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_results_are_written_with_the_umask(tmp_path, umask, expected):
    previous = os.umask(umask)
    try:
        write_json(tmp_path / "result.json", {"status": "done"})
        write_atomic(tmp_path / "checkpoint.pt", lambda handle: handle.write(b"x"), binary=True)
    finally:
        os.umask(previous)
    for name in ("result.json", "checkpoint.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def hand_made_run(results: Path) -> Path:
    """A finished one-row run written by hand (the report reads only the on-disk format)."""
    run_dir = results / RUN
    (run_dir / "resnet50" / "0").mkdir(parents=True)
    row = {"step": "resnet50", "label": "ResNet-50", "key": "k", "gflops": 4.1, "params": 25}
    plan = {"run": RUN, "roadmap": "resnet50", "mode": "cumulative", "seeds": [0], "rows": [row]}
    write_json(run_dir / "run.json", plan)
    write_json(run_dir / "resnet50" / "0" / "result.json", {"status": "done", "key": "k", "top1": 50.0, "epochs": 1})
    return run_dir


@pytest.mark.parametrize("name", ["run.json", "resnet50/0/result.json"])
def test_report_on_a_file_it_cannot_open_names_it(tmp_path, capsys, name):
    run_dir = hand_made_run(tmp_path)
    (run_dir / name).unlink()
    (run_dir / name).mkdir()  # opens with an OSError for every user, root included (unlike chmod 000)
    line = one_error_line(capsys, ["report", "--run", RUN, "--results", str(tmp_path)])
    assert f"{run_dir / name} is unreadable (Is a directory)" in line
    assert not (run_dir / "report").exists()


def test_report_on_another_users_private_result_names_it(tmp_path, capsys):
    run_dir = hand_made_run(tmp_path)
    result = run_dir / "resnet50" / "0" / "result.json"
    result.chmod(0o000)
    try:
        if os.access(result, os.R_OK):
            pytest.skip("this user (root) reads any file")
        line = one_error_line(capsys, ["report", "--run", RUN, "--results", str(tmp_path)])
        assert f"{result} is unreadable (Permission denied)" in line and "chmod a+r" in line
    finally:
        result.chmod(0o644)


# -- 6. options that would be ignored -------------------------------------------------------------


@pytest.mark.parametrize(
    "extra, expected", [([], "--no-wait needs --executor slurm"), (["--plan"], "--plan submits none")]
)
def test_no_wait_that_would_be_ignored_is_refused(tmp_path, capsys, extra, expected):
    results = tmp_path / "results"
    line = one_error_line(capsys, [*TINY, "--upto", "resnet50", "--no-wait", *extra, "--results", str(results)])
    assert expected in line
    assert files_under(tmp_path) == []


# -- 7. honest states ------------------------------------------------------------------------------

HOLD_CLAIM = """
import sys, time
from pathlib import Path
from roadmap.files.atomic import StepClaim, StepPaths
claim = StepClaim(StepPaths(Path(sys.argv[1]), "resnet50", 0))  # held while this process lives
assert claim.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_jobs_row_is_interrupted_not_running(tmp_path):
    run_dir = hand_made_run(tmp_path)
    paths = StepPaths(run_dir, "resnet50", 0)
    paths.result.unlink()  # started, one epoch written, no result yet
    write_json(paths.task, {"key": "k", "spec": {}})
    paths.metrics.write_text(json.dumps({"epoch": 1, "top1": 20.0}) + "\n")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CLAIM, str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert collect(run_dir).status[0] == "running"
    finally:
        holder.kill()  # SIGKILL: no handler runs, the kernel drops the flock
        holder.wait()
    assert collect(run_dir).status[0] == "interrupted"
    table = (report(run_dir)["table_csv"]).read_text()
    assert "interrupted" in table and "running" not in table


# -- 8. files from another version ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run.json", "resnet50/0/result.json"])
@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, "2.0", None])
def test_report_refuses_a_newer_or_unknown_format(tmp_path, capsys, name, version):
    run_dir = hand_made_run(tmp_path)
    path = run_dir / name
    write_json(path, {**json.loads(path.read_text()), FORMAT_KEY: version})
    line = one_error_line(capsys, ["report", "--run", RUN, "--results", str(tmp_path)])
    assert str(path) in line and FORMAT_KEY in line and "version that wrote it" in line
    assert not (run_dir / "report").exists()


def test_training_refuses_a_newer_result_before_writing(tmp_path, capsys):
    argv = [*TINY, "--upto", "resnet50", "--results", str(tmp_path)]
    plan = plan_run(RunOptions(upto="resnet50", preset="tiny", results=str(tmp_path)))
    result = plan.tasks[0].paths.result
    newer = {FORMAT_KEY: FORMAT_VERSION + 1, "status": "done", "key": plan.tasks[0].key, "top1": 50.0}
    write_json(result, newer)
    line = one_error_line(capsys, argv)
    assert str(result) in line and f"{FORMAT_KEY} {FORMAT_VERSION + 1}" in line
    assert json.loads(result.read_text()) == newer and files_under(tmp_path / RUN) == [
        result.parent.parent,
        result.parent,
        result,
    ]


def test_written_files_carry_the_format_version(tmp_path):
    plan = plan_run(RunOptions(upto="resnet50", preset="tiny", results=str(tmp_path)))
    assert plan.info.to_json()[FORMAT_KEY] == FORMAT_VERSION


def test_a_done_result_without_top1_is_not_finished(tmp_path):
    run_dir = hand_made_run(tmp_path)
    paths = StepPaths(run_dir, "resnet50", 0)
    assert paths.completed_key() == "k"
    write_json(paths.result, {FORMAT_KEY: FORMAT_VERSION, "status": "done", "key": "k", "epochs": 1})
    assert paths.completed_key() is None and paths.finished_result("k") is None
    assert collect(run_dir).status[0] == "failed"
    # A pre-training phase has no top-1: its validation loss is its figure.
    phase = {FORMAT_KEY: FORMAT_VERSION, "status": "done", "phase": "pretrain", "key": "p", "val_loss": 0.5}
    write_json(paths.result, phase)
    assert paths.completed_key() == "p"


# -- 9. signals and write failures: one line each ---------------------------------------------------


@pytest.mark.slow
def test_sigterm_prints_one_line_and_stops_the_job(tmp_path):
    process = launch(tmp_path, "--upto", "recipe")
    task_file = StepPaths(tmp_path / RUN, "resnet50", 0).task
    deadline = time.time() + 120
    while not task_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)  # the launcher alone, as `kill PID` does
    code, out, err = finish(process, timeout=60)
    assert code == 128 + signal.SIGTERM, out + err
    assert err.strip().splitlines() == ["run_roadmap.py: terminated (SIGTERM); rerun the same command to resume"], err
    time.sleep(2.0)
    assert claim_holder(StepPaths(tmp_path / RUN, "resnet50", 0)) is None  # the job is gone too


SAVE_WITH_A_FULL_DISK = """
import resource, signal, sys
from pathlib import Path
import torch
from roadmap.train.checkpoints import Checkpointing
from roadmap.errors import one_line
from roadmap.files.layout import StepPaths

class Saver(Checkpointing):
    def __init__(self, folder):
        self.task = type("Task", (), {"key": "k"})()
        self.paths = StepPaths(Path(folder), "resnet50", 0)
        self.distributed = type("Distributed", (), {"main": True})()
        self.model = torch.nn.Linear(256, 256)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, 1)
        self.ema = self.scaler = None
        self.epoch, self.updates, self.best_top1, self.history, self.wall_time = 1, 1, 0.0, [], 0.0

saver = Saver(sys.argv[1])
saver.save_checkpoint()  # a complete one first
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit a write fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))  # files end at 64 KB, as on a full disk
saver.epoch = 2
try:
    saver.save_checkpoint()
except Exception as error:
    print(one_line(error))
"""


def test_a_checkpoint_that_cannot_be_written_is_one_line(tmp_path):
    command = [sys.executable, "-c", SAVE_WITH_A_FULL_DISK, str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    checkpoint = StepPaths(tmp_path, "resnet50", 0).checkpoint
    assert done.stdout.strip().splitlines() == [done.stdout.strip()]
    assert done.stdout.startswith(f"CheckpointWriteError: could not write the checkpoint {checkpoint}")
    assert "inline_container" not in done.stdout and "rerun the same command" in done.stdout
    # The complete one is kept for the resume, and no half-written file is left beside it.
    assert sorted(path.name for path in checkpoint.parent.iterdir()) == ["checkpoint.previous.pt", "metrics.jsonl"]


def test_a_scan_is_kept_for_the_same_folder_contents(tmp_path):
    data = image_set(tmp_path / "data")
    good = (data / "train" / "a" / "0.jpg").read_bytes()
    cut = data / "train" / "a" / "cut.jpg"
    cut.write_bytes(good[: len(good) // 2])
    paths = sorted(str(path) for path in (data / "train").rglob("*.jpg"))
    cache = tmp_path / "scans"
    assert list(scan(data / "train", paths, cache, min_cached=1)) == [str(cut)]
    (kept,) = cache.iterdir()
    record = json.loads(kept.read_text())
    record["unreadable"] = {}  # what the cache says is what a second scan of the same files answers
    kept.write_text(json.dumps(record))
    assert scan(data / "train", paths, cache, min_cached=1) == {}
    cut.write_bytes(good)  # the file changed: scanned again, under another key
    assert scan(data / "train", paths, cache, min_cached=1) == {} and len(list(cache.iterdir())) == 2
    cut.write_bytes(good[:100])
    assert list(scan(data / "train", paths, cache, min_cached=1)) == [str(cut)]
