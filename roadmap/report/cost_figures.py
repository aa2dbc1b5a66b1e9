"""The cost study's report: rows x settings, the paper's speed ratios beside ours, GFLOPs against speed.

Pure functions of the study's measurements (one record per row x setting, `roadmap.report.cost_study`):
nothing here measures. The paper's figures (InceptionNeXt Tables 1 and 4, papers.md 6.2 and 6.4)
ship with the package as roadmap/network/paper_tables/inceptionnext_speed.csv.

A ratio's *claim* is the direction of the paper's A100 figure: "faster" (ratio above
1 + SIMILAR_WITHIN), "slower" (below 1 - SIMILAR_WITHIN) or "similar" (within that band). A claim
*holds* in a setting when the measured ratio is above 1 (faster), below 1 (slower), or within the
band (similar).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
from matplotlib.figure import Figure

from roadmap.network.paper_values import REFERENCE_DIR
from roadmap.report.plots.style import GRID_COLOUR, SMALL_FONT_SIZE, apply_style, group_colours, new_figure

PAPER_SPEED_FILE = REFERENCE_DIR / "inceptionnext_speed.csv"
# The paper's cards: A100 with TF32 (PyTorch 1.13, CUDA 11.7), RTX 2080Ti in FP32 (PyTorch 1.8.1).
CARDS = ("A100", "2080Ti")
SIMILAR_WITHIN = 0.05
METRICS = ("train", "infer")


@dataclass(frozen=True)
class Ratio:
    """Throughput of one roadmap row over another's, as InceptionNeXt compares them."""

    name: str
    numerator: str
    denominator: str
    source: str


RATIOS = (
    Ratio("ConvNeXt-T / ResNet-50", "sep_ds", "resnet50", "Table 4"),
    Ratio("InceptionNeXt-T / ConvNeXt-T", "inception", "sep_ds", "Table 4"),
    Ratio("dw 5x5 / dw 7x7 (ConvNeXt-T)", "k5", "sep_ds", "Table 1"),
    Ratio("dw 3x3 / dw 7x7 (ConvNeXt-T)", "k3", "sep_ds", "Table 1"),
    *(
        Ratio(f"3x3 on {fraction} / on all channels", f"k3_par{fraction.replace('/', '_')}", "k3", "Table 1")
        for fraction in ("1/2", "3/8", "1/4", "1/8", "1/16")
    ),
)


@functools.lru_cache(maxsize=1)
def paper_speed() -> pd.DataFrame:
    """Images/s of the paper's rows: row, paper_label, source, card, train_images_per_s, infer_images_per_s."""
    return pd.read_csv(PAPER_SPEED_FILE)


def claim(paper_ratio: float) -> str:
    if paper_ratio > 1 + SIMILAR_WITHIN:
        return "faster"
    if paper_ratio < 1 - SIMILAR_WITHIN:
        return "slower"
    return "similar"


def holds(claimed: str, measured: float) -> bool:
    if claimed == "faster":
        return measured > 1
    if claimed == "slower":
        return measured < 1
    return abs(measured - 1) <= SIMILAR_WITHIN


def _paper_ratio(paper: pd.DataFrame, ratio: Ratio, card: str, metric: str) -> float:
    values = paper[paper.card == card].set_index("row")[f"{metric}_images_per_s"]
    if ratio.numerator not in values or ratio.denominator not in values:
        return math.nan
    return float(values[ratio.numerator] / values[ratio.denominator])


def ratio_table(measured: pd.DataFrame, paper: pd.DataFrame | None = None) -> pd.DataFrame:
    """One record per (ratio, metric, setting) whose two rows were measured in that setting.

    `measured` has columns row, setting, train_images_per_s, infer_images_per_s (NaN: not measured).
    Columns: ratio, source, numerator, denominator, metric, setting, measured, paper_A100,
    paper_2080Ti, claim, holds.
    """
    paper = paper_speed() if paper is None else paper
    records = []
    settings = list(dict.fromkeys(measured.setting))
    for ratio in RATIOS:
        for metric in METRICS:
            papers = {card: _paper_ratio(paper, ratio, card, metric) for card in CARDS}
            claimed = claim(papers["A100"])
            for setting in settings:
                rates = measured[measured.setting == setting].set_index("row")[f"{metric}_images_per_s"]
                if ratio.numerator not in rates or ratio.denominator not in rates:
                    continue
                value = float(rates[ratio.numerator] / rates[ratio.denominator])
                if math.isnan(value):
                    continue
                records.append(
                    {
                        "ratio": ratio.name,
                        "source": ratio.source,
                        "numerator": ratio.numerator,
                        "denominator": ratio.denominator,
                        "metric": metric,
                        "setting": setting,
                        "measured": value,
                        **{f"paper_{card}": papers[card] for card in CARDS},
                        "claim": claimed,
                        "holds": holds(claimed, value),
                    }
                )
    columns = [
        "ratio",
        "source",
        "numerator",
        "denominator",
        "metric",
        "setting",
        "measured",
        *(f"paper_{card}" for card in CARDS),
        "claim",
        "holds",
    ]
    return pd.DataFrame.from_records(records, columns=columns)


def _number(value: float, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def ratio_markdown(table: pd.DataFrame, conditions: str = "") -> str:
    """The ratio table as markdown: one line per ratio and metric, the paper's cards, then each setting
    as `measured (holds | fails)`."""
    if table.empty:
        return "No ratio of InceptionNeXt's Tables 1 and 4 has both its rows measured.\n"
    settings = list(dict.fromkeys(table.setting))
    header = ["ratio", "metric", "paper", *(f"paper {card}" for card in CARDS), "claim", *settings]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (name, metric), group in table.groupby(["ratio", "metric"], sort=False):
        first = group.iloc[0]
        cells = [name, metric, first.source, *(_number(first[f"paper_{card}"]) for card in CARDS), first.claim]
        by_setting = group.set_index("setting")
        for setting in settings:
            if setting in by_setting.index:
                row = by_setting.loc[setting]
                cells.append(f"{row.measured:.2f} ({'holds' if row.holds else 'fails'})")
            else:
                cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
    legend = (
        f"A ratio is images/s of the first row over the second. Claim: the direction of the paper's A100 "
        f"figure (faster > {1 + SIMILAR_WITHIN:.2f} > similar > {1 - SIMILAR_WITHIN:.2f} > slower); "
        "a setting holds the claim when its ratio lies on the same side of 1 (or within the band). "
        "Paper: InceptionNeXt (arXiv 2303.16900) Table 1 (A100 only) and Table 4; A100 TF32, "
        "RTX 2080Ti FP32, batch 128, the better of NCHW and channels-last, SGD train step."
    )
    text = "\n".join(lines) + "\n\n" + legend + "\n"
    return (conditions.strip() + "\n\n" + text) if conditions else text


def cost_table(measured: pd.DataFrame) -> pd.DataFrame:
    """Rows x settings: GFLOPs and params, then train and inference images/s of each setting."""
    settings = list(dict.fromkeys(measured.setting))
    first = measured.drop_duplicates("row").set_index("row")
    table = first[["label", "gflops", "params_m"]].copy()
    for setting in settings:
        rates = measured[measured.setting == setting].set_index("row")
        table[f"{setting} train img/s"] = rates.train_images_per_s.reindex(table.index).round(1)
        table[f"{setting} infer img/s"] = rates.infer_images_per_s.reindex(table.index).round(1)
    return table.reset_index()


def speed_figure(measured: pd.DataFrame, caption: str = "") -> Figure:
    """GFLOPs against measured train images/s: one marker series per setting, the rows labelled."""
    figure = new_figure(height=3.8)
    axis = figure.subplots()
    settings = list(dict.fromkeys(measured.setting))
    colours = group_colours(settings)
    markers = "osD^vP*X"
    points = measured[measured.train_images_per_s.notna()]
    for index, setting in enumerate(settings):
        series = points[points.setting == setting]
        axis.scatter(
            series.gflops,
            series.train_images_per_s,
            color=colours[setting],
            marker=markers[index % 8],
            s=24,
            label=setting,
            zorder=3,
        )
    for row, x, y in zip(points.row, points.gflops, points.train_images_per_s):
        if y == points.train_images_per_s[points.row == row].max():  # each row once, at its fastest point
            axis.annotate(
                row, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=SMALL_FONT_SIZE - 1, color="#333333"
            )
    rates = points.train_images_per_s
    if len(rates) and rates.min() > 0 and rates.max() / rates.min() > 10:
        axis.set_yscale("log")
    axis.set_xlabel("GFLOPs (full-size network at the measured resolution, conv + linear multiply-adds)")
    axis.set_ylabel("train images / s (measured)")
    axis.grid(color=GRID_COLOUR, linewidth=0.6)
    if settings:
        axis.legend(loc="best", title="setting")
    return apply_style(figure, caption)
