"""Does a run agree with a reference (the paper's table, or another run of the same roadmap)?

Three measures, on the run table of roadmap.report.write:
- sign agreement: per step, whether the change has the reference's sign, counting only steps whose
  reference change exceeds the reference's own seed std (smaller ones are noise in the reference;
  a reference that gives no std has no such threshold, and every nonzero change counts);
- Kendall's tau-b between the run's and the reference's top-1 over the main-path rows;
- flipped pairs: rows adjacent in the reference's ranking that the run puts in the other order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from roadmap.network.paper_values import paper_name, paper_table
from roadmap.report.intervals import LEVEL, WITHIN_NOISE, flipped_pairs, kendall_tau


@dataclasses.dataclass
class Reference:
    """Per step (index): top1, std and change of the reference; `fallback_std` stands in for a
    row without a std (the mean std of the same table), None when the table gives no std at all;
    `noise_rule` says in words what counts as the reference's noise."""

    name: str
    values: pd.DataFrame
    fallback_std: float | None
    noise_rule: str


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def noise_rule(values: pd.DataFrame, stds: pd.Series, name: str, without: str) -> tuple[float | None, str]:
    """The std for rows of `values` (a reference) that lack one, and the counting rule in words.

    Only the reference's own stds (`stds`: every row of its table) are its noise: another table's
    would measure another experiment. A table with none gives no threshold, so every nonzero
    change counts, and the rule says so (`without`: why there is none).
    """
    stds = pd.to_numeric(stds, errors="coerce").dropna()
    if stds.empty:
        return None, f"{name} gives no seed std ({without}): every nonzero change counts"
    rule = f"|change in {name}| > its seed std for the row"
    changed = values[np.isfinite(values["change"].to_numpy(float))]
    fallback = float(stds.mean())
    if changed["std"].isna().any():
        rule += f" (rows without one: the mean std of {name}, {fallback:.2f} points)"
    return fallback, rule


def paper_reference(table: pd.DataFrame, roadmap: str) -> Reference:
    """The paper's values already merged into the run table (same comparison rule as the run's)."""
    values = pd.DataFrame(
        {
            "top1": table.paper_top1.to_numpy(float),
            "std": table.paper_top1_std.to_numpy(float),
            "change": table.paper_change.to_numpy(float),
        },
        index=table.step,
    )
    name = paper_name(roadmap)
    fallback, rule = noise_rule(values, paper_table(roadmap).paper_top1_std, name, "the paper reports none")
    return Reference(name, values, fallback, rule)


def run_reference(table: pd.DataFrame, name: str) -> Reference:
    """Another run's table as the reference (e.g. a full run against which a proxy is checked)."""
    values = pd.DataFrame(
        {
            "top1": table.top1_mean.to_numpy(float),
            "std": table.top1_std.to_numpy(float),
            "change": table.change.to_numpy(float),
        },
        index=table.step,
    )
    fallback, rule = noise_rule(values, values["std"], f"run {name}", "fewer than 2 done seeds per row")
    return Reference(f"run {name}", values, fallback, rule)


def _lookup(reference: Reference, step: str, column: str) -> float:
    if step not in reference.values.index:
        return math.nan
    value = reference.values.at[step, column]
    return float(value) if _finite(value) else math.nan


def step_records(table: pd.DataFrame, reference: Reference) -> list[dict[str, Any]]:
    """One record per row that has a change: the run's change and interval, the reference's change
    and std, whether the step counts for the sign agreement and whether the signs agree."""
    records = []
    for row in table.itertuples(index=False):
        if not isinstance(row.compared_with, str):
            continue
        reference_change = _lookup(reference, row.step, "change")
        reference_std = _lookup(reference, row.step, "std")
        threshold = reference_std if math.isfinite(reference_std) else reference.fallback_std
        # Without any std in the reference, a change counts when it is not zero (the stated rule).
        exceeds = math.isfinite(reference_change) and abs(reference_change) > (threshold or 0.0)
        compared = _finite(row.change) and exceeds
        records.append(
            {
                "step": row.step,
                "compared_with": row.compared_with,
                "branch_of": row.branch_of if isinstance(row.branch_of, str) else None,
                "change": float(row.change) if _finite(row.change) else None,
                "change_ci_low": float(row.change_ci_low) if _finite(row.change_ci_low) else None,
                "change_ci_high": float(row.change_ci_high) if _finite(row.change_ci_high) else None,
                "verdict": row.verdict if isinstance(row.verdict, str) else None,
                "seeds_done": int(row.seeds_done),
                "reference_change": reference_change if math.isfinite(reference_change) else None,
                "reference_std": threshold,  # None: the reference gives no std
                "compared": bool(compared),
                "agrees": bool(np.sign(row.change) == np.sign(reference_change)) if compared else None,
            }
        )
    return records


def agreement(table: pd.DataFrame, reference: Reference, run: str) -> dict[str, Any]:
    """The agreement of `table` (run `run`) with `reference`, as written to agreement.json."""
    records = step_records(table, reference)
    compared = [record for record in records if record["compared"]]
    agreeing = [record["step"] for record in compared if record["agrees"]]
    main = table[table.branch_of.isna() | (table.branch_of.astype(object) == "")]
    run_top1 = main.top1_mean.to_numpy(float)
    reference_top1 = np.array([_lookup(reference, step, "top1") for step in main.step])
    both = np.isfinite(run_top1) & np.isfinite(reference_top1)
    return {
        "run": run,
        "reference": reference.name,
        "level": LEVEL,
        "kendall_tau": kendall_tau(run_top1, reference_top1),
        "kendall_rows": int(both.sum()),
        "sign_agreement": len(agreeing) / len(compared) if compared else None,
        "steps_compared": [record["step"] for record in compared],
        "steps_agreeing": agreeing,
        "steps_disagreeing": [record["step"] for record in compared if not record["agrees"]],
        "flipped_pairs": flipped_pairs(list(main.step), run_top1, reference_top1),
        "within_noise": [record["step"] for record in records if record["verdict"] == WITHIN_NOISE],
        "without_verdict": [
            record["step"] for record in records if record["verdict"] is None and record["change"] is not None
        ],
        "noise_rule": reference.noise_rule,
        "steps": records,
    }


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_text(result: dict[str, Any]) -> str:
    """A few lines for a terminal or under the table."""
    compared = result["steps_compared"]
    sign = (
        f"{len(result['steps_agreeing'])}/{len(compared)} steps"
        + (f" (disagree: {', '.join(result['steps_disagreeing'])})" if result["steps_disagreeing"] else "")
        if compared
        else "no step (no reference change exceeds its noise, or no run change yet)"
    )
    flips = result["flipped_pairs"]
    lines = [
        f"Agreement of run {result['run']} with {result['reference']}:",
        f"  sign of the change agrees on {sign}; counted: {result['noise_rule']}.",
        f"  Kendall tau {_number(result['kendall_tau'])} over {result['kendall_rows']} main-path rows.",
        "  adjacent pairs in the reference's ranking whose order flips here (reference's higher row first): "
        + (", ".join(f"{flip['higher']}/{flip['lower']}" for flip in flips) if flips else "none")
        + ".",
    ]
    if result["within_noise"]:
        lines.append(f"  changes within noise (95% interval includes 0): {', '.join(result['within_noise'])}.")
    with_verdict = [record for record in result["steps"] if record["verdict"] is not None]
    if result["without_verdict"] and not with_verdict:
        lines.append(
            "  one done seed per row: no verdicts (the table caption gives the seeds per row that would "
            "resolve each change where a seed spread is known)."
        )
    elif result["without_verdict"]:
        lines.append(f"  no verdict with fewer than 2 done seeds: {', '.join(result['without_verdict'])}.")
    return "\n".join(lines)


def write_agreement(result: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
