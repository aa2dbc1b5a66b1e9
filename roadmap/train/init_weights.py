"""`--init PATH`: every step of a run starts from the weights in PATH instead of its initialisation.

PATH is a roadmap training checkpoint (a finished step's `checkpoint.pt`: its reported weights, the
EMA's where it has one), a plain state dict in our names (what `run_roadmap.py export` writes), or a
timm-format state dict of a network with a timm counterpart (renamed by roadmap.network.timm_names); a
`.safetensors` file or a torch file. The file's names and shapes must match each row's network
exactly: planning checks every row before anything is written, and the first key that does not fit
ends the command in one line. The file's sha256 is part of every step's key, so a step started from
other weights is another experiment, and the job checks it again before loading.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import safetensors.torch
import torch
from torch import nn

from roadmap.errors import UserError, one_line
from roadmap.network.build import build
from roadmap.network.timm_names import FAMILY_RULES, convert_state_dict
from roadmap.spec import Spec
from roadmap.train.checkpoints import UnsafeCheckpoint, checkpoint_weights, is_training_checkpoint, load_torch_file

# Wrappers other tools save a state dict under (timm's train.py: state_dict; many repositories: model).
WRAPPER_KEYS = ("state_dict", "model")
ROADMAP_NAMES = "roadmap"


class InitError(UserError, ValueError):
    """An --init file that cannot start the run's networks: said in one line, before any training."""


@dataclass(frozen=True)
class InitWeights:
    """The --init file as recorded in run.json and every task: where, its content hash, what it held."""

    path: str  # absolute
    sha256: str
    holds: str  # e.g. "roadmap checkpoint, ema weights", "state dict, timm convnext names"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load(path: Path) -> Any:
    if path.suffix == ".safetensors":
        return safetensors.torch.load_file(str(path), device="cpu")
    return load_torch_file(path)  # runs no code from the file (roadmap.train.checkpoints)


def _tensors_only(state: Any) -> bool:
    return isinstance(state, Mapping) and bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def read_state(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict held by `path` (names as in the file) and what the file was, in words."""
    try:
        loaded = _load(path)
    except FileNotFoundError:
        raise InitError(f"--init {path}: no such file") from None
    except UnsafeCheckpoint as error:
        raise InitError(f"--init {error}") from None
    except (pickle.UnpicklingError, RuntimeError, OSError, ValueError, EOFError) as error:
        raise InitError(f"--init {path}: not a state dict or checkpoint torch can read ({one_line(error)})") from None
    if is_training_checkpoint(loaded):
        weights = "raw" if loaded.get("ema") is None else "ema"
        return checkpoint_weights(loaded, weights), f"roadmap checkpoint, {weights} weights"
    for key in WRAPPER_KEYS:
        if isinstance(loaded, Mapping) and _tensors_only(loaded.get(key)):
            loaded = loaded[key]
    if not _tensors_only(loaded):
        raise InitError(
            f"--init {path}: holds no state dict (expected a mapping of names to tensors, a roadmap "
            f"checkpoint, or one under 'state_dict' / 'model')"
        )
    return dict(loaded), "state dict"


def _problems(state: Mapping[str, torch.Tensor], ours: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps `state` from loading into a network whose state dict is `ours`, first key first."""
    problems = []
    for key, target in ours.items():
        if key not in state:
            problems.append(f"key {key!r} of the network is missing from the file")
        elif tuple(state[key].shape) != tuple(target.shape):
            problems.append(
                f"key {key!r} has shape {tuple(state[key].shape)} in the file, {tuple(target.shape)} in the network"
            )
    problems += [f"the file's key {key!r} is not in the network" for key in state if key not in ours]
    return problems


def in_our_names(state: Mapping[str, torch.Tensor], ours: Mapping[str, torch.Tensor]) -> tuple[dict, str, list[str]]:
    """`state` under our names: as it is (a roadmap file), else renamed by the timm family whose rules
    fit best. Returns the renamed state, the names it was in, and what still does not fit (first first)."""
    candidates = [(dict(state), ROADMAP_NAMES)]
    for family in FAMILY_RULES:
        try:
            candidates.append((convert_state_dict(state, family, ours), f"timm {family}"))
        except KeyError:  # a key these rules map to none of ours: not this family
            continue
    scored = [(renamed, names, _problems(renamed, ours)) for renamed, names in candidates]
    return min(scored, key=lambda candidate: len(candidate[2]))


def network_state(spec: Spec) -> dict[str, torch.Tensor]:
    """The names and shapes of `spec`'s network, built on the meta device (no memory, no random draws)."""
    with torch.device("meta"):
        return build(spec).state_dict()


def plan_init(path: str | Path, rows: list[tuple[str, Spec]]) -> InitWeights:
    """Read and check the --init file against every row's trained network (`rows`: name, resolved
    spec); InitError naming the first row and key that do not fit."""
    path = Path(path).expanduser().resolve()
    state, holds = read_state(path)
    names = None
    for name, spec in rows:
        if spec.pretrain is not None:
            raise InitError(
                f"--init cannot start {name}: an FCMAE row starts fine-tuning from its own pre-training; "
                f"drop --init or leave out the FCMAE rows"
            )
        _, names, problems = in_our_names(state, network_state(spec))
        if problems:
            raise InitError(f"--init {path.name} does not fit the network of row {name}: {problems[0]}")
    if names != ROADMAP_NAMES and names is not None:
        holds = f"{holds}, {names} names"
    return InitWeights(str(path), file_sha256(path), holds)


def load_init(model: nn.Module, init: Mapping[str, Any]) -> None:
    """Load the recorded --init file into `model` (a training job, at the start of a step): the file
    must still be the one planned (same sha256), and fit exactly."""
    path = Path(init["path"])
    try:
        sha256 = file_sha256(path)
    except OSError as error:
        raise InitError(f"--init {path}: cannot read it ({one_line(error)}); plan the run again") from None
    if sha256 != init["sha256"]:
        raise InitError(f"--init {path} changed since the run was planned (sha256 differs); plan the run again")
    state, _ = read_state(path)
    renamed, _, problems = in_our_names(state, model.state_dict())
    if problems:
        raise InitError(f"--init {path.name} does not fit the network: {problems[0]}")
    model.load_state_dict(renamed, strict=True)
