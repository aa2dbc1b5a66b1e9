"""Figures and words that cannot mislead (issue 23): checked on the real matplotlib Figure objects
after a draw, and on the labels and descriptions the report prints.

- no legend covers the caption (or, for a figure-level legend, an axes);
- every accuracy figure has a dashed line at chance (100 / classes %) inside its limits;
- labels wrap at spaces only, never inside a word or a name such as leave_one_out;
- a proxy's rows say what was trained, the paper's labels stay beside them;
- the embedded synthetic set is described as rendered in memory, not as files.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from roadmap.data.source import DataSource
from roadmap.report.codesign import codesign_table
from roadmap.report.plots.agreement import changes_figure
from roadmap.report.plots.codesign import codesign_figure
from roadmap.report.plots.figures import curves_figure, throughput_figure, trajectory_figure
from roadmap.report.plots.reference import reference_figure
from roadmap.report.plots.roadmap import roadmap_figure, row_labels
from roadmap.report.plots.style import CAPTION, CHANCE, wrap_words
from roadmap.report.tables import display_table, trained_label, trained_labels

CLASSES = 16
CHANCE_LEVEL = 100 / CLASSES
# Long enough to wrap to several lines: the legend must sit above all of them.
CAPTION_TEXT = "Run x: dataset synthetic, preset cpu, mode cumulative. " * 8
STEPS = ["resnet50", "recipe", "stage_ratio", "patchify", "kernel", "kernel5"]


def _table() -> pd.DataFrame:
    """A run table whose accuracies sit far above chance, so that the chance line widens the axes."""
    count = len(STEPS)
    return pd.DataFrame(
        {
            "step": STEPS,
            "label": [f"{step} proxy, 4 ep, 32 px" for step in STEPS],
            "group": ["training techniques"] * 2 + ["macro design"] * 2 + ["large kernel"] * 2,
            "branch_of": [None] * (count - 1) + ["kernel"],
            "top1_mean": [60.0, 62.0, 63.5, 61.0, 64.0, 63.0],
            "top1_std": [0.5] * count,
            "change": [math.nan, 2.0, 1.5, -2.5, 3.0, 2.0],
            "change_ci_low": [math.nan, 1.0, 0.5, -3.5, 2.0, 1.0],
            "change_ci_high": [math.nan, 3.0, 2.5, -1.5, 4.0, 3.0],
            "verdict": [None, "gain", "gain", "loss", "gain", "gain"],
            "gflops": [4.09, 4.09, 4.53, 4.42, 4.15, 4.10],
            "paper_gflops": [4.09, 4.09, 4.53, 4.42, 4.15, 4.10],
            "paper_top1": [76.13, 78.82, 79.36, 79.51, 80.57, 80.35],
            "proxy_gflops": [0.001 * (index + 1) for index in range(count)],
            "train_images_per_s": [900.0 + index for index in range(count)],
            "infer_images_per_s": [5000.0 + index for index in range(count)],
            "status": ["done"] * count,
        }
    )


def _curves() -> pd.DataFrame:
    records = [
        {"order": order, "step": step, "branch_of": None, "seed": 0, "epoch": epoch, "top1": 55.0 + order + epoch}
        | {"train_loss": 2.0 / epoch, "soft_targets": order > 1}
        for order, step in enumerate(STEPS)
        for epoch in (1, 2, 3)
    ]
    return pd.DataFrame.from_records(records)


def _codesign() -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "step": ["v1_supervised", "v1_fcmae", "v2_supervised", "v2_fcmae"],
            "top1_mean": [40.2, 40.1, 41.0, 41.6],
            "paper_top1": [83.8, 83.7, 84.3, 84.6],
            "pretrain_loss": [math.nan, 0.5, math.nan, 0.4],
        }
    )
    return codesign_table(table)


def _agreement_records() -> list[dict]:
    return [
        {
            "step": step,
            "branch_of": None,
            "change": 1.0 - index,
            "change_ci_low": -index,
            "change_ci_high": 2.0 - index,
            "verdict": None,
            "reference_change": 0.5,
            "reference_std": 0.1,
            "compared": index % 2 == 0,
            "agrees": index % 4 == 0,
        }
        for index, step in enumerate(STEPS[1:])
    ]


def _figures() -> dict[str, Figure]:
    table = _table()
    return {
        "roadmap": roadmap_figure(table, CAPTION_TEXT, title="t", paper_values=table.paper_top1, classes=CLASSES),
        "trajectory": trajectory_figure(table, CAPTION_TEXT, title="t", classes=CLASSES),
        "throughput": throughput_figure(table, CAPTION_TEXT, title="t"),
        "curves": curves_figure(_curves(), CAPTION_TEXT, title="t", classes=CLASSES),
        "changes": changes_figure(_agreement_records(), CAPTION_TEXT, "paper Table 10", title="t"),
        "codesign": codesign_figure(_codesign(), CAPTION_TEXT, classes=CLASSES),
        "reference": reference_figure("resnet50"),
    }


@pytest.fixture(scope="module")
def figures() -> dict[str, Figure]:
    built = _figures()
    for figure in built.values():
        figure.draw_without_rendering()  # the constrained layout and every legend placed
    return built


def _caption_box(figure: Figure):
    captions = [text for text in figure.texts if text.get_gid() == CAPTION]
    assert len(captions) == 1
    return captions[0].get_window_extent(figure.canvas.get_renderer())


def _legends(figure: Figure) -> list:
    return list(figure.legends) + [axis.get_legend() for axis in figure.axes if axis.get_legend() is not None]


@pytest.mark.parametrize("name", ["roadmap", "trajectory", "throughput", "curves", "changes", "codesign", "reference"])
def test_no_legend_over_the_caption(figures: dict[str, Figure], name: str) -> None:
    figure = figures[name]
    renderer = figure.canvas.get_renderer()
    caption = _caption_box(figure)
    legends = _legends(figure)
    assert legends, f"{name} has no legend to check"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert not box.overlaps(caption), f"{name}: legend {box} over the caption {caption}"
    for legend in figure.legends:  # a figure-level legend sits between the caption and the axes
        box = legend.get_window_extent(renderer)
        for axis in figure.axes:
            assert not box.overlaps(axis.get_window_extent(renderer)), f"{name}: legend over an axes"


def _chance_lines(figure: Figure) -> list:
    return [(axis, line) for axis in figure.axes for line in axis.get_lines() if line.get_gid() == CHANCE]


@pytest.mark.parametrize(
    "name, level, vertical",
    [
        ("roadmap", CHANCE_LEVEL, True),
        ("trajectory", CHANCE_LEVEL, False),
        ("curves", CHANCE_LEVEL, False),
        ("codesign", CHANCE_LEVEL, False),
        ("reference", 0.1, True),
    ],
)
def test_accuracy_figures_mark_chance_inside_their_limits(
    figures: dict[str, Figure], name: str, level: float, vertical: bool
) -> None:
    found = _chance_lines(figures[name])
    assert found, f"{name} has no chance line"
    axis, line = found[0]
    # axvline holds its x in data units twice; axhline its y.
    values = line.get_xdata() if vertical else line.get_ydata()
    assert np.allclose(values, level)
    low, high = sorted(axis.get_xlim() if vertical else axis.get_ylim())
    assert low <= level <= high, f"{name}: chance {level} outside {low, high}"
    assert low >= 0.0  # accuracy axes never start below zero


def test_codesign_bars_start_at_zero_with_both_chance_levels(figures: dict[str, Figure]) -> None:
    figure = figures["codesign"]
    assert [round(float(line.get_ydata()[0]), 4) for _, line in _chance_lines(figure)] == [6.25, 0.1]
    assert all(axis.get_ylim()[0] == 0.0 for axis in figure.axes)


def test_no_chance_line_without_a_class_count() -> None:
    figure = roadmap_figure(_table(), "caption")
    assert not _chance_lines(figure)


@pytest.mark.parametrize(
    "text, width, lines",
    [
        ("leave_one_out", 12, ["leave_one_out"]),
        ("inverted bottleneck", 12, ["inverted", "bottleneck"]),
        ("training techniques", 12, ["training", "techniques"]),
        ("macro design", 12, ["macro design"]),
        ("a leave_one_out b", 6, ["a", "leave_one_out", "b"]),
        ("move up depthwise conv", 28, ["move up depthwise conv"]),
    ],
)
def test_wrap_words_cuts_at_spaces_only(text: str, width: int, lines: list[str]) -> None:
    assert wrap_words(text, width) == lines


@pytest.mark.parametrize("width", [1, 4, 8, 12, 20])
def test_wrapped_lines_are_the_words_in_order(width: int) -> None:
    text = "ResNet-50 (PyTorch) leave_one_out k3_par1_16 separate d.s. conv -> GELU"
    lines = wrap_words(text, width)
    assert " ".join(lines).split() == text.split()  # nothing cut, lost or reordered
    assert all(line.split()[-1] in text.split() for line in lines)  # each line ends on a whole word
    assert all(len(line) <= width or " " not in line for line in lines)  # over width: one long word only


def test_row_labels_put_what_was_trained_on_its_own_line(figures: dict[str, Figure]) -> None:
    assert row_labels(["ResNet-50 (PyTorch) proxy, 4 ep, 32 px", "stage ratio"]) == [
        "ResNet-50 (PyTorch)\nproxy, 4 ep, 32 px",
        "stage ratio",
    ]
    ticks = [tick.get_text() for tick in figures["roadmap"].axes[1].get_yticklabels()]
    assert ticks[0] == "resnet50\nproxy, 4 ep, 32 px"
    group_texts = [text.get_text() for text in figures["roadmap"].axes[0].texts]
    assert not any(line.endswith(("_", "-")) for text in group_texts for line in text.split("\n"))


PLAN = {
    "preset": "cpu",
    "resolution": "32 px",
    "rows": [
        {"step": "resnet50", "epochs": 4, "pretrain_epochs": 0},
        {"step": "recipe", "epochs": 12},
        {"step": "v1_fcmae", "epochs": 12, "pretrain_epochs": 8},
    ],
}


def test_proxy_rows_say_what_was_trained() -> None:
    steps = ["resnet50", "recipe", "v1_fcmae"]
    labels = ["ResNet-50 (PyTorch, 90 ep)", "enhanced recipe", "V1 + FCMAE"]
    assert trained_labels(steps, labels, PLAN) == [
        "ResNet-50 (PyTorch) proxy, 4 ep, 32 px",
        "enhanced recipe proxy, 12 ep, 32 px",
        "V1 + FCMAE proxy, 8 ep pre-training + 12 ep, 32 px",
    ]
    fast = {**PLAN, "preset": "fast", "resolution": "160->192 px, tested at 224"}
    assert trained_labels(steps[:1], labels[:1], fast) == ["ResNet-50 (PyTorch) proxy, 4 ep, 160->192 px"]
    # The paper preset trains the paper's rows: their labels are what was trained.
    assert trained_labels(steps, labels, {**PLAN, "preset": "paper"}) == labels
    assert (
        trained_label("ConvNeXt-B (V1) supervised 300 ep", 12, "32 px")
        == "ConvNeXt-B (V1) supervised proxy, 12 ep, 32 px"
    )
    assert trained_label("stage ratio") == "stage ratio proxy"  # a hand-made plan without epochs or size
    assert trained_label("ConvNeXt-T (300 ep)", 12, "32 px") == "ConvNeXt-T proxy, 12 ep, 32 px"  # no "()" left


def test_display_table_keeps_the_paper_label_beside_the_row() -> None:
    table = _table().assign(
        paper_label=["ResNet-50 (PyTorch)", "ResNet-50 (enhanced recipe)", None, None, None, None],
        paper_top1_std=math.nan,
        paper_change=math.nan,
        params=25e6,
        cost_train_images_per_s=math.nan,
        cost_infer_images_per_s=math.nan,
        cost_peak_memory_mb=math.nan,
        wall_time_s=1.0,
        compared_with=None,
    )
    display = display_table(table)
    assert list(display.row[:1]) == ["resnet50 proxy, 4 ep, 32 px"]
    assert list(display["paper row"][:3]) == ["ResNet-50 (PyTorch)", "ResNet-50 (enhanced recipe)", "-"]


def test_synthetic_pixels_are_rendered_in_memory() -> None:
    from roadmap.data.datasets import load_datasets
    from roadmap.data.shrink import describe

    pair = load_datasets(
        DataSource(), {"synthetic_train": 4, "synthetic_val": 2, "synthetic_classes": 2, "synthetic_size": 8}
    )
    assert pair.pixels == "synthetic images rendered in memory"
    assert describe(None) == "original files"  # folders keep theirs


@pytest.mark.slow
def test_tiny_run_report_is_labelled_as_trained(tiny_run, tmp_path) -> None:
    """The shared tiny run (conftest: resnet50 -> stage_ratio, tiny preset, 8 synthetic classes)."""
    from roadmap.report.run_table import aggregate
    from roadmap.report.write import report
    from roadmap.runs.seeds import collect, load_run, training_curves

    run_dir = tiny_run.copy_to(tmp_path, keep_report=False)
    info = load_run(run_dir)
    assert info["pixels"] == "synthetic images rendered in memory"
    table = aggregate(collect(run_dir), info)
    epochs = {row["step"]: row["epochs"] for row in info["rows"]}
    assert list(table.label) == [
        f"ResNet-50 (PyTorch) proxy, {epochs['resnet50']} ep, 32 px",
        f"enhanced recipe proxy, {epochs['recipe']} ep, 32 px",
        f"stage ratio proxy, {epochs['stage_ratio']} ep, 32 px",
    ]
    assert table.paper_label.iloc[0] == "ResNet-50 (PyTorch)"  # the paper's name stays beside it
    markdown = report(run_dir)["table_md"].read_text()
    assert "90 ep" not in markdown and "pixels synthetic images rendered in memory" in markdown
    caption = "caption " * 60
    for figure in (
        roadmap_figure(table, caption, paper_values=table.paper_top1, classes=info["num_classes"]),
        curves_figure(training_curves(run_dir), caption, classes=info["num_classes"]),
    ):
        figure.draw_without_rendering()
        (_, line), *_ = _chance_lines(figure)
        assert info["num_classes"] == 8 and np.isclose(line.get_xydata(), 12.5).sum() == 2  # chance = 100 / 8
        renderer = figure.canvas.get_renderer()
        assert not any(legend.get_window_extent(renderer).overlaps(_caption_box(figure)) for legend in _legends(figure))
