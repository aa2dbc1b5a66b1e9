"""The report reads a run from disk (docs/results-format.md) and writes tables and figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from matplotlib.container import BarContainer

from roadmap.complexity import CONVENTION
from roadmap.plots import reference_figure
from roadmap.reference import paper_table
from roadmap.results import RunNotFound, aggregate, collect, load_run, report, training_curves

RUN = "resnet50-cpu-synthetic"
STEPS = [
    ("resnet50", "training techniques", None, 4.089), ("recipe", "training techniques", None, 4.089),
    ("stage_ratio", "macro design", None, 4.526), ("patchify", "macro design", None, 4.418),
    ("depthwise", "ResNeXt", None, 2.350), ("width", "ResNeXt", None, 5.268),
    ("invert", "inverted bottleneck", None, 4.644), ("move_up", "large kernel", None, 4.065),
    ("kernel", "large kernel", None, 4.146), ("kernel5", "large kernel", "kernel", 4.097),
    ("kernel9", "large kernel", "kernel", 4.210), ("kernel11", "large kernel", "kernel", 4.291),
    ("gelu", "micro design", None, 4.146), ("fewer_act", "micro design", None, 4.146),
    ("fewer_norm", "micro design", None, 4.146), ("ln", "micro design", None, 4.146),
]
SEEDS = (0, 1)
EPOCHS = 3
# Row outcomes other than "done on both seeds": (step, seed) -> status; a missing entry writes nothing.
OUTCOMES = {
    ("kernel9", 1): "diverged",
    ("kernel11", 0): "diverged",
    ("kernel11", 1): "diverged",
    ("fewer_norm", 0): "missing",
    ("fewer_norm", 1): "missing",
    ("ln", 0): "running",
    ("ln", 1): "missing",
}


def top1_of(order: int, seed: int) -> float:
    return 40.0 + 1.5 * order + 0.4 * seed


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


def write_seed(run_dir: Path, order: int, step: str, seed: int, gflops: float, status: str) -> None:
    folder = run_dir / step / str(seed)
    if status == "missing":
        return
    key = f"{order:016x}"
    write_json(folder / "spec.json", {"spec": {}, "preset": "cpu", "dataset": "synthetic", "seed": seed, "key": key})
    final = top1_of(order, seed)
    epochs = 2 if status == "running" else EPOCHS
    lines = []
    for epoch in range(1, epochs + 1):
        diverged = status == "diverged" and epoch == epochs
        lines.append(json.dumps({
            "epoch": epoch, "train_loss": float("nan") if diverged else 2.0 / epoch, "val_loss": 1.5 / epoch,
            "top1": final - 3.0 * (EPOCHS - epoch), "top5": 90.0, "lr": 0.001, "epoch_time_s": 1.0,
            "data_wait_s": 0.1, "images_per_s": 500.0,
        }))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if status == "running":
        return
    write_json(folder / "result.json", {
        "status": status, "step": step, "seed": seed, "key": key,
        "top1": 10.0 if status == "diverged" else final, "top5": 90.0, "best_top1": final, "epochs": EPOCHS,
        "gflops": gflops, "params": 25_000_000 + order, "proxy_gflops": 0.01 * (order + 1),
        "proxy_params": 400_000, "train_images_per_s": 800.0 - 10 * order + seed * 20,
        "infer_images_per_s": 3000.0 - 50 * order, "wall_time_s": 40.0 + order, "device": "cpu (2 threads)",
        "dataset": "synthetic", "preset": "cpu",
    })


def write_run(results: Path, name: str, rows: list[tuple[str, str | None, str | None, float]], mode: str,
              roadmap: str = "resnet50") -> Path:
    run_dir = results / name
    write_json(run_dir / "run.json", {
        "run": name, "roadmap": roadmap, "mode": mode, "preset": "cpu", "dataset": "synthetic",
        "seeds": list(SEEDS), "resolution": 32, "epochs": EPOCHS,
        "rows": [{"step": step, "label": step.replace("_", " "), "group": group, "branch_of": parent,
                  "gflops": gflops, "params": 25_000_000 + order, "key": f"{order:016x}"}
                 for order, (step, group, parent, gflops) in enumerate(rows)],
    })
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("results")
    run_dir = write_run(results, RUN, STEPS, "cumulative")
    for order, (step, _, _, gflops) in enumerate(STEPS):
        for seed in SEEDS:
            write_seed(run_dir, order, step, seed, gflops, OUTCOMES.get((step, seed), "done"))
    write_run(results, "resnet200-cpu-synthetic", [("resnet200", None, None, 15.007)], "cumulative", "resnet200")
    return run_dir


@pytest.fixture(scope="module")
def table(run_dir: Path) -> pd.DataFrame:
    return aggregate(collect(run_dir), load_run(run_dir)).set_index("step")


@pytest.fixture(scope="module")
def written(run_dir: Path) -> dict[str, Path]:
    return report(run_dir)


def test_collect_has_one_row_per_step_and_seed_with_status(run_dir: Path) -> None:
    frame = collect(run_dir)
    assert len(frame) == len(STEPS) * len(SEEDS)
    status = frame.set_index(["step", "seed"]).status
    assert status[("recipe", 0)] == "done"
    assert status[("kernel9", 1)] == "diverged"
    assert status[("ln", 0)] == "running"
    assert status[("ln", 1)] == "missing"
    assert frame.set_index(["step", "seed"]).epochs_done[("ln", 0)] == 2


def test_aggregate_means_stds_changes_and_statuses(table: pd.DataFrame) -> None:
    assert list(table.index) == [step for step, *_ in STEPS]
    assert table.top1_mean["recipe"] == pytest.approx(41.7)
    assert table.top1_std["recipe"] == pytest.approx(0.4 / math.sqrt(2))
    assert table.change["recipe"] == pytest.approx(1.5)
    # Branch rows compare with the row their branch starts from (move_up), not with kernel.
    assert table.compared_with["kernel5"] == "move_up"
    assert table.change["kernel5"] == pytest.approx(3.0)
    # gelu compares with the previous main-path row, skipping the branches.
    assert table.compared_with["gelu"] == "kernel"
    assert table.change["gelu"] == pytest.approx(6.0)
    # Done seeds only: kernel9 keeps seed 0 alone, so no std; diverged/missing rows have no mean.
    assert table.top1_mean["kernel9"] == pytest.approx(top1_of(10, 0))
    assert math.isnan(table.top1_std["kernel9"])
    assert math.isnan(table.top1_mean["kernel11"]) and math.isnan(table.top1_mean["fewer_norm"])
    assert math.isnan(table.change["ln"])
    assert table.status["recipe"] == "done 2/2"
    assert table.status["kernel9"] == "done 1/2, diverged 1/2"
    assert table.status["kernel11"] == "diverged 2/2"
    assert table.status["fewer_norm"] == "missing 2/2"
    assert table.status["ln"] == "running 1/2, missing 1/2"
    assert table.train_images_per_s["recipe"] == pytest.approx(800.0)
    assert table.device["recipe"] == "cpu (2 threads)"


def test_aggregate_merges_paper_values(table: pd.DataFrame) -> None:
    paper = paper_table("resnet50")
    assert table.paper_top1["gelu"] == pytest.approx(paper.at["gelu", "paper_top1"])
    assert table.paper_gflops["width"] == pytest.approx(5.27)
    assert table.paper_change["kernel5"] == pytest.approx(80.35 - 79.92)
    assert table.paper_change["gelu"] == pytest.approx(80.62 - 80.57)


def test_other_modes_get_the_mode_as_group_and_no_paper_values(tmp_path: Path) -> None:
    rows = [("without_gelu", None, None, 4.1), ("gelu", None, None, 4.1)]
    run_dir = write_run(tmp_path, "resnet50-cpu-synthetic-ablation", rows, "ablation")
    write_seed(run_dir, 0, "without_gelu", 0, 4.1, "done")
    table = aggregate(collect(run_dir), load_run(run_dir))
    assert list(table.group) == ["ablation", "ablation"]
    assert table.paper_top1.isna().all()
    assert list(table.status) == ["done 1/2, missing 1/2", "missing 2/2"]
    paths = report(run_dir)
    assert "paper" not in paths["table_md"].read_text()
    assert paths["roadmap_png"].stat().st_size > 0


def test_stale_results_and_half_written_metrics(tmp_path: Path) -> None:
    rows = [("resnet50", "training techniques", None, 4.089), ("recipe", "training techniques", None, 4.089)]
    run_dir = write_run(tmp_path, RUN, rows, "cumulative")
    write_seed(run_dir, 5, "resnet50", 0, 4.089, "done")  # key of another plan
    write_seed(run_dir, 1, "recipe", 0, 4.089, "running")
    with (run_dir / "recipe" / "0" / "metrics.jsonl").open("a") as metrics:
        metrics.write('{"epoch": 3, "top1"')  # the trainer is mid-write
    frame = collect(run_dir).set_index(["step", "seed"])
    assert frame.status[("resnet50", 0)] == "missing" and bool(frame.stale[("resnet50", 0)])
    assert frame.status[("recipe", 0)] == "running" and frame.epochs_done[("recipe", 0)] == 2


def test_training_curves(run_dir: Path) -> None:
    curves = training_curves(run_dir)
    assert {"step", "seed", "epoch", "top1", "train_loss"} <= set(curves.columns)
    recipe = curves[(curves.step == "recipe") & (curves.seed == 1)].sort_values("epoch")
    assert list(recipe.epoch) == [1, 2, 3]
    assert recipe.top1.iloc[-1] == pytest.approx(top1_of(1, 1))
    assert len(curves[curves.step == "ln"]) == 2


def test_tables_written_with_caption(written: dict[str, Path]) -> None:
    csv = pd.read_csv(written["table_csv"])
    assert len(csv) == len(STEPS)
    assert csv.set_index("step").top1_mean["recipe"] == pytest.approx(41.7)
    markdown = written["table_md"].read_text()
    assert "| kernel9 " in markdown and "done 1/2, diverged 1/2" in markdown
    assert "41.70 ± 0.28" in markdown
    assert "CPU proxy on the embedded synthetic dataset, not ImageNet" in markdown
    assert CONVENTION in markdown and "preset cpu" in markdown
    latex = written["table_tex"].read_text()
    assert "\\begin{table}" in latex and "\\caption{" in latex and "\\toprule" in latex
    assert "stage\\_ratio" in latex and "not ImageNet" in latex


def test_figures_are_valid_images(written: dict[str, Path]) -> None:
    for name in ("roadmap", "trajectory", "throughput", "curves"):
        png, pdf = written[f"{name}_png"], written[f"{name}_pdf"]
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
        assert png.parent.name == "report"


def test_run_not_found_lists_existing_runs(run_dir: Path) -> None:
    with pytest.raises(RunNotFound) as error:
        report(run_dir.parent / "nope")
    message = str(error.value)
    assert "\n" not in message
    assert RUN in message and "resnet200-cpu-synthetic" in message


@pytest.mark.parametrize("roadmap", ["resnet50", "resnet200"])
def test_reference_figure_has_one_bar_per_paper_row(roadmap: str, tmp_path: Path) -> None:
    figure = reference_figure(roadmap, tmp_path / f"{roadmap}.png")
    bars = [bar for container in figure.axes[1].containers if isinstance(container, BarContainer) for bar in container]
    assert len(bars) == len(paper_table(roadmap)) == 17
    assert sum(bool(bar.get_hatch()) for bar in bars) == 3  # kernel 5/9/11
    assert matplotlib.image.imread(tmp_path / f"{roadmap}.png").shape[0] > 200
