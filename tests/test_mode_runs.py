"""Every ablation mode trains on the tiny preset and its report holds the table and four figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from roadmap.cli.commands import main
from roadmap.files.atomic import read_json
from roadmap.files.layout import RunPaths
from roadmap.runs.info import RunInfo

FIGURES = ("roadmap", "trajectory", "throughput", "curves")

# (extra CLI arguments, run name, expected rows in table order). Short paths keep the test quick;
# the row logic of every mode on full paths is covered in test_modes.py.
MODES = [
    (["--upto", "stage_ratio"], "cumulative", ["resnet50", "recipe", "stage_ratio"]),
    (
        ["--mode", "leave-one-out", "--upto", "stage_ratio"],
        "leave-one-out",
        ["final", "without_recipe", "without_stage_ratio"],
    ),
    (
        ["--mode", "single", "--upto", "patchify"],
        "single",
        ["resnet50", "only_recipe", "only_stage_ratio", "only_patchify"],
    ),
    (["--steps", "gelu,ln"], "custom", ["resnet50", "gelu", "ln"]),
    (["--model", "convnext_tiny", "--steps", "grn"], "model", ["convnext_tiny", "grn"]),
]


@pytest.mark.parametrize("arguments,run,rows", MODES, ids=[run for _, run, _ in MODES])
def test_mode_trains_and_reports(tmp_path: Path, capsys, arguments: list[str], run: str, rows: list[str]) -> None:
    code = main(
        arguments
        + ["--preset", "tiny", "--executor", "debug", "--epochs", "1", "--results", str(tmp_path), "--run", run]
    )
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / run
    info = RunInfo.from_json(read_json(RunPaths(run_dir).plan))
    assert [row.step for row in info.rows] == rows
    for step in rows:
        result = json.loads((run_dir / step / "0" / "result.json").read_text())
        assert result["status"] == "done" and 0.0 <= result["top1"] <= 100.0
    table = pd.read_csv(run_dir / "report" / "table.csv")
    assert table.step.tolist() == rows
    assert (table.status == "done").all()
    # Each row reports its own full-size GFLOPs, so rows differ where the networks differ.
    assert table.gflops.notna().all()
    for name in FIGURES:
        for suffix in (".png", ".pdf"):
            figure = run_dir / "report" / f"{name}{suffix}"
            assert figure.stat().st_size > 1000, figure
    assert (run_dir / "report" / "table.md").read_text().count("\n") >= len(rows) + 2


def test_leave_one_out_names_what_it_leaves_out(tmp_path: Path, capsys) -> None:
    # ConvNeXt V2's GRN needs the inverted bottleneck: its leave-one-out row is skipped with a reason.
    code = main(
        [
            "--roadmap",
            "convnext-v2",
            "--mode",
            "leave-one-out",
            "--preset",
            "tiny",
            "--plan",
            "--throughput",
            "100",
            "--results",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "without_grn" in out and "without_invert" not in out.split("Plan of run")[0]


def test_model_with_a_mode_is_refused(tmp_path: Path, capsys) -> None:
    code = main(["--model", "convnext_tiny", "--mode", "single", "--preset", "tiny", "--results", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--model" in err
    assert not any(tmp_path.iterdir())
