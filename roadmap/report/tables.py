"""The run table on disk: full-precision CSV, and Markdown / LaTeX rendered by pandas."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

EMPTY = "-"
# LaTeX specials in free text (the caption); table cells are escaped by pandas' Styler.
_LATEX_SPECIALS = str.maketrans(
    {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _number(value: Any, digits: int, signed: bool = False) -> str:
    if _missing(value):
        return EMPTY
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _accuracy(mean: Any, std: Any) -> str:
    if _missing(mean):
        return EMPTY
    return f"{mean:.2f}" if _missing(std) else f"{mean:.2f} ± {std:.2f}"


def _change(value: Any, low: Any, high: Any) -> str:
    """'+1.50 [-0.30, +3.30]' with a 95% interval, '+1.50' without one."""
    if _missing(value):
        return EMPTY
    if _missing(low) or _missing(high):
        return f"{value:+.2f}"
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


# A proxy row's label is "<the paper's row name> proxy, <what was trained>"; figures break the
# line at this mark.
PROXY_MARK = " proxy, "
# The only preset that trains the paper's rows as the paper did (networks, epochs, 224 px).
PAPER_PRESET = "paper"
# A training length inside a paper label ("ResNet-50 (PyTorch, 90 ep)"): the paper's, not a proxy's.
_PAPER_LENGTH = re.compile(r",?\s*\b\d+[ -]?(?:ep|epochs?)\b")


def _trained_size(resolution: Any) -> str:
    """'32 px' from run.json's resolution ('32 px', '160->192 px, tested at 224', or 32 in older runs)."""
    if isinstance(resolution, int) or str(resolution).isdigit():
        return f"{resolution} px"
    return str(resolution).split(",")[0].strip() if _is_text(resolution) else ""


def trained_label(label: str, epochs: Any = None, size: str = "", pretrain_epochs: Any = None) -> str:
    """A proxy row's label: the row's name without the paper's training length, then what was
    trained, e.g. 'ResNet-50 (PyTorch) proxy, 4 ep, 32 px' for 'ResNet-50 (PyTorch, 90 ep)'."""
    # "ConvNeXt-T (300 ep)" would leave "ConvNeXt-T ()": brackets emptied by the removal go too.
    name = re.sub(r"\s*\(\s*\)", "", _PAPER_LENGTH.sub("", label)).strip()
    trained = f"{epochs} ep" if not _missing(epochs) else ""
    if not _missing(pretrain_epochs) and pretrain_epochs:
        trained = f"{pretrain_epochs} ep pre-training + {trained or 'fine-tuning'}"
    return name + PROXY_MARK.rstrip(", ") + "".join(f", {part}" for part in (trained, size) if part)


def trained_labels(steps: Sequence[str], labels: Sequence[Any], run_info: Mapping[str, Any]) -> list[Any]:
    """Each row's label as printed: the plan's label on the paper preset (or a plan without a
    preset), else trained_label with the row's epochs (run.json rows) and the run's resolution,
    so that a 4-epoch 32 px proxy is never shown as "ResNet-50 (PyTorch, 90 ep)"."""
    preset = run_info.get("preset")
    if not _is_text(preset) or preset == PAPER_PRESET:
        return list(labels)
    rows = {row.get("step"): row for row in run_info.get("rows", []) if isinstance(row, Mapping)}
    size = _trained_size(run_info.get("resolution"))
    return [
        label
        if _missing(label)
        else trained_label(
            str(label), rows.get(step, {}).get("epochs"), size, rows.get(step, {}).get("pretrain_epochs")
        )
        for step, label in zip(steps, labels)
    ]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable columns (strings, '-' when empty); paper columns only when any value exists."""
    display = pd.DataFrame(
        {
            "step": table.step,
            "row": [label if not _missing(label) else step for label, step in zip(table.label, table.step)],
            "group": table.group,
            "branch of": [EMPTY if _missing(parent) else parent for parent in table.branch_of],
            "top-1 (%)": [_accuracy(mean, std) for mean, std in zip(table.top1_mean, table.top1_std)],
            "weights": [EMPTY if _missing(value) else value for value in table.get("weights", [None] * len(table))],
            "other weights' top-1 (%)": [
                _number(value, 2) for value in table.get("top1_other_mean", [math.nan] * len(table))
            ],
            "change [95% CI]": [
                _change(value, low, high)
                for value, low, high in zip(table.change, table.change_ci_low, table.change_ci_high)
            ],
            "verdict": [EMPTY if _missing(value) else value for value in table.verdict],
            "pre-training loss": [_number(value, 4) for value in table.get("pretrain_loss", [math.nan] * len(table))],
            "GFLOPs": [_number(value, 2) for value in table.gflops],
            "params (M)": [_number(value / 1e6 if not _missing(value) else value, 1) for value in table.params],
            "paper row": [
                EMPTY if _missing(label) else label for label in table.get("paper_label", [None] * len(table))
            ],
            "paper top-1 (%)": [_accuracy(mean, std) for mean, std in zip(table.paper_top1, table.paper_top1_std)],
            "paper change": [_number(value, 2, signed=True) for value in table.paper_change],
            "paper GFLOPs": [_number(value, 2) for value in table.paper_gflops],
            "proxy MFLOPs": [_number(value if _missing(value) else value * 1000, 2) for value in table.proxy_gflops],
            "proxy train img/s": [_number(value, 0) for value in table.train_images_per_s],
            "proxy infer img/s": [_number(value, 0) for value in table.infer_images_per_s],
            "full train img/s": [_number(value, 1) for value in table.cost_train_images_per_s],
            "full infer img/s": [_number(value, 1) for value in table.cost_infer_images_per_s],
            "full peak MB": [_number(value, 0) for value in table.cost_peak_memory_mb],
            "wall time (s)": [_number(value, 1) for value in table.wall_time_s],
            "status": table.status,
        }
    )
    if not table.paper_top1.notna().any() and not table.paper_gflops.notna().any():
        display = display.drop(columns=["paper row", "paper top-1 (%)", "paper change", "paper GFLOPs"])
    if not table.cost_train_images_per_s.notna().any():
        display = display.drop(columns=["full train img/s", "full infer img/s", "full peak MB"])
    if display["pre-training loss"].eq(EMPTY).all():
        display = display.drop(columns=["pre-training loss"])  # no FCMAE row
    if table.verdict.isna().all():
        display = display.drop(columns=["verdict"])  # one seed: the caption says what would resolve it
    if table.branch_of.isna().all():
        display = display.drop(columns=["branch of"])
    if display["other weights' top-1 (%)"].eq(EMPTY).all():
        # No row evaluated an EMA: every top-1 is the raw model's (the caption says so).
        display = display.drop(columns=["weights", "other weights' top-1 (%)"])
    return display.reset_index(drop=True)


def latex_escape(text: str) -> str:
    return text.translate(_LATEX_SPECIALS)


def write_tables(table: pd.DataFrame, out_dir: str | Path, caption: str, notes: str = "") -> dict[str, Path]:
    """Write table.csv (every column, full precision), table.md and table.tex (display columns, captioned).
    `notes` (e.g. the agreement summary) go under the Markdown table's caption."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"table_csv": out_dir / "table.csv", "table_md": out_dir / "table.md", "table_tex": out_dir / "table.tex"}
    table.to_csv(paths["table_csv"], index=False)
    display = display_table(table)
    # Numeric parsing off: tabulate would otherwise re-format the already rounded strings.
    markdown = display.to_markdown(index=False, disable_numparse=True)
    paths["table_md"].write_text(f"{markdown}\n\n{caption}\n" + (f"\n```\n{notes}\n```\n" if notes else ""))
    styler = display.style.hide(axis="index").format(escape="latex").format_index(escape="latex", axis=1)
    latex = styler.to_latex(caption=latex_escape(caption), label="tab:roadmap", hrules=True, position_float="centering")
    paths["table_tex"].write_text(latex)
    return paths
