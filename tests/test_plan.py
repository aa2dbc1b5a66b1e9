"""`--plan`: model and loader rates measured here, the slower one binds, device-hours follow."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap.runs.forecast import device_hours, loader_images_per_s, plan_table
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run

ROOT = Path(__file__).resolve().parents[1]


def test_plan_follows_the_stated_formula(tmp_path):
    plan = plan_run(RunOptions(upto="stage_ratio", preset="tiny", results=str(tmp_path), seeds=2))
    table = plan_table(plan, throughput=50.0, say=lambda text: None)
    images = plan.info.train_images
    assert list(table.step) == ["resnet50", "recipe", "stage_ratio"]
    for row in table.itertuples():
        assert row.images_per_s == min(row.model_images_per_s, row.loader_images_per_s)
        assert row.bound == ("data-bound" if row.loader_images_per_s < row.model_images_per_s else "compute-bound")
        assert row.device_hours == pytest.approx(2 * row.epochs * images / row.images_per_s / 3600, rel=1e-3)
    assert device_hours(1000, 300, 1_281_167) == pytest.approx(106.76, abs=0.01)
    # Rows of one recipe share their transforms, so their loader is timed once.
    assert table.loader_images_per_s[1] == table.loader_images_per_s[2]
    measured = plan_table(plan, say=lambda text: None)  # the model measured here on each row's network
    assert (measured.model_images_per_s > 0).all() and (measured.model_source == "measured here").all()
    assert not tmp_path.joinpath("resnet50-tiny-synthetic").exists()  # planning writes nothing
    given = plan_table(plan, throughput=50.0, loader_throughput=20.0, say=lambda text: None)
    assert (given.images_per_s == 20.0).all() and (given.bound == "data-bound").all()


def test_loader_rate_is_the_pipelines_own(tmp_path):
    """A heavier pipeline (the modern recipe's RandAugment at 64 px) delivers fewer images/s."""
    plan = plan_run(RunOptions(upto="recipe", preset="tiny", results=str(tmp_path), workers=1))
    legacy, modern = plan.tasks
    assert loader_images_per_s(modern) > 0 and loader_images_per_s(legacy) > loader_images_per_s(modern) * 0.5


@pytest.mark.slow
def test_plan_command_for_the_paper_preset(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "run_roadmap.py",
            "--upto",
            "ln",
            "--plan",
            "--preset",
            "paper",
            "--throughput",
            "1000",
            "--images-per-epoch",
            "1281167",
            "--format",
            "json",
            "--workers",
            "2",
            "--results",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 13 and rows[0]["epochs"] == 90 and rows[1]["epochs"] == 300
    for row in rows:
        assert {"model_images_per_s", "loader_images_per_s", "images_per_s", "bound", "device_hours"} <= set(row)
        assert row["model_images_per_s"] == 1000 and row["images_per_s"] <= 1000
    assert rows[1]["device_hours"] == pytest.approx(300 * 1_281_167 / rows[1]["images_per_s"] / 3600, rel=1e-3)
    assert "plan: timing the modern recipe's loader" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5"])
def test_plan_refuses_a_throughput_that_is_not_a_rate(tmp_path, capsys, value):
    argv = ["--plan", "--preset", "tiny", "--throughput", value, "--results", str(tmp_path)]
    assert "--throughput must be a positive number" in one_error_line(capsys, argv)


def test_a_mode_of_a_model_run_is_refused_before_anything_is_loaded(tmp_path, capsys):
    """A mode with --model (outside a roadmap of variants) is refused by the options' own check, in
    planning and in --flops-only, before the dataset is loaded or a folder made; the co-design
    roadmap takes a model and its modes. A preset that does not exist is said first (as before)."""
    from roadmap.runs.options import RunError, check_model_mode

    for options in (
        RunOptions(model="convnext_tiny", mode="single", results=str(tmp_path)),
        RunOptions(roadmap="convnext_v2_codesign", model="convnext_tiny", steps=("grn",), mode="single"),
    ):
        with pytest.raises(RunError, match="--mode single needs a roadmap"):
            plan_run(options)
    check_model_mode(RunOptions(roadmap="convnext_v2_codesign", model="convnext_tiny", mode="single"))
    assert not any(tmp_path.iterdir())
    model_mode = ["--model", "convnext_tiny", "--mode", "single", "--results", str(tmp_path)]
    assert "--mode single needs a roadmap" in one_error_line(capsys, [*model_mode, "--flops-only"])
    assert "unknown preset 'nosuch'" in one_error_line(capsys, [*model_mode, "--preset", "nosuch"])
