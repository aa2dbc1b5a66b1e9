"""The paper's own Figure 2, drawn from its tables (roadmap/network/paper_tables) by the same code as a run's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from roadmap.network.complexity import CONVENTION
from roadmap.network.paper_values import REFERENCE_TABLES, paper_table
from roadmap.report.plots.roadmap import roadmap_figure
from roadmap.report.plots.style import save_figure
from steps import REGISTRY

# Which paper table and regime each roadmap's reference figure shows.
REFERENCE_TITLES = {
    "resnet50": "Paper Table 10: ResNet-50 -> ConvNeXt-T (ResNet-50 / Swin-T regime)",
    "resnet200": "Paper Table 11: ResNet-200 -> ConvNeXt-B (ResNet-200 / Swin-B regime)",
}
REFERENCE_SEEDS = {"resnet50": "mean +- std over 3 seeds", "resnet200": "single runs"}
IMAGENET_CLASSES = 1000  # the paper's tables are ImageNet-1K


def reference_rows(roadmap: str) -> pd.DataFrame:
    """The paper's table for `roadmap` in the columns roadmap_figure reads."""
    paper = paper_table(roadmap)
    if paper.empty:
        raise ValueError(f"no paper table for roadmap {roadmap!r}; choose one of: {', '.join(REFERENCE_TABLES)}")
    rows = paper.reset_index().rename(
        columns={
            "paper_label": "label",
            "paper_top1": "top1_mean",
            "paper_top1_std": "top1_std",
            "paper_gflops": "gflops",
        }
    )
    rows["branch_of"] = [REGISTRY[step].branch_of if step in REGISTRY else None for step in rows.step]
    rows["status"] = "done"
    return rows


def reference_figure(roadmap: str, out_path: str | Path | None = None) -> Figure:
    """Figure 2 drawn from the paper's own values (Table 10 for resnet50, Table 11 for resnet200).

    Saves to `out_path` when given: its suffix picks the format; without one, PNG and PDF are written.
    Returns the Figure (a notebook cell displays it).
    """
    rows = reference_rows(roadmap)
    caption = (
        f"{REFERENCE_TITLES.get(roadmap, roadmap)}; ImageNet-1K top-1 (%), {REFERENCE_SEEDS.get(roadmap, '')}. "
        f"GFLOPs as printed in the paper (its convention, reproduced here as: {CONVENTION}). "
        "Hatched: variants tried but not adopted. Bars start at zero (the paper's figure starts near "
        "the lowest bar); the numbers on the bars carry the differences."
    )
    figure = roadmap_figure(
        rows,
        caption,
        title=REFERENCE_TITLES.get(roadmap, roadmap),
        value_label="ImageNet-1K top-1 (%)",
        classes=IMAGENET_CLASSES,
    )
    if out_path is not None:
        out_path = Path(out_path)
        if out_path.suffix:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(out_path, dpi=200, bbox_inches="tight", pad_inches=0.05)
        else:
            save_figure(figure, out_path)
    return figure
