"""The records a step x seed leaves in its folder as result.json: `StepResult` for the row (done,
diverged or failed) and `PhaseResult` for an FCMAE row's pre-training phase (pretrain/result.json).

Each is one dataclass: its fields, in order, are the file's keys (docs/results-format.md describes
them and tests/test_docs.py checks the page against these fields). `to_json` writes the file's object
with the format version first; `from_json` reads one back, ignoring keys a newer writer added.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from roadmap.files.layout import FORMAT_KEY, FORMAT_VERSION


@dataclass(frozen=True)
class StepResult:
    """result.json of a row's step x seed. A job that ended without training the row writes its
    identity, the `reason` and, where its pre-training diverged, `pretrain`; a trained row every
    figure below (None where it has none), `pretrain_loss` and `pretrain` when it had a pre-training
    phase, and the `cost_*` keys of `--measure-cost` (roadmap.cost.measure)."""

    status: str  # done, diverged or failed
    step: str
    seed: int
    key: str
    reason: str | None = None  # why the row was not trained (failed, or its pre-training diverged), one line
    top1: float | None = None  # the reported weights' last top-1 / top-5 (%)
    top5: float | None = None
    best_top1: float | None = None
    reported_weights: str | None = None  # "raw" or "ema": where top1 / top5 / best_top1 come from
    top1_raw: float | None = None
    top5_raw: float | None = None
    top1_ema: float | None = None
    top5_ema: float | None = None
    ema_decay: float | None = None  # the EMA decay fitted to the run, else None
    epochs: int | None = None
    gflops: float | None = None  # the full-size network at 224 (paper convention)
    params: int | None = None
    proxy_gflops: float | None = None  # the trained network at its resolution
    proxy_params: int | None = None
    resolution: int | None = None
    train_images_per_s: float | None = None  # medians over the epochs
    infer_images_per_s: float | None = None
    data_wait_fraction: float | None = None
    wall_time_s: float | None = None  # pre-training included
    device: str | None = None
    world_size: int | None = None
    dataset: str | None = None
    preset: str | None = None
    precision: str | None = None
    channels_last: bool | None = None
    compiled: bool | None = None
    deterministic: bool | None = None
    startup_time_s: float | None = None
    recompiles_after_first_epoch: int | None = None
    pixels: str | None = None
    environment: Mapping[str, Any] | None = None
    pretrain_loss: float | None = None  # FCMAE rows: the pre-training's validation loss
    pretrain: Mapping[str, Any] | None = None  # FCMAE rows: the phase's record (PhaseResult)
    cost: Mapping[str, Any] = field(default_factory=dict)  # the flat cost_* keys

    IDENTITY: ClassVar[tuple[str, ...]] = ("status", "step", "seed", "key")
    PRETRAIN: ClassVar[tuple[str, ...]] = ("pretrain_loss", "pretrain")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {FORMAT_KEY: FORMAT_VERSION}
        for name in self.keys():
            data[name] = getattr(self, name)
        return {**data, **self.cost}

    def keys(self) -> list[str]:
        """The file's keys besides the format version and the cost keys, in order."""
        if self.reason is not None:
            return [*self.IDENTITY, "reason", *(["pretrain"] if self.pretrain is not None else [])]
        names = [item.name for item in fields(self) if item.name not in ("reason", "cost")]
        return [name for name in names if self.pretrain is not None or name not in self.PRETRAIN]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        known = {item.name for item in fields(cls)} - {"cost"}
        cost = {key: value for key, value in data.items() if key.startswith("cost_")}
        return cls(**{key: value for key, value in data.items() if key in known}, cost=cost)


@dataclass(frozen=True)
class PhaseResult:
    """pretrain/result.json of an FCMAE row's pre-training (roadmap.fcmae.trainer)."""

    status: str  # done or diverged
    phase: str  # "pretrain"
    step: str
    seed: int
    key: str  # the row's key + "-pretrain"
    epochs: int
    train_loss: float | None  # the last epoch's
    val_loss: float | None  # masked-patch MSE on the validation images, fixed masks
    mask_ratio: float
    resolution: int
    train_images_per_s: float | None  # median over the epochs
    wall_time_s: float
    device: str
    encoder: str  # the pre-trained encoder, relative to the run folder

    def to_json(self) -> dict[str, Any]:
        return {FORMAT_KEY: FORMAT_VERSION, **{item.name: getattr(self, item.name) for item in fields(self)}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseResult:
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
