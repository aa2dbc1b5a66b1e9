"""The roadmap on a real SLURM cluster through submitit (scripts/slurm_local.sh starts one on localhost).

These tests skip where no controller answers `scontrol ping`, so a laptop without SLURM still passes;
CI sets ROADMAP_REQUIRE_SLURM=1, which turns a missing controller into a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli  # the script in a subprocess

from roadmap.files.layout import read_json_lines
from roadmap.launch.executors import ClusterOptions, controller_answers
from roadmap.launch.run import launch
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run, write_plan

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--executor", "slurm", "--cpus-per-task", "1", "--time-min", "10"]


@pytest.fixture(scope="module")
def slurm() -> None:
    if controller_answers():
        return
    message = "no SLURM controller answers `scontrol ping` (start one: bash scripts/slurm_local.sh start)"
    if os.environ.get("ROADMAP_REQUIRE_SLURM") == "1":
        pytest.fail(message + "; ROADMAP_REQUIRE_SLURM=1 requires it")
    pytest.skip(message)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def files_of(run_dir: Path) -> set[str]:
    """The run's files relative to its folder, without submitit's logs (executor-specific); a
    TensorBoard event file by its folder, as its name holds the time, host and pid that wrote it."""
    return {
        str(path.relative_to(run_dir).parent / "<events>" if "tensorboard" in path.parts else path.relative_to(run_dir))
        for path in run_dir.rglob("*")
        if path.is_file() and "submitit" not in path.parts
    }


@pytest.mark.slurm
def test_roadmap_runs_as_one_job_array(slurm, tmp_path: Path) -> None:
    arguments = ["--upto", "stage_ratio", "--epochs", "1", "--results", str(tmp_path)]
    on_slurm = run_cli(*arguments, *TINY, "--run", "slurm", timeout=300)
    assert on_slurm.returncode == 0, on_slurm.stderr
    submitted = re.search(r"submitted job array (\d+) \(3 tasks\)", on_slurm.stdout)
    assert submitted, on_slurm.stdout
    array = submitted.group(1)
    states = subprocess.run(
        ["sacct", "-j", array, "-n", "-X", "-o", "JobID,State", "-P"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(states) == [f"{array}_{index}|COMPLETED" for index in range(3)]
    # Each finished step says the local launcher's line, numbered in the order the steps ended.
    steps = ["recipe", "resnet50", "stage_ratio"]
    said = re.findall(r"^\[(\d)/3\] (\w+) seed 0: top-1 [\d.]+%, 1 epochs, ", on_slurm.stdout, flags=re.M)
    assert sorted(index for index, _ in said) == ["1", "2", "3"], on_slurm.stdout
    assert sorted(step for _, step in said) == steps, on_slurm.stdout

    local = run_cli(*arguments, "--preset", "tiny", "--executor", "local", "--run", "local", timeout=300)
    assert local.returncode == 0, local.stderr
    slurm_dir, local_dir = tmp_path / "slurm", tmp_path / "local"
    assert files_of(slurm_dir) == files_of(local_dir)
    for step in ("resnet50", "recipe", "stage_ratio"):
        ours = json.loads((slurm_dir / step / "0" / "result.json").read_text())
        theirs = json.loads((local_dir / step / "0" / "result.json").read_text())
        assert ours.keys() == theirs.keys() and ours["status"] == "done"
        # Same key: the executor is not part of what a result means.
        assert ours["key"] == theirs["key"] and ours["params"] == theirs["params"]
    slurm_table = (slurm_dir / "report" / "table.csv").read_text().splitlines()
    local_table = (local_dir / "report" / "table.csv").read_text().splitlines()
    assert slurm_table[0] == local_table[0] and len(slurm_table) == len(local_table) == 4


def train_alone(tmp_path: Path, run: str, devices: int, per_device: int, cluster: ClusterOptions) -> Path:
    """Train only the `ln` row of `--steps ln` (ResNet-50 with LayerNorm, legacy recipe) on SLURM."""
    options = RunOptions(
        steps=("ln",), preset="tiny", epochs=2, batch_size=per_device, devices=devices, results=str(tmp_path), run=run
    )
    plan = plan_run(options)
    write_plan(plan)
    tasks = [task for task in plan.tasks if task.step == "ln"]
    results = launch(
        tasks, {"ln": 2}, "slurm", plan.run_dir / "submitit", cluster, devices, wait=True, report=lambda line: None
    )
    assert len(results) == 1 and results[0]["status"] == "done"
    return plan.run_dir / "ln" / "0"


@pytest.mark.slurm
def test_two_task_data_parallel_matches_one_process(slurm, tmp_path: Path) -> None:
    two = train_alone(tmp_path, "ddp", 2, 16, ClusterOptions(tasks_per_node=2, cpus_per_task=1, time_min=10))
    one = train_alone(tmp_path, "single", 1, 32, ClusterOptions(tasks_per_node=1, cpus_per_task=2, time_min=10))
    two_result, one_result = (json.loads((folder / "result.json").read_text()) for folder in (two, one))
    assert two_result["world_size"] == 2 and one_result["world_size"] == 1
    two_epochs, one_epochs = read_json_lines(two / "metrics.jsonl"), read_json_lines(one / "metrics.jsonl")
    assert len(two_epochs) == len(one_epochs) == 2
    # Why these tolerances: the network has no BatchNorm (LN only) and the legacy recipe has no
    # Mixup, so every image's loss and gradient do not depend on which rank holds it; augmentation
    # is seeded per image, and both runs see the same 32 images in each step (the distributed
    # sampler interleaves one shuffled order). DDP's all-reduce only changes the order of the
    # float sums, an O(1e-7) relative change per step that 16 SGD steps leave far below 1e-3 in
    # the losses. Top-1 counts whole images: allow one of the 128 validation images to flip on a
    # near-tie logit.
    one_image = 100.0 / 128
    for ours, theirs in zip(two_epochs, one_epochs):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-3)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-3)
        assert abs(ours["top1"] - theirs["top1"]) <= one_image + 1e-9
        assert abs(ours["top5"] - theirs["top5"]) <= one_image + 1e-9


@pytest.mark.slurm
def test_preempted_and_requeued_step_resumes(slurm, tmp_path: Path) -> None:
    epochs = 120  # about 0.3 s each: long enough that the plain requeue (SIGKILL after KillWait 10 s) lands mid-run
    submitted = run_cli(
        "--upto",
        "resnet50",
        "--epochs",
        str(epochs),
        "--no-wait",
        "--results",
        str(tmp_path),
        "--run",
        "preempt",
        *TINY,
        timeout=300,
    )
    assert submitted.returncode == 0, submitted.stderr
    job = re.search(r"resnet50/s0=(\d+(?:_\d+)?)", submitted.stdout).group(1)
    step = tmp_path / "preempt" / "resnet50" / "0"

    def epochs_done() -> list[dict]:
        return read_json_lines(step / "metrics.jsonl")

    # 1. SLURM's preemption signal: submitit's handler checkpoints (requeues the same call).
    wait_until(lambda: len(epochs_done()) >= 3, 180, "3 epochs before the signal")
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    before_signal = epochs_done()
    wait_until(
        lambda: len(epochs_done()) > len(before_signal) + 2 and restarts(job) >= 1,
        180,
        "the requeued job to train again",
    )
    # 2. A plain requeue (SIGTERM, then SIGKILL): resumes from the last epoch checkpoint on disk.
    subprocess.run(["scontrol", "requeue", job], check=True)
    wait_until(lambda: (step / "result.json").exists(), 300, "the step to finish")
    assert restarts(job) >= 2

    result = json.loads((step / "result.json").read_text())
    assert result["status"] == "done" and result["epochs"] == epochs
    history = epochs_done()
    assert [entry["epoch"] for entry in history] == list(range(1, epochs + 1))
    # Nothing started over: the epochs trained before the signal are kept as they were.
    assert history[: len(before_signal)] == before_signal
    logs = "".join(path.read_text() for path in (tmp_path / "preempt" / "submitit").glob("*_log.*"))
    resumed = [int(value) for value in re.findall(r"resuming after epoch (\d+)", logs)]
    assert len(resumed) >= 2 and min(resumed) >= 3, resumed


def restarts(job: str) -> int:
    """How many times SLURM restarted the job (requeues), from scontrol's RestartCnt."""
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    found = re.search(r"Restarts=(\d+)", shown)
    return int(found.group(1)) if found else 0


@pytest.mark.slurm
@pytest.mark.parametrize(
    "option,reason",
    [
        (["--partition", "nosuchpartition"], "invalid partition"),
        (["--mem-gb", "100000"], "requested node configuration is not available"),
    ],
)
def test_refused_submission_is_one_line(slurm, tmp_path: Path, option: list[str], reason: str) -> None:
    refused = run_cli("--upto", "resnet50", "--results", str(tmp_path), "--run", "refused", *TINY, *option, timeout=120)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_roadmap.py: error: SLURM refused"), refused.stderr
    assert reason in lines[0].lower(), lines[0]
    assert not (tmp_path / "refused").exists()


def test_auto_falls_back_to_local_without_a_controller(tmp_path: Path) -> None:
    environment = {**os.environ, "SLURM_CONF": str(tmp_path / "no-such-slurm.conf")}
    finished = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run_roadmap.py"),
            "--upto",
            "resnet50",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--results",
            str(tmp_path),
            "--run",
            "auto",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=environment,
    )
    assert finished.returncode == 0, finished.stderr
    assert "scontrol" not in finished.stdout + finished.stderr  # the local fallback is silent
    assert json.loads((tmp_path / "auto" / "resnet50" / "0" / "result.json").read_text())["status"] == "done"
