"""Agreement between two runs of the same roadmap (`run_roadmap.py report --run A --compare B`).

The measures and the figure are those of the paper agreement (roadmap.report.agreement), with run B's
table as the reference: a cheap proxy checked against a full run measures how far the proxy can
be trusted, instead of assuming it.
"""

from __future__ import annotations

from pathlib import Path

from roadmap.errors import UserError
from roadmap.files.layout import AGREEMENT_FILE, RunPaths
from roadmap.network.roadmaps import PAPER_MODE
from roadmap.report.agreement import agreement, run_reference, summary_text, write_agreement
from roadmap.report.captions import figure_caption
from roadmap.report.plots.agreement import changes_figure
from roadmap.report.plots.style import save_figure
from roadmap.report.run_table import aggregate
from roadmap.runs.seeds import collect, load_run


class CompareError(UserError, ValueError):
    """Two runs that cannot be compared row by row; the message is one line."""


def check_comparable(run_dir: Path, other_dir: Path) -> tuple[dict, dict]:
    """Both plans (run.json); RunNotFound or CompareError before anything is written."""
    info, other = load_run(run_dir), load_run(other_dir)
    for key, default in (("roadmap", ""), ("mode", PAPER_MODE)):
        if info.get(key, default) != other.get(key, default):
            raise CompareError(
                f"runs {run_dir.name} and {other_dir.name} are of different {key}s "
                f"({info.get(key, default)} vs {other.get(key, default)}); "
                f"compare two runs of the same roadmap and mode"
            )
    return info, other


def compare_runs(run_dir: str | Path, other_dir: str | Path) -> tuple[dict[str, Path], str]:
    """Write run_dir/report/vs-<other>/agreement.json and the changes figure; returns the paths
    and the summary text. RunNotFound when either run is absent, CompareError when they are runs
    of different roadmaps or modes (their rows would be different networks)."""
    run_dir, other_dir = Path(run_dir), Path(other_dir)
    info, other = check_comparable(run_dir, other_dir)
    table = aggregate(collect(run_dir, info), info)
    reference_table = aggregate(collect(other_dir, other), other)
    name = str(other.get("run", other_dir.name))
    result = agreement(table, run_reference(reference_table, name), str(info.get("run", run_dir.name)))
    out_dir = RunPaths(run_dir).comparison(other_dir.name)
    paths = {"agreement_json": write_agreement(result, out_dir / AGREEMENT_FILE)}
    caption = f"{figure_caption(info)} Reference: {figure_caption(other)}"
    figure = changes_figure(
        result["steps"],
        caption,
        result["reference"],
        title=f"{info.get('roadmap', '')} roadmap: run {result['run']} against run {name}",
    )
    paths.update({f"changes_{extension}": path for extension, path in save_figure(figure, out_dir / "changes").items()})
    return paths, summary_text(result)
