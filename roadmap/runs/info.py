"""The run's plan as a typed record: what `<run>/run.json` holds (docs/results-format.md).

`RunInfo.to_json()` is the file's content, key for key and in the order it has always been written;
`RunInfo.from_json()` reads it back, including files written before a key existed (the defaults
below say what such a file meant). The report reads run.json as plain JSON (it also serves
hand-made plans); code that decides something from a plan reads it through `RunInfo.from_json`.

This module imports nothing of the project, so that any reader of a run folder can use it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from roadmap.files.layout import FORMAT_KEY, FORMAT_VERSION


@dataclass(frozen=True)
class RunRow:
    """One planned row of the table: the step, its full-size complexity at 224 and its keys."""

    step: str
    label: str
    group: str | None  # the paper's stage group; None for rows the paper's table does not have
    branch_of: str | None  # the main-path row a branch row hangs off
    gflops: float
    params: int
    epochs: int
    recipe: str
    batch: str  # the batch, accumulation and lr in words
    pretrain: str | None  # FCMAE pre-training in words; None without one
    pretrain_epochs: int
    key: str  # content hash of the resolved spec and settings
    seed_keys: Mapping[str, str]  # seed (as text) -> the key its result.json must carry; {} in older runs

    def to_json(self) -> dict[str, Any]:
        return record_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRow:
        """A row of run.json; a row planned before FCMAE rows or per-seed keys existed has none."""
        return cls(**record_fields(cls, data, older={"pretrain": None, "pretrain_epochs": 0, "seed_keys": {}}))


@dataclass(frozen=True)
class SkippedRow:
    """A row an ablation mode leaves out, and why."""

    step: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return record_to_json(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkippedRow:
        return cls(**record_fields(cls, data))


@dataclass(frozen=True)
class RunInfo:
    """The plan of a run: its options, its data and its rows in table order (run.json)."""

    run: str
    roadmap: str
    model: str | None  # --model: the model the rows start from instead of the roadmap's network
    mode: str
    preset: str
    preset_description: str
    dataset: str
    dataset_description: str
    num_classes: int
    train_images: int | None  # None in runs written before the plan recorded the split sizes
    val_images: int | None
    pixels: str | None  # original files or a pre-shrunk copy; None in runs written before --shrink
    seeds: tuple[int, ...]
    resolution: str | int  # in words ("160->192 px, tested at 224"); a number in older runs
    rows: tuple[RunRow, ...]
    skipped: tuple[SkippedRow, ...]
    notes: tuple[str, ...]  # e.g. why every row trains at 64 px
    reference_note: str | None  # what the paper columns are when they are not the run's network
    epochs: str  # the rows' distinct epoch counts, e.g. "4/12"
    # --set / --config overrides: as typed, as parsed, and the values they replaced per recipe
    # (roadmap.runs.overrides.apply_overrides); () in runs without any.
    overrides: tuple[Mapping[str, Any], ...] = ()
    # --init: the file every row started from ({"path", "sha256", "holds"}); None: the recipe's initialisation.
    init: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {FORMAT_KEY: FORMAT_VERSION, **record_to_json(self)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        """run.json's plan. Keys that older runs lack read as what those runs meant (no model, no
        skipped rows or notes, the rows' epoch counts) or as None (not recorded); a file without a
        key every plan has is not a plan: KeyError."""
        values = record_fields(cls, data, older=RUN_INFO_ADDED_LATER)
        rows = tuple(RunRow.from_json(row) for row in values["rows"])
        return cls(
            **{
                **values,
                "seeds": tuple(values["seeds"]),
                "rows": rows,
                "skipped": tuple(SkippedRow.from_json(row) for row in values["skipped"]),
                "notes": tuple(values["notes"]),
                "epochs": values["epochs"] or epoch_counts(rows),
                "overrides": tuple(values["overrides"]),
            }
        )


# run.json keys added after the first planner, with what a file written before them meant.
RUN_INFO_ADDED_LATER: Mapping[str, Any] = {
    "model": None,
    "train_images": None,
    "val_images": None,
    "pixels": None,
    "skipped": (),
    "notes": (),
    "reference_note": None,
    "epochs": None,  # then: the rows' epoch counts
    "overrides": (),
    "init": None,
}


def record_to_json(record: Any) -> dict[str, Any]:
    """A record's fields in declaration order (the file's key order), nested records as dicts."""
    return {field.name: _json_value(getattr(record, field.name)) for field in fields(record)}


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value.to_json() if hasattr(value, "to_json") else value


def record_fields(cls: type, data: Mapping[str, Any], older: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The constructor arguments of record `cls` from `data`; only keys in `older` may be missing
    (files written before them), and read as its value; a missing other key: KeyError."""
    older = older or {}
    return {
        field.name: data[field.name] if field.name in data or field.name not in older else older[field.name]
        for field in fields(cls)
    }


def epoch_counts(rows: Iterable[RunRow]) -> str:
    """The rows' distinct epoch counts in row order, e.g. "4/12" (legacy and modern recipe)."""
    return "/".join(str(epochs) for epochs in dict.fromkeys(row.epochs for row in rows))
