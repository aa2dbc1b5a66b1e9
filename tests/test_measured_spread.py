"""Noise measured where it is claimed: the shipped seed spread per preset and dataset, the order in
which the report picks a spread for "seeds that would resolve", and the caption that names it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_RUN
from test_report import STEPS, write_run, write_seed

import roadmap.report.measured_spread
from roadmap.files.atomic import write_json
from roadmap.report.captions import noise_line
from roadmap.report.intervals import seeds_to_resolve
from roadmap.report.measured_spread import NOISE_DIR, measured_spread, read_spread, root_mean_square, spread_path
from roadmap.report.run_table import add_noise_columns, aggregate, comparison_rows
from roadmap.runs.seeds import collect, load_run
from roadmap.train.optimisation import TRAINING_RULES

ROOT = Path(__file__).resolve().parents[1]
# Two-sided 95% and one-sided 80% t quantiles at 2n - 2 degrees of freedom (n seeds per row).
T_975 = {4: 2.7764451051977987, 6: 2.4469118511449786, 10: 2.228138851986274, 34: 2.0322445093177186}
T_80 = {4: 0.9409645772351816, 6: 0.9057032851805317, 10: 0.8790578285505889, 34: 0.8523211691345034}
T_975[36], T_80[36] = 2.0280940009804502, 0.851719984276387


def measurement(rows: dict[str, float], pooled: float, seeds: int = 3) -> dict:
    return {
        "preset": "cpu",
        "dataset": "synthetic",
        "roadmap": "resnet50",
        "mode": "cumulative",
        "model": None,
        "seeds": seeds,
        "training_rules": TRAINING_RULES,
        "pooled_std": pooled,
        "rows": {step: {"top1_std": std, "seeds": seeds, "top1_mean": 50.0} for step, std in rows.items()},
        "command": "python benchmarks/seed_spread.py --preset cpu --dataset synthetic --seeds 3",
        "commit": "abc",
        "date": "2026-01-01",
    }


def test_root_mean_square_by_hand() -> None:
    assert root_mean_square([3.0, 4.0, math.nan, None]) == pytest.approx(math.sqrt(12.5))
    assert math.isnan(root_mean_square([math.nan]))


def test_loader_missing_placeholder_and_measured(tmp_path: Path) -> None:
    assert measured_spread("cpu", "synthetic", tmp_path) is None  # no file: no measured spread
    assert measured_spread(None, "synthetic") is None
    (tmp_path / "cpu-synthetic.json").write_text("{cut short")
    assert measured_spread("cpu", "synthetic", tmp_path) is None
    write_json(tmp_path / "cpu-synthetic.json", measurement({}, None))  # the placeholder: nothing measured
    assert measured_spread("cpu", "synthetic", tmp_path) is None
    write_json(tmp_path / "cpu-synthetic.json", measurement({"recipe": 2.0, "stage_ratio": None}, 2.5))
    spread = measured_spread("cpu", "synthetic", tmp_path)
    assert spread.pooled_std == 2.5 and dict(spread.row_std) == {"recipe": 2.0}
    assert spread.source() == "measured cpu-synthetic, 3 seeds, pooled over rows"
    # Measured under other training rules (another schedule, EMA, groups): not this code's noise.
    write_json(tmp_path / "cpu-synthetic.json", {**measurement({"recipe": 2.0}, 2.5), "training_rules": 1})
    assert measured_spread("cpu", "synthetic", tmp_path) is None


def test_shipped_files_are_package_data_with_their_command() -> None:
    """Every shipped file names the command that regenerates it; one holds numbers only once measured."""
    assert "noise/*.json" in (ROOT / "setup.cfg").read_text()
    shipped = sorted(NOISE_DIR.glob("*.json"))
    assert spread_path("cpu", "synthetic") in shipped
    # The embedded default's spread is measured and shipped (the default run's caption plans with it).
    assert read_spread(spread_path("cpu", "synthetic")).pooled_std > 0
    for path in shipped:
        data = json.loads(path.read_text())
        assert data["command"].startswith("python benchmarks/seed_spread.py") and "rows" in data
        spread = read_spread(path)
        assert (spread is None) == (data["pooled_std"] is None)
        if spread is not None:
            assert spread.seeds >= 2 and data["commit"] and data["date"]


def noise_table(stds: list[float], top1: list[list[float]], paper_std: float = 0.1) -> pd.DataFrame:
    steps = ["resnet50", "recipe", "stage_ratio"][: len(top1)]
    return pd.DataFrame(
        {
            "step": steps,
            "top1_values": top1,
            "top1_std": stds,
            "change": [math.nan, *(sum(b) / len(b) - sum(a) / len(a) for a, b in zip(top1, top1[1:]))],
            "paper_top1_std": [paper_std] * len(steps),  # never used: ImageNet's noise is not the proxy's
        }
    )


def noise_columns(table: pd.DataFrame, spread=None) -> pd.DataFrame:
    bases = comparison_rows(list(table.step), [None] * len(table))
    return add_noise_columns(table, bases, spread).set_index("step")


@pytest.fixture
def spread(tmp_path: Path):
    # Measured rows: resnet50 1.0, recipe 2.0 (stage_ratio not measured); pooled 1.5.
    write_json(tmp_path / "cpu-synthetic.json", measurement({"resnet50": 1.0, "recipe": 2.0}, 1.5))
    return measured_spread("cpu", "synthetic", tmp_path)


def test_spread_order_run_rows_then_run_pooled(spread) -> None:
    # recipe: one seed against resnet50's two (std sqrt(0.5) of [10, 11]): the run's own std of the pair.
    table = noise_columns(noise_table([math.sqrt(0.5), math.nan], [[10.0, 11.0], [13.0]]), spread)
    assert table.spread_source["recipe"] == "run"
    # change 2.5, std sqrt(0.5): n = 2 needs (4.3027 + 1.0607) * 0.707 = 3.79; n = 3 (2.7764 + 0.9410) * 0.707
    # * 0.816 = 2.146 <= 2.5: 3 seeds.
    assert (T_975[4] + T_80[4]) * math.sqrt(0.5) * math.sqrt(2 / 3) < 2.5
    assert table.seeds_to_resolve["recipe"] == 3
    # stage_ratio against recipe: neither has two seeds; the run's std pooled over rows (only resnet50's).
    table = noise_columns(noise_table([math.sqrt(0.5), math.nan, math.nan], [[10.0, 11.0], [13.0], [14.0]]), spread)
    assert table.spread_source["stage_ratio"] == "run, pooled over rows"


def test_spread_order_measured_pooled_then_none(spread) -> None:
    one_seed = noise_table([math.nan] * 3, [[10.0], [13.0], [14.0]])
    table = noise_columns(one_seed, spread)
    # The measurement's pooled std 1.5 for every change (a row's own std from 3 seeds has 2 degrees
    # of freedom). recipe, change 3: n = 4 (dof 6) gives (2.4469 + 0.9057) * 1.5 * 0.707 = 3.556 > 3,
    # n = 5 (dof 8) (2.3060 + 0.8889) * 1.5 * 0.632 = 3.031 > 3, n = 6 (dof 10) (2.2281 + 0.8791) * 1.5
    # * 0.577 = 2.691 <= 3: 6 seeds.
    assert set(table.spread_source.dropna()) == {"measured cpu-synthetic, 3 seeds, pooled over rows"}
    assert (T_975[6] + T_80[6]) * 1.5 * math.sqrt(2 / 4) > 3.0
    assert (T_975[10] + T_80[10]) * 1.5 * math.sqrt(2 / 6) <= 3.0
    assert table.seeds_to_resolve["recipe"] == 6
    assert table.seeds_to_resolve["stage_ratio"] == seeds_to_resolve(1.0, 1.5)
    # Nothing measured and no spread in the run: none, and never the paper's std.
    table = noise_columns(one_seed, None)
    assert table.spread_source.isna().all() and table.seeds_to_resolve.isna().all()
    caption = noise_line(table.reset_index())
    assert "No seed spread is known" in caption and "paper" not in caption


def test_within_noise_changes_get_seeds_from_the_run(spread) -> None:
    # Two seeds each, [10, 12] and [10.5, 12.5]: change 0.5, within noise; std sqrt(2) for both rows.
    table = noise_columns(noise_table([math.sqrt(2), math.sqrt(2)], [[10.0, 12.0], [10.5, 12.5]]), spread)
    assert table.verdict["recipe"] == "within noise" and table.spread_source["recipe"] == "run"
    assert pd.isna(table.seeds_to_resolve["recipe"])  # 0.5 against a std of 1.41 needs more than 100 seeds
    caption = noise_line(table.reset_index())
    assert "recipe >100" in caption and "at 95% confidence and 80% power" in caption
    assert "One seed" not in caption  # every row has its seeds: only the first has no change to judge


def test_caption_names_the_measured_source_and_the_power(spread) -> None:
    table = noise_columns(noise_table([math.nan] * 2, [[10.0], [13.0]]), spread).reset_index()
    caption = noise_line(table)
    assert caption.startswith("One seed: no verdict.")
    assert "at 95% confidence and 80% power" in caption
    assert "spread: the seed std measured on cpu-synthetic with 3 seeds per row, pooled over rows" in caption
    assert caption.endswith("recipe 6.")  # change 3 at the pooled 1.5, as above
    unchanged = noise_columns(noise_table([math.nan] * 2, [[10.0], [10.0]]), spread).reset_index()
    assert noise_line(unchanged).endswith("recipe none (no change).")


def test_aggregate_reads_the_preset_and_dataset_measurement(monkeypatch, tmp_path: Path) -> None:
    """aggregate looks the run's preset and dataset up in the package's noise folder."""
    noise = tmp_path / "noise"
    write_json(noise / "cpu-synthetic.json", measurement({"resnet50": 1.0, "recipe": 2.0}, 1.5))
    monkeypatch.setattr(roadmap.report.measured_spread, "NOISE_DIR", noise)
    run_dir = write_run(tmp_path / "results", "one-seed", STEPS[:2], "cumulative")
    for order, (step, _, _, gflops) in enumerate(STEPS[:2]):
        write_seed(run_dir, order, step, 0, gflops, "done")  # seed 0 of [0, 1]: one done seed per row
    table = aggregate(collect(run_dir), load_run(run_dir)).set_index("step")
    # change 41.5 - 40 = 1.5 at the pooled std 1.5: a change of one std, 17 seeds (tests/test_statistics.py).
    assert table.spread_source["recipe"] == "measured cpu-synthetic, 3 seeds, pooled over rows"
    assert table.seeds_to_resolve["recipe"] == 17


@pytest.mark.slow
def test_benchmark_writes_the_measurement_of_a_trained_run(tiny_run, tmp_path: Path) -> None:
    """benchmarks/seed_spread.py --no-train on conftest's two-seed tiny run: the file the loader reads."""
    out = tmp_path / "noise" / "tiny-synthetic.json"
    command = [sys.executable, "benchmarks/seed_spread.py", "--no-train", "--results", str(tiny_run.results)]
    done = subprocess.run(
        [*command, "--run", TINY_RUN, "--seeds", "2", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    table = pd.read_csv(tiny_run.results / TINY_RUN / "report" / "table.csv").set_index("step")
    assert list(data["rows"]) == list(table.index) and data["seeds"] == 2
    for step, row in data["rows"].items():
        assert row["seeds"] == table.seeds_done[step] and row["top1_std"] == pytest.approx(table.top1_std[step])
    assert data["pooled_std"] == pytest.approx(root_mean_square(table.top1_std))
    assert data["command"] == (
        f"python benchmarks/seed_spread.py --preset tiny --dataset synthetic --seeds 2 --run {TINY_RUN}"
    )
    assert data["date"] and (data["preset"], data["dataset"], data["roadmap"]) == ("tiny", "synthetic", "resnet50")
    spread = measured_spread("tiny", "synthetic", out.parent)
    assert spread.pooled_std == pytest.approx(data["pooled_std"]) and spread.seeds == 2
