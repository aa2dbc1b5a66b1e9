"""`--preset fast` (full-size networks, progressive 160->192 px, 224/256 testing) and `--classes N`."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli  # the script in a subprocess
from PIL import Image
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap import specs
from roadmap.data.datasets import DataError, load_datasets
from roadmap.data.source import DataSource
from roadmap.files.atomic import read_json
from roadmap.files.layout import read_json_lines
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run

ROOT = Path(__file__).resolve().parents[1]


def photo_folder(root: Path, classes=("ant", "bee", "cat"), per_class=4) -> Path:
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for index in range(per_class):
                Image.fromarray(rng.integers(0, 255, (120, 150, 3), dtype=np.uint8)).save(
                    root / split / name / f"{index}.jpg", quality=90
                )
    return root


def test_fast_preset_schedules(tmp_path):
    plan = plan_run(RunOptions(upto="recipe", preset="fast", results=str(tmp_path)))
    legacy, modern = plan.tasks
    assert [row.epochs for row in plan.info.rows] == [9, 30]  # 90 and 300 epochs x 1/10
    assert modern.resolution_schedule == ((0, 160), (26, 192)) and legacy.resolution_schedule == ((0, 160), (8, 192))
    assert [modern.train_resolution(epoch) for epoch in (0, 25, 26, 29)] == [160, 160, 192, 192]
    assert modern.eval_resolution == 224 and plan.info.resolution == "160->192 px, tested at 224"
    full_size = dict(specs("resnet50", upto="recipe"))["recipe"].network
    trained = modern.spec.network
    assert trained.widths == full_size.widths and trained.depths == full_size.depths
    assert modern.lr == pytest.approx(4e-3) and modern.per_device_batch * modern.accumulation == 4096


def test_fast_preset_plans_the_ablation_within_a_day_on_one_node(tmp_path):
    result = run_cli(
        "--plan",
        "--preset",
        "fast",
        "--upto",
        "ln",
        "--seeds",
        "3",
        "--images-per-epoch",
        "1281167",
        "--throughput",
        "3000",
        "--loader-throughput",
        "4000",
        "--format",
        "json",
        "--results",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    total = sum(row["device_hours"] for row in rows)
    # 3 x (9 + 12 x 30) epochs x 1281167 images / 3000 images/s = 131 GPU-hours <= 8 GPUs x 24 h.
    assert len(rows) == 13 and total == pytest.approx(3 * (9 + 12 * 30) * 1281167 / 3000 / 3600, rel=1e-3)
    assert total <= 192


@pytest.mark.slow
def test_fast_preset_trains_progressively_on_a_small_folder(tmp_path):
    data = photo_folder(tmp_path / "data")
    result = run_cli(
        "--upto",
        "resnet50",
        "--preset",
        "fast",
        "--dataset",
        "folder",
        "--data",
        str(data),
        "--classes",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--accumulation",
        "1",
        "--workers",
        "0",
        "--executor",
        "local",
        "--results",
        str(tmp_path / "results"),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "results" / "resnet50-fast-folder"
    record = read_json(run_dir / "resnet50" / "0" / "result.json")
    assert record["status"] == "done" and record["epochs"] == 2 and record["params"] > 20e6
    assert len(read_json_lines(run_dir / "resnet50" / "0" / "metrics.jsonl")) == 2
    info = read_json(run_dir / "run.json")
    assert info["num_classes"] == 2 and "2 of 3 classes drawn with seed 0" in info["dataset_description"]
    assert "160->192 px, tested at 224" in (run_dir / "report" / "table.md").read_text()


def test_class_subset_is_seeded_recorded_and_checked(tmp_path):
    data = photo_folder(tmp_path / "data")
    pair = load_datasets(DataSource("folder", str(data), classes=2))
    again = load_datasets(DataSource("folder", str(data), classes=2))
    assert pair.train.classes == again.train.classes and len(pair.train.classes) == 2
    assert pair.num_classes == 2 and len(pair.train) == 8 and set(pair.train.targets) == {0, 1}
    assert all(Path(path).parent.name == pair.train.classes[label] for path, label in pair.train.samples)
    with pytest.raises(DataError, match="more classes than the dataset has"):
        load_datasets(DataSource("folder", str(data), classes=4))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--classes", "0"], "--classes: must be a positive integer, got 0"),
        (["--classes", "2"], "--classes applies to --dataset folder"),
    ],
)
def test_bad_class_requests_are_one_line(tmp_path, capsys, args, expected):
    argv = ["--upto", "resnet50", "--preset", "tiny", "--results", str(tmp_path / "r"), *args]
    assert expected in one_error_line(capsys, argv) and not (tmp_path / "r").exists()


def test_too_many_classes_is_one_line(tmp_path):
    data = photo_folder(tmp_path / "data")
    result = run_cli(
        "--upto",
        "resnet50",
        "--preset",
        "tiny",
        "--dataset",
        "folder",
        "--data",
        str(data),
        "--classes",
        "9",
        "--results",
        str(tmp_path / "r"),
        timeout=120,
    )
    assert result.returncode == 2 and "--classes 9 asks for more classes than the dataset has (3)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()
