"""The `--flops-only` table: each row's complexity (roadmap.network.complexity) beside the paper's label and GFLOPs."""

from __future__ import annotations

import math

import pandas as pd

from roadmap.network.complexity import complexity
from roadmap.network.families import row_label
from roadmap.network.paper_values import paper_table
from roadmap.spec import Spec


def complexity_table(rows: list[tuple[str, Spec]], roadmap: str, resolution: int = 224) -> pd.DataFrame:
    """One row per (step, spec): our counts beside the paper's label and GFLOPs."""
    paper = paper_table(roadmap)
    records = []
    for name, spec in rows:
        counts = complexity(spec, resolution)
        known = name in paper.index and resolution == 224
        records.append(
            {
                "step": name,
                "label": paper.at[name, "paper_label"] if name in paper.index else row_label(name),
                "gflops": round(counts.gflops, 3),
                "paper_gflops": paper.at[name, "paper_gflops"] if known else math.nan,
                "params_m": round(counts.params / 1e6, 3),
                "gflops_fvcore_total": round(counts.gflops_fvcore_total, 3),
                "activations_m": round(counts.activations_m, 2),
                "note": paper.at[name, "note"] if known and isinstance(paper.at[name, "note"], str) else "",
            }
        )
    return pd.DataFrame.from_records(records)
