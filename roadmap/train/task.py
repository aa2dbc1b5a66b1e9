"""One step x seed as plain data: everything a training job needs, picklable for submitit, and
written as the step's task.json (to_json / from_json)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from roadmap.data.source import DataSource
from roadmap.files.layout import StepPaths
from roadmap.spec import Spec


@dataclass(frozen=True)
class StepTask:
    """Everything a job needs to train one step x seed; plain data so that submitit can pickle it."""

    run_dir: str
    step: str
    seed: int
    key: str
    spec: Spec  # the network and recipe as trained (the preset's proxy size, the dataset's classes)
    preset: str
    data: DataSource  # the dataset and how its files are read (written flat into task.json)
    resolution: int
    per_device_batch: int
    accumulation: int
    lr: float
    workers: int
    gflops: float  # full-size network at 224 (paper convention)
    params: int
    synthetic: dict  # sizes and seed of the embedded dataset
    # Local runs: the launching process; the job stops when it dies, so a killed run leaves no
    # orphan trainer behind (submitit's local controller is made to outlive its launcher).
    launcher_pid: int | None = None
    # Full-size network whose throughput and peak memory are measured after training (cost per
    # step, on the machine that ran the step); None to skip.
    cost_spec: Spec | None = None
    # Named settings of the cost measurement (roadmap.cost.measure); empty: the device's default numerics.
    cost_settings: tuple[str, ...] = ()
    # roadmap.cost.numerics.Numerics as a dict (precision, channels_last, compile, deterministic);
    # None values resolve to the device's defaults inside the job.
    numerics: dict = field(default_factory=dict)
    # Progressive resizing: (first epoch, training resolution) pairs; empty: always `resolution`.
    # Evaluation at `eval_resolution` (None: `resolution`).
    resolution_schedule: tuple[tuple[int, int], ...] = ()
    eval_resolution: int | None = None
    # FCMAE pre-training before the recipe (spec["pretrain"]): its batch per device, accumulation
    # steps and learning rate, as batch_plan gives them; empty without pre-training.
    pretrain_batch: dict = field(default_factory=dict)
    # The phase this task trains: None for the row itself, "pretrain" for its pre-training.
    phase: str | None = None
    # W&B project the job also logs its scalars to (--wandb); None: TensorBoard only. Not part of
    # the key: where figures are shown does not change them.
    wandb_project: str | None = None
    # --init: the file every step starts from instead of its initialisation, as
    # roadmap.train.init_weights.InitWeights records it (path, sha256, what it holds); None: the recipe's.
    init: dict | None = None

    def to_json(self) -> dict[str, Any]:
        """task.json: every field, the specs as Spec.to_dict writes them (what their keys hash)."""
        data = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "data"}
        data.update({item.name: getattr(self.data, item.name) for item in fields(DataSource)})
        data["spec"] = self.spec.to_dict()
        data["cost_spec"] = None if self.cost_spec is None else self.cost_spec.to_dict()
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], run_dir: str | Path) -> StepTask:
        """The task of a task.json, pointed at where its run folder is now (it may have been moved or
        copied), with no launcher to watch. Keys a newer file adds are left out; older files lack only
        fields with defaults."""
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values.update(run_dir=str(run_dir), launcher_pid=None, spec=Spec.from_dict(data["spec"]))
        values["data"] = DataSource(**{item.name: data[item.name] for item in fields(DataSource) if item.name in data})
        if data.get("cost_spec") is not None:
            values["cost_spec"] = Spec.from_dict(data["cost_spec"])
        for name in ("cost_settings", "resolution_schedule"):  # tuples, which JSON wrote as lists
            if name in values:
                values[name] = _tuples(values[name])
        return cls(**values)

    def train_resolution(self, epoch: int) -> int:
        """The training resolution of zero-based `epoch`."""
        current = self.resolution
        for first_epoch, resolution in self.resolution_schedule:
            if epoch >= first_epoch:
                current = resolution
        return current

    @property
    def train_resolutions(self) -> tuple[int, ...]:
        return tuple(resolution for _, resolution in self.resolution_schedule) or (self.resolution,)

    @property
    def paths(self) -> StepPaths:
        return StepPaths(Path(self.run_dir), self.step, self.seed, self.phase)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(item) for item in value) if isinstance(value, (list, tuple)) else value
