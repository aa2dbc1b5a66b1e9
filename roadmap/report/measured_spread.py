"""Seed spread measured once per (preset, dataset), shipped as package data in roadmap/report/noise/.

A one-seed run has no spread of its own, yet "how many seeds would resolve this change" needs one.
The paper's ImageNet std (about 0.1 point) is not the noise of a few-epoch CPU proxy, whose seed
stds are points, so the report plans with the spread measured on the same preset and dataset
(benchmarks/seed_spread.py writes it) and names it; without a measurement it says none is known.

File `<preset>-<dataset>.json`: `rows` maps each step to its `top1_std` (sample std, ddof 1, of
top-1 in % over done seeds), `seeds` (done seeds) and `top1_mean`; `pooled_std` is the root mean
square of the row stds, the spread the report plans with; `training_rules` the version of the
training rules it was measured under (roadmap.train.optimisation; another version is not used);
`command`, `commit` and `date` say how, from which code and when it was measured. A file whose
`pooled_std` is null holds no measurement yet.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from roadmap.train.optimisation import TRAINING_RULES

# Package data (setup.cfg), found next to this module wherever the package is installed.
NOISE_DIR = Path(__file__).resolve().parent / "noise"
COMMAND = "python benchmarks/seed_spread.py --preset {preset} --dataset {dataset} --seeds {seeds}"
# spread_source values of the run table that are not a measurement.
RUN_SOURCE, RUN_POOLED_SOURCE = "run", "run, pooled over rows"
POOLED = ", pooled over rows"


def root_mean_square(values: Iterable[Any]) -> float:
    """sqrt(mean(v^2)) over the finite values: the std of rows pooled with equal weight; NaN if none."""
    finite = [float(value) for value in values if value is not None and math.isfinite(float(value))]
    return math.sqrt(math.fsum(value**2 for value in finite) / len(finite)) if finite else math.nan


@dataclasses.dataclass(frozen=True)
class MeasuredSpread:
    """One measurement file: the rows' stds, their pooled std and what they were measured on."""

    name: str  # "<preset>-<dataset>"
    seeds: int  # seeds per row the measurement planned
    pooled_std: float
    row_std: Mapping[str, float]
    command: str
    commit: str | None = None
    date: str | None = None

    def source(self) -> str:
        """The run table's spread_source for the pooled std of this file."""
        return f"measured {self.name}, {self.seeds} seeds{POOLED}"


def spread_path(preset: str, dataset: str, directory: Path | None = None) -> Path:
    """Where the measurement of `preset` on `dataset` lies (the package's noise folder by default)."""
    return Path(directory if directory is not None else NOISE_DIR) / f"{preset}-{dataset}.json"


def _parse(data: Any, name: str) -> MeasuredSpread | None:
    if not isinstance(data, dict) or not isinstance(data.get("rows"), dict):
        return None
    pooled = data.get("pooled_std")
    if not isinstance(pooled, (int, float)) or not math.isfinite(pooled) or pooled < 0:
        return None  # the file exists, but nobody has measured yet
    if data.get("training_rules") != TRAINING_RULES:
        return None  # measured under other training rules (roadmap.train.optimisation): not this code's noise
    rows = {
        str(step): float(row["top1_std"])
        for step, row in data["rows"].items()
        if isinstance(row, dict) and isinstance(row.get("top1_std"), (int, float)) and math.isfinite(row["top1_std"])
    }
    return MeasuredSpread(
        name=name,
        seeds=int(data.get("seeds") or 0),
        pooled_std=float(pooled),
        row_std=rows,
        command=str(data.get("command", "")),
        commit=data.get("commit"),
        date=data.get("date"),
    )


def read_spread(path: Path) -> MeasuredSpread | None:
    """The measurement in `path`; None when the file is absent, unreadable or holds no measurement."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return _parse(data, Path(path).stem)


def measured_spread(preset: Any, dataset: Any, directory: Path | None = None) -> MeasuredSpread | None:
    """The spread measured for `preset` on `dataset`; None: no measured spread."""
    if not preset or not dataset:
        return None
    return read_spread(spread_path(str(preset), str(dataset), directory))


def _number(value: Any) -> float | None:
    return float(value) if value is not None and not pd.isna(value) and math.isfinite(float(value)) else None


def spread_record(
    table: pd.DataFrame, run_info: Mapping[str, Any], command: str, commit: str | None, date: str
) -> dict[str, Any]:
    """The measurement file's content from a several-seed run's table (roadmap.report.run_table.aggregate)."""
    rows = {
        str(row.step): {
            "top1_std": _number(row.top1_std),
            "seeds": int(row.seeds_done),
            "top1_mean": _number(row.top1_mean),
        }
        for row in table.itertuples(index=False)
    }
    pooled = root_mean_square(row["top1_std"] for row in rows.values())
    return {
        "what": "sample std (ddof 1) of top-1 (%) over done seeds, per row; pooled_std: root mean square over rows",
        "preset": run_info.get("preset"),
        "dataset": run_info.get("dataset"),
        "roadmap": run_info.get("roadmap"),
        "mode": run_info.get("mode", "cumulative"),
        "model": run_info.get("model"),
        "run": run_info.get("run"),
        "seeds": len(run_info.get("seeds", [0])),
        "training_rules": TRAINING_RULES,
        "pooled_std": pooled if math.isfinite(pooled) else None,
        "rows": rows,
        "command": command,
        "commit": commit,
        "date": date,
    }
