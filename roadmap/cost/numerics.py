"""Numerics of a run as data: precision, memory format, compilation and determinism.

Every figure a run produces (accuracy, throughput, cost) depends on these settings, so they are
chosen once per run, resolved per device (the defaults differ between a GPU and the CPU), applied
in one place and written next to the figures. `environment()` records the rest of what the numbers
depend on: library versions, the project's commit and the device.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn
from torch._dynamo.utils import counters as dynamo_counters

from roadmap.errors import UserError

PRECISIONS = ("bf16", "fp16", "tf32", "fp32")
# Autocast dtype of each precision; tf32 and fp32 run in float32 (tf32: TensorFloat-32 matmuls and
# convolutions on Ampere and newer GPUs).
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class NumericsError(UserError, ValueError):
    """A numerics setting the device cannot honour."""


@dataclass(frozen=True)
class Numerics:
    """How a network computes. None: the device's default (resolved by `for_device`)."""

    precision: str | None = None  # bf16 on CUDA, fp32 on the CPU
    channels_last: bool | None = None  # on with CUDA, off on the CPU
    compile: bool | None = None  # on with CUDA; off on the CPU, where compile time dominates the proxies
    # Bit-reproducible GPU kernels (slower); the CPU is deterministic anyway.
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise NumericsError(f"unknown precision {self.precision!r}; choose one of: {', '.join(PRECISIONS)}")

    def for_device(self, device: torch.device) -> "Numerics":
        """Every None filled with the device's default; refuses what the device cannot do."""
        cuda = device.type == "cuda"
        precision = self.precision or ("bf16" if cuda else "fp32")
        if precision == "tf32" and not cuda:
            raise NumericsError("precision tf32 needs a CUDA device (TensorFloat-32); use fp32 on the CPU")
        return replace(
            self,
            precision=precision,
            channels_last=cuda if self.channels_last is None else self.channels_last,
            compile=cuda if self.compile is None else self.compile,
        )

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device) -> contextlib.AbstractContextManager:
        dtype = AUTOCAST_DTYPES.get(self.precision or "fp32")
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=dtype)

    def grad_scaler(self, device: torch.device) -> torch.amp.GradScaler | None:
        """fp16 needs loss scaling (its exponent range is narrow); bf16 and float32 do not."""
        return torch.amp.GradScaler(device.type) if self.precision == "fp16" else None

    def apply(self, device: torch.device) -> None:
        """Set the process-wide backend flags these numerics need (call once per process)."""
        if device.type != "cuda":
            return
        tf32 = self.precision == "tf32"
        # PyTorch enables TF32 for cuDNN convolutions by default: fp32 must switch it off explicitly.
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        # cuDNN autotuning picks the fastest kernel per shape, which need not be deterministic.
        torch.backends.cudnn.benchmark = not self.deterministic
        torch.backends.cudnn.deterministic = self.deterministic
        if self.deterministic:
            # cuBLAS needs a fixed workspace to reproduce its reductions.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # warn_only: a few backward kernels (e.g. some pooling) have no deterministic CUDA
            # version; they warn instead of stopping the run.
            torch.use_deterministic_algorithms(True, warn_only=True)

    def describe(self) -> str:
        parts = [
            self.precision or "default precision",
            "channels-last" if self.channels_last else "NCHW",
            "compiled" if self.compile else "eager",
        ]
        if self.deterministic:
            parts.append("deterministic")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {threads} thread{'s' if threads != 1 else ''})"


def _git_commit() -> str | None:
    """The checkout's commit (`+dirty` with uncommitted changes); None outside a git checkout."""
    # The checkout this file is in (roadmap/cost/numerics.py -> its root), not any repository above
    # it: an installed copy in a venv kept inside some other repository has no commit of ours.
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        answer = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if answer.returncode != 0:
        return None
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    return answer.stdout.strip() + ("+dirty" if dirty else "")


def _project_version() -> str | None:
    try:
        return metadata.version("roadmap")
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """What a run's numbers depend on besides its settings: versions, commit and device."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "torch": torch.__version__,
        "timm": timm.__version__,
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "cudnn": cudnn if device.type == "cuda" else None,
        "roadmap": _project_version(),
        "git_commit": _git_commit(),
        "device": describe_device(device),
        "python": platform.python_version(),
    }


def padded_to(images: torch.Tensor, batch: int) -> torch.Tensor:
    """A short batch padded with zero images to `batch` images. A compiled network then sees one
    batch shape in evaluation instead of compiling again (seconds, once per process) for the last,
    short batch. In eval mode no image's logits depend on another's, so the padding's are dropped."""
    return nn.functional.pad(images, (0, 0, 0, 0, 0, 0, 0, batch - images.shape[0]))


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process so far (a new one after warm-up = a recompile)."""
    return int(dynamo_counters["stats"]["unique_graphs"])
