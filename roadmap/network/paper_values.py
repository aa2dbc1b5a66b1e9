"""The papers' own values of a roadmap's rows (Tables 10 and 11, the ConvNeXt V2 co-design, the
InceptionNeXt speeds), shipped with the package as CSV files in roadmap/network/paper_tables/; which table
belongs to which roadmap is part of the roadmap's record (roadmap.network.roadmaps.Roadmap)."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from roadmap.network.roadmaps import ROADMAPS, get_roadmap

# Package data (setup.cfg): found next to this module wherever the package is installed.
REFERENCE_DIR = Path(__file__).resolve().parent / "paper_tables"

# Roadmap -> its paper table's file, for the roadmaps that have one.
REFERENCE_TABLES = {name: roadmap.paper_table for name, roadmap in ROADMAPS.items() if roadmap.paper_table}
COLUMNS = ["paper_label", "group", "paper_top1", "paper_top1_std", "paper_gflops", "note"]


def paper_name(roadmap: str) -> str:
    """How captions name the paper's table of `roadmap` (e.g. 'paper Table 10'); 'paper' otherwise."""
    known = ROADMAPS.get(roadmap.strip().replace("-", "_"))
    return known.paper_name if known is not None else "paper"


def reference_note(roadmap: str) -> str | None:
    """What the paper columns of `roadmap` are, where they are not the run's own network."""
    return get_roadmap(roadmap).paper_note


@functools.lru_cache(maxsize=8)
def _read(filename: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / filename, keep_default_na=True)


def paper_table(roadmap: str) -> pd.DataFrame:
    """Step, paper label, stage group, top-1 (mean, std), GFLOPs and a note, indexed by step; empty
    (same columns) for a roadmap without a paper table or a name that is no roadmap."""
    filename = REFERENCE_TABLES.get(roadmap.strip().replace("-", "_"))
    if filename is None:
        return pd.DataFrame(columns=COLUMNS).rename_axis("step")
    return _read(filename).set_index("step")[COLUMNS].copy()
