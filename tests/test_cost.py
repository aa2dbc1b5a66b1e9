"""Cost per step (measured throughput and memory) and the --plan estimate of device-hours."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roadmap import specs
from roadmap.cost import device_hours, measure, plan_table
from roadmap.runs import RunOptions, plan_run

ROOT = Path(__file__).resolve().parents[1]


def test_measure_reports_positive_rates_and_its_conditions():
    spec = specs("resnet50", upto="patchify")[-1][1]
    cost = measure(spec, batch=2, resolution=64, warmup=1, iterations=1)
    assert cost.train_images_per_s > 0 and cost.infer_images_per_s > cost.train_images_per_s / 10
    assert cost.peak_memory_mb >= 0 and (cost.batch, cost.resolution, cost.compiled) == (2, 64, False)
    if torch.cuda.is_available():  # the device's defaults: bf16 + channels-last on a GPU
        assert cost.device == torch.cuda.get_device_name() and (cost.precision, cost.dtype) == ("bf16", "bfloat16")
        assert cost.channels_last and cost.memory_format == "channels_last"
    else:  # fp32, NCHW on the CPU
        assert cost.device.startswith("cpu") and (cost.precision, cost.dtype) == ("fp32", "float32")
        assert not cost.channels_last and cost.memory_format == "contiguous"


def test_plan_follows_the_stated_formula(tmp_path):
    plan = plan_run(RunOptions(upto="stage_ratio", preset="tiny", results=str(tmp_path), seeds=2))
    table = plan_table(plan, throughput=50.0)
    images = plan.info["train_images"]
    assert list(table.step) == ["resnet50", "recipe", "stage_ratio"]
    for row in table.itertuples():
        assert row.device_hours == pytest.approx(2 * row.epochs * images / 50.0 / 3600)
    assert device_hours(1000, 300, 1_281_167) == pytest.approx(106.76, abs=0.01)
    measured = plan_table(plan)  # measured here on each row's trained network
    assert (measured.train_images_per_s > 0).all() and measured.throughput_source.str.contains("measured").all()
    assert not tmp_path.joinpath("resnet50-tiny-synthetic").exists()  # planning writes nothing


def test_plan_command_for_the_paper_preset(tmp_path):
    result = subprocess.run(
        [sys.executable, "run_roadmap.py", "--upto", "ln", "--plan", "--preset", "paper", "--throughput", "1000",
         "--images-per-epoch", "1281167", "--format", "json", "--results", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 13 and rows[0]["epochs"] == 90 and rows[1]["epochs"] == 300
    assert rows[1]["device_hours"] == pytest.approx(300 * 1_281_167 / 1000 / 3600)
    assert list(tmp_path.iterdir()) == []
