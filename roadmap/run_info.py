"""The run's plan as a typed record: what `<run>/run.json` holds (docs/results-format.md).

`RunInfo.to_json()` is the file's content, key for key and in the order it has always been written;
`RunInfo.from_json()` reads it back, including files written before a key existed (the defaults
below say what such a file meant). The report reads run.json as plain JSON (it also serves
hand-made plans); code that decides something from a plan reads it through `RunInfo.from_json`.

This module imports nothing of the project, so that any reader of a run folder can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


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
        return {
            "step": self.step,
            "label": self.label,
            "group": self.group,
            "branch_of": self.branch_of,
            "gflops": self.gflops,
            "params": self.params,
            "epochs": self.epochs,
            "recipe": self.recipe,
            "batch": self.batch,
            "pretrain": self.pretrain,
            "pretrain_epochs": self.pretrain_epochs,
            "key": self.key,
            "seed_keys": dict(self.seed_keys),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunRow:
        """A row of run.json; a row planned before FCMAE rows or per-seed keys existed has none."""
        return cls(
            step=data["step"],
            label=data["label"],
            group=data["group"],
            branch_of=data["branch_of"],
            gflops=data["gflops"],
            params=data["params"],
            epochs=data["epochs"],
            recipe=data["recipe"],
            batch=data["batch"],
            pretrain=data.get("pretrain"),
            pretrain_epochs=data.get("pretrain_epochs", 0),
            key=data["key"],
            seed_keys=dict(data.get("seed_keys", {})),
        )


@dataclass(frozen=True)
class SkippedRow:
    """A row an ablation mode leaves out, and why."""

    step: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SkippedRow:
        return cls(step=data["step"], reason=data["reason"])


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
    epochs: str  # the rows' distinct epoch counts, e.g. "5/15"

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "roadmap": self.roadmap,
            "model": self.model,
            "mode": self.mode,
            "preset": self.preset,
            "preset_description": self.preset_description,
            "dataset": self.dataset,
            "dataset_description": self.dataset_description,
            "num_classes": self.num_classes,
            "train_images": self.train_images,
            "val_images": self.val_images,
            "pixels": self.pixels,
            "seeds": list(self.seeds),
            "resolution": self.resolution,
            "rows": [row.to_json() for row in self.rows],
            "skipped": [row.to_json() for row in self.skipped],
            "notes": list(self.notes),
            "reference_note": self.reference_note,
            "epochs": self.epochs,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunInfo:
        """run.json's plan. Keys that older runs lack read as what those runs meant (no model, no
        skipped rows or notes, the rows' epoch counts) or as None (not recorded); a file without a
        key every plan has is not a plan: KeyError."""
        rows = tuple(RunRow.from_json(row) for row in data["rows"])
        return cls(
            run=data["run"],
            roadmap=data["roadmap"],
            model=data.get("model"),
            mode=data["mode"],
            preset=data["preset"],
            preset_description=data["preset_description"],
            dataset=data["dataset"],
            dataset_description=data["dataset_description"],
            num_classes=data["num_classes"],
            train_images=data.get("train_images"),
            val_images=data.get("val_images"),
            pixels=data.get("pixels"),
            seeds=tuple(data["seeds"]),
            resolution=data["resolution"],
            rows=rows,
            skipped=tuple(SkippedRow.from_json(row) for row in data.get("skipped", ())),
            notes=tuple(data.get("notes", ())),
            reference_note=data.get("reference_note"),
            epochs=data.get("epochs", epoch_counts(rows)),
        )


def epoch_counts(rows: Iterable[RunRow]) -> str:
    """The rows' distinct epoch counts in row order, e.g. "5/15" (legacy and modern recipe)."""
    return "/".join(str(epochs) for epochs in dict.fromkeys(row.epochs for row in rows))
