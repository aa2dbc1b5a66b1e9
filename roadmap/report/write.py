"""Read a run's results from disk into tables, and write its report.

The only input is the on-disk format of docs/results-format.md (run.json plus one folder per
step and seed); nothing here imports training code, so a report works on a copied or partial run.
The work is split by stage: roadmap.runs.seeds reads the plan and each step x seed's state,
roadmap.report.run_table aggregates them into the run's table (and holds the row-comparison rule), and
this module writes the report. Their public names stay importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from roadmap.files.layout import AGREEMENT_FILE, RunPaths, available_runs, read_json_object  # noqa: F401
from roadmap.network.roadmaps import PAPER_MODE
from roadmap.report.agreement import agreement, paper_reference, summary_text, write_agreement
from roadmap.report.captions import figure_caption, table_caption
from roadmap.report.codesign import write_codesign
from roadmap.report.plots.figures import write_figures
from roadmap.report.run_table import TABLE_COLUMNS, add_noise_columns, aggregate, comparison_rows, status_text  # noqa: F401
from roadmap.report.tables import write_tables
from roadmap.runs.seeds import collect, load_run, training_curves
from roadmap.train.presets import PRESETS

# The dataset the paper's values are measured on: a --dataset folder run with as many classes.
IMAGENET_CLASSES = 1000


def paper_scale(run_info: Mapping[str, Any]) -> bool:
    """Whether the run's top-1 is on the paper's scale, so that the figures draw both on one axis:
    full-size networks (a preset that divides neither widths nor depths: paper, fast) trained on a
    folder dataset of ImageNet-1K's 1000 classes. Proxies and class subsets get axes of their own."""
    preset = PRESETS.get(str(run_info.get("preset")))
    full_size = preset is not None and preset.width_divisor == 1 and preset.depth_divisor == 1
    return full_size and run_info.get("dataset") == "folder" and run_info.get("num_classes") == IMAGENET_CLASSES


def _paper_agreement(run_info: Mapping[str, Any], table: pd.DataFrame) -> dict[str, Any] | None:
    """Agreement with the paper's table: cumulative mode of a roadmap that has one, else None."""
    if run_info.get("mode", PAPER_MODE) != PAPER_MODE or not table.paper_top1.notna().any():
        return None
    reference = paper_reference(table, str(run_info.get("roadmap", "")))
    return agreement(table, reference, str(run_info.get("run", "")))


def report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write table.csv/.md/.tex, agreement.json (when the paper has a table for the run) and every
    figure (PNG + PDF) into run_dir/report/; works on partial runs. summary() says what it found."""
    run_dir = Path(run_dir)
    run_info = load_run(run_dir)  # the plan, read once
    frame = collect(run_dir, run_info)
    table = aggregate(frame, run_info)
    out_dir = Path(out_dir) if out_dir is not None else RunPaths(run_dir).report
    found = _paper_agreement(run_info, table)
    notes = summary_text(found) if found is not None else ""
    paths = write_tables(table, out_dir, table_caption(run_info, table, frame), notes=notes)
    paths.update(write_codesign(table, out_dir, figure_caption(run_info)))
    agreement_path = out_dir / AGREEMENT_FILE
    if found is not None:
        paths["agreement_json"] = write_agreement(found, agreement_path)
    else:
        agreement_path.unlink(missing_ok=True)  # from an earlier report of a plan that had a paper table
    paths.update(
        write_figures(
            table,
            training_curves(run_dir, run_info),
            out_dir,
            caption=figure_caption(run_info),
            title=f"{run_info.get('roadmap', '')} roadmap, run {run_info.get('run', run_dir.name)}",
            same_scale=paper_scale(run_info),
            agreement=found,
            classes=run_info.get("num_classes"),  # chance lines
        )
    )
    return paths


def summary(run_dir: str | Path, out_dir: str | Path | None = None) -> str:
    """The agreement summary of the run's last report (agreement.json), '' when there is none:
    what the report command and the end of a training run print under the table."""
    out_dir = Path(out_dir) if out_dir is not None else RunPaths(run_dir).report
    found = read_json_object(out_dir / AGREEMENT_FILE)
    return summary_text(found) if found else ""
