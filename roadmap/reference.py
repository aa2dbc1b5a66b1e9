"""The paper's own values (Tables 10 and 11), shipped as CSV under results/reference/."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results" / "reference"

# Which paper table each roadmap reproduces; rows beyond the paper's have no reference values.
REFERENCE_TABLES = {
    "resnet50": "table10_resnet50.csv",
    "resnet200": "table11_resnet200.csv",
    # ConvNeXt V2 (papers.md 5.2): ConvNeXt-B values, beside the ConvNeXt-T the run trains by default.
    "convnext_v2_codesign": "codesign_convnext_v2.csv",
}

# What a roadmap's paper columns are, where they are not the run's own network.
REFERENCE_NOTES = {
    "convnext_v2_codesign": "paper columns are ConvNeXt-B (ConvNeXt V2 Table 3 and App. D; 800-epoch FCMAE "
                            "pre-training), beside the ConvNeXt-T this roadmap trains unless --model",
}


def reference_note(roadmap: str) -> str | None:
    return REFERENCE_NOTES.get(roadmap.strip().replace("-", "_"))


@functools.lru_cache(maxsize=8)
def _read(filename: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / filename, keep_default_na=True)


def paper_table(roadmap: str) -> pd.DataFrame:
    """Step, paper label, stage group, top-1 (mean, std), GFLOPs and a note, indexed by step."""
    columns = ["paper_label", "group", "paper_top1", "paper_top1_std", "paper_gflops", "note"]
    filename = REFERENCE_TABLES.get(roadmap)
    if filename is None:
        return pd.DataFrame(columns=columns).rename_axis("step")
    return _read(filename).set_index("step")[columns].copy()
