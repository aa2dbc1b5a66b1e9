"""Faults and bad input (issue 15): every one a clear line, nothing lost, nothing trained twice.

Fast tests call the CLI in-process and check: exit code 2, one stderr line, no traceback, nothing
written. Slow tests train real tiny runs (`--preset tiny --executor local`) in subprocesses.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from roadmap.cli.commands import main
from roadmap.files.atomic import NotWritable, StepClaim, check_writable_folder, claim_holder
from roadmap.files.layout import StepPaths, read_json_lines, read_json_object

ROOT = Path(__file__).resolve().parents[1]
RUN = "resnet50-tiny-synthetic"
TINY = ["--preset", "tiny", "--executor", "local"]


def one_error_line(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit code 2 and a single stderr line without a traceback; return it."""
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("run_roadmap.py: error: ")
    return lines[0]


# -- plan-time validation: one line, exit 2, nothing written ------------------------------------


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--upto", "recipe", "--batch-size", "3"], "must be even"),
        (["--accumulation", "100"], "exceeds the 8 batches"),
        (["--upto", "kernel5"], "--upto kernel --branches"),
        (["--steps", ",,"], "--steps names no step"),
        (["--upto", "recipe", "--model", "convnext_tiny"], "--upto applies to a roadmap"),
        (["--upto", "recipe", "--steps", "patchify"], "--upto and --steps"),
        (["--data", "/tmp"], "ignored by the synthetic dataset"),
        (["--eval-decode", "device"], "--eval-decode device decodes JPEG files"),
    ],
)
def test_bad_options_fail_before_training(tmp_path, capsys, extra, expected):
    results = tmp_path / "results"
    line = one_error_line(capsys, [*TINY, "--results", str(results), *extra])
    assert expected in line
    assert not results.exists()


def test_plan_with_a_non_finite_throughput(tmp_path, capsys):
    line = one_error_line(capsys, [*TINY, "--plan", "--throughput", "nan", "--results", str(tmp_path / "r")])
    assert "--throughput" in line


@pytest.mark.parametrize("below", ["", "x/y"])
def test_results_path_through_a_file(tmp_path, capsys, below):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    line = one_error_line(capsys, [*TINY, "--results", str(afile / below) if below else str(afile)])
    assert f"{afile} is a file" in line
    assert afile.read_text() == "not a folder"


def test_read_only_results_folder(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        try:
            check_writable_folder(folder)
        except NotWritable:
            pass
        else:
            pytest.skip("this user (root) can write into a read-only folder")
        line = one_error_line(capsys, [*TINY, "--results", str(folder)])
        assert "not writable" in line
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_writability_probe_leaves_nothing(tmp_path):
    check_writable_folder(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []


def make_folder_dataset(root: Path, classes: list[str], images: int = 4) -> Path:
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(images):
                Image.fromarray(np.full((8, 8, 3), index * 40, np.uint8)).save(folder / f"{index}.png")
    return root


def test_folder_dataset_with_one_class(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "data", ["only"])
    line = one_error_line(capsys, [*TINY, "--dataset", "folder", "--data", str(data), "--results", str(tmp_path / "r")])
    assert "at least two" in line
    assert not (tmp_path / "r").exists()


def make_cifar10(root: Path) -> Path:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 255, (4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{index}" for index in range(10)]}))
    return base


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not-a-dict"])
def test_corrupt_cifar_pickle(tmp_path, capsys, damage):
    base = make_cifar10(tmp_path / "data")
    target = base / "data_batch_3"
    content = target.read_bytes()
    target.write_bytes(
        {
            "truncated": content[: len(content) // 2],
            "garbage": b"\xff\xfe{not a pickle" * 50,
            "not-a-dict": pickle.dumps([1, 2, 3]),
        }[damage]
    )
    line = one_error_line(
        capsys, [*TINY, "--dataset", "cifar10", "--data", str(tmp_path / "data"), "--results", str(tmp_path / "r")]
    )
    assert str(target) in line and "not a readable CIFAR pickle" in line
    assert not (tmp_path / "r").exists()


# -- report on damaged files --------------------------------------------------------------------


def fake_run(results: Path) -> Path:
    """A finished one-row run, by hand (report reads only the on-disk format)."""
    run_dir = results / RUN
    folder = run_dir / "resnet50" / "0"
    folder.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "run": RUN,
                "roadmap": "resnet50",
                "mode": "cumulative",
                "seeds": [0],
                "rows": [{"step": "resnet50", "label": "ResNet-50", "key": "k", "gflops": 4.1, "params": 25}],
            }
        )
    )
    (folder / "result.json").write_text(json.dumps({"status": "done", "key": "k", "top1": 50.0, "epochs": 1}))
    return run_dir


@pytest.mark.parametrize("name", ["run.json", "resnet50/0/result.json"])
@pytest.mark.parametrize("damage", [b"{", b"\xff\xfe\x00garbage", b'{"status": "do'])
def test_report_on_damaged_json(tmp_path, capsys, name, damage):
    run_dir = fake_run(tmp_path)
    (run_dir / name).write_bytes(damage)
    line = one_error_line(capsys, ["report", "--run", RUN, "--results", str(tmp_path)])
    assert str(run_dir / name) in line and "delete it" in line
    assert not (run_dir / "report").exists()


def test_step_claim_is_exclusive_and_names_its_holder(tmp_path):
    paths = StepPaths(tmp_path, "resnet50", 0)
    assert claim_holder(paths) is None
    with StepClaim(paths) as first:
        assert first.acquire()
        assert str(os.getpid()) in claim_holder(paths)
        assert not StepClaim(paths).acquire()
    assert claim_holder(paths) is None
    assert StepClaim(paths).acquire()


def test_failed_result_counts_as_unfinished(tmp_path):
    paths = StepPaths(tmp_path, "resnet50", 0)
    paths.folder.mkdir(parents=True)
    paths.result.write_text(json.dumps({"status": "failed", "key": "k", "reason": "ValueError: x"}))
    assert paths.completed_key() is None
    paths.result.write_text("{")
    assert paths.completed_key() is None and paths.result_unreadable()
    paths.result.write_text(json.dumps({"status": "done", "key": "k", "top1": 50.0}))  # a done result has its top-1
    assert paths.completed_key() == "k"
    assert (
        paths.finished_result("k") == {"status": "done", "key": "k", "top1": 50.0}
        and paths.finished_result("other") is None
    )


@pytest.mark.parametrize("content", [None, b"{", b"\xff\xfe\x00garbage", b'{"status": "do', b"[1, 2]", b'"done"'])
def test_json_object_reader_answers_none_for_what_it_cannot_trust(tmp_path, content):
    path = tmp_path / "result.json"
    if content is not None:
        path.write_bytes(content)
    assert read_json_object(path) is None
    assert StepPaths(tmp_path, "s", 0).read_progress() is None


def test_json_lines_reader_stops_at_the_first_untrusted_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    assert read_json_lines(path) == []  # absent
    path.write_text('{"epoch": 1}\n\n{"epoch": 2}\n{"epoch": 3, "top1"')  # the trainer is mid-write
    assert read_json_lines(path) == [{"epoch": 1}, {"epoch": 2}]
    path.write_bytes(b'{"epoch": 1}\n[2]\n{"epoch": 3}\n')  # damage: nothing after it is trusted
    assert read_json_lines(path) == [{"epoch": 1}]
    path.write_bytes(b'{"epoch": 1}\n\xff\xfe\n')
    assert read_json_lines(path) == [{"epoch": 1}]
    path.unlink()
    path.mkdir()
    assert read_json_lines(path) == []


def test_progress_of_a_damaged_progress_file(tmp_path):
    from roadmap.launch.run import epoch_progress

    task = tiny_task(tmp_path)
    task.paths.folder.mkdir(parents=True)
    task.paths.metrics.write_text('{"epoch": 1}\n')
    task.paths.progress.write_text(json.dumps({"epoch": 1, "batch": 3, "batches": 4}))
    assert epoch_progress(task) == pytest.approx(1.75)
    for damage in ('{"epoch": 1, "bat', '{"epoch": 1, "batch": "3", "batches": 4}', "[]"):
        task.paths.progress.write_text(damage)
        assert epoch_progress(task) == 1.0


def tiny_task(run_dir: Path):
    from roadmap.data.source import DataSource
    from roadmap.spec import Spec
    from roadmap.train.task import StepTask

    return StepTask(
        run_dir=str(run_dir),
        step="resnet50",
        seed=0,
        key="k",
        spec=Spec(),
        preset="tiny",
        data=DataSource(),
        resolution=32,
        per_device_batch=2,
        accumulation=1,
        lr=0.1,
        workers=0,
        gflops=4.1,
        params=25,
        synthetic={},
    )


def test_task_file_of_a_run_written_before_is_read_then_replaced(tmp_path):
    """Runs written before hold the task as spec.json: read it; a resumed job writes task.json instead."""
    from roadmap.launch.job import record_task

    task = tiny_task(tmp_path)
    paths = task.paths
    paths.folder.mkdir(parents=True)
    paths.legacy_task.write_text(json.dumps({"key": "old"}))
    assert paths.read_task() == {"key": "old"}
    paths.task.write_text("{")  # task.json caught mid-write: the older file still answers
    assert paths.read_task() == {"key": "old"}
    record_task(task)
    assert paths.read_task()["key"] == "k" and not paths.legacy_task.exists()


# -- real runs ----------------------------------------------------------------------------------


def launch(results: Path, *extra: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "run_roadmap.py"), *TINY, "--results", str(results), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def metrics_of(run_dir: Path) -> dict[str, list[float]]:
    """Per step: the top-1 and loss of every epoch (timings differ between runs)."""
    found = {}
    for path in sorted(run_dir.glob("*/0/metrics.jsonl")):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        found[path.parent.parent.name] = [(r["epoch"], r["top1"], r["train_loss"], r["val_loss"]) for r in records]
    return found


def epochs_trained(run_dir: Path) -> dict[str, int]:
    """Epoch log lines per step over every job log of the run: each epoch trained once -> its count."""
    counts: dict[str, int] = {}
    for log in (run_dir / "submitit").glob("*.out"):
        for step in re.findall(r"roadmap\.train: (\w+) seed 0 epoch \d+/\d+", log.read_text()):
            counts[step] = counts.get(step, 0) + 1
    return counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted launch of the two-row run (resnet50: 1 epoch, recipe: 2 epochs)."""
    results = tmp_path_factory.mktemp("reference")
    code, out, err = finish(launch(results, "--upto", "recipe"))
    assert code == 0, out + err
    return results / RUN


@pytest.mark.slow
def test_two_launchers_train_each_step_once(tmp_path, reference):
    first = launch(tmp_path, "--upto", "recipe")
    # The second launch starts once the first one's job holds its first step (not after a fixed
    # delay: on a cold machine a job takes seconds to start).
    claim = StepPaths(tmp_path / RUN, "resnet50", 0)
    deadline = time.time() + 120
    while claim_holder(claim) is None and claim.completed_key() is None and time.time() < deadline:
        time.sleep(0.05)
    second = launch(tmp_path, "--upto", "recipe")
    (code_a, out_a, err_a), (code_b, out_b, err_b) = finish(first), finish(second)
    assert code_a == 0 and code_b == 0, out_a + err_a + out_b + err_b
    run_dir = tmp_path / RUN
    assert epochs_trained(run_dir) == {"resnet50": 1, "recipe": 2}
    # The second launcher met a claim, or found the first step already finished when it planned (a
    # tiny step can end before the second launcher's plan); either way no step trained twice (above).
    met_a_claim = "claimed by another launcher" in out_a + out_b
    found_done = re.search(r"[1-9]\d* already done", out_b) is not None
    assert met_a_claim or found_done, out_a + out_b
    assert metrics_of(run_dir) == metrics_of(reference)
    for step in ("resnet50", "recipe"):
        mine, theirs = (json.loads((d / step / "0" / "result.json").read_text()) for d in (run_dir, reference))
        assert (mine["key"], mine["top1"], mine["status"]) == (theirs["key"], theirs["top1"], theirs["status"])


@pytest.mark.slow
def test_truncated_checkpoint_resumes_from_the_previous_one(tmp_path, reference):
    run_dir = tmp_path / RUN
    shutil.copytree(reference, run_dir)
    folder = run_dir / "recipe" / "0"
    assert (folder / "checkpoint.previous.pt").is_file()  # epoch 1, kept when epoch 2 was written
    (folder / "result.json").unlink()  # as if killed after the last checkpoint
    checkpoint = folder / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 3])
    code, out, err = finish(launch(tmp_path, "--upto", "recipe"))
    assert code == 0, out + err
    assert "1 to train" in out
    log = "\n".join(path.read_text() for path in (run_dir / "submitit").glob("*.out"))
    assert f"{checkpoint} is unreadable" in log and "resuming after epoch 1" in log
    assert metrics_of(run_dir) == metrics_of(reference)


@pytest.mark.slow
def test_brace_in_a_finished_result_retrains_it(tmp_path, reference, capsys):
    run_dir = tmp_path / RUN
    shutil.copytree(reference, run_dir)
    result = run_dir / "resnet50" / "0" / "result.json"
    result.write_text("{")
    line = one_error_line(capsys, ["report", "--run", RUN, "--results", str(tmp_path)])
    assert str(result) in line
    code, out, err = finish(launch(tmp_path, "--upto", "recipe"))
    assert code == 0 and "Traceback" not in err, out + err
    warnings = [line for line in out.splitlines() if str(result) in line]
    assert len(warnings) == 1 and "trained again" in warnings[0]
    assert json.loads(result.read_text())["status"] == "done"
    assert metrics_of(run_dir) == metrics_of(reference)


@pytest.mark.slow
def test_failed_step_says_why_and_shows_failed(tmp_path):
    run_dir = tmp_path / RUN
    blocker = run_dir / "resnet50" / "0" / "metrics.jsonl"
    blocker.mkdir(parents=True)  # the first epoch's metrics cannot be written: the job fails
    code, out, err = finish(launch(tmp_path, "--upto", "resnet50"))
    assert code == 1, out + err
    lines = [line for line in out.splitlines() if "resnet50 seed 0: failed" in line]
    assert len(lines) == 1 and "IsADirectoryError" in lines[0] and "log:" in lines[0], out
    result = json.loads((run_dir / "resnet50" / "0" / "result.json").read_text())
    assert result["status"] == "failed" and "IsADirectoryError" in result["reason"]
    table = (run_dir / "report" / "table.csv").read_text()
    assert "failed (IsADirectoryError" in table and "running" not in table  # the reason, in the status column
    blocker.rmdir()  # the cause is gone: a rerun retries the failed step
    code, out, err = finish(launch(tmp_path, "--upto", "resnet50"))
    assert code == 0 and "1 to train" in out, out + err
    assert json.loads((run_dir / "resnet50" / "0" / "result.json").read_text())["status"] == "done"


@pytest.mark.slow
def test_ctrl_c_prints_one_line(tmp_path):
    # Ctrl-C's default meaning in the launcher, whatever this test runner inherited: a shell starts
    # background jobs with SIGINT ignored, and an ignored signal stays ignored across exec.
    process = launch(tmp_path, "--upto", "recipe", start_new_session=True, preexec_fn=_default_sigint)
    task_file = StepPaths(tmp_path / RUN, "resnet50", 0).task
    deadline = time.time() + 120
    while not task_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    code, out, err = finish(process, timeout=60)
    assert code == 130
    assert err.strip().splitlines() == ["run_roadmap.py: interrupted; rerun the same command to resume"], err
    time.sleep(2.0)
    assert claim_holder(StepPaths(tmp_path / RUN, "resnet50", 0)) is None  # the job is gone too
