"""The cost study's settings: named numerics (precision, memory format, compilation, batch) under
which a network's speed is measured, InceptionNeXt's protocol among them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from roadmap.cost.numerics import Numerics, NumericsError

# Untimed warm-up and timed steps per phase. On a GPU the warm-up covers cuDNN autotuning (first
# call of each shape) and compilation (first train step and first inference batch each compile).
DEFAULT_BATCH = {"cuda": 128, "cpu": 32}


@dataclass(frozen=True)
class CostSetting:
    name: str
    description: str
    precision: str
    # None: measure NCHW and channels-last and keep the better figure of each (InceptionNeXt's protocol).
    channels_last: bool | None = False
    compile: bool = False
    batch: int | None = None  # None: DEFAULT_BATCH of the device
    on_cpu: CostSetting | None = None  # what the setting means on the CPU; None: the same

    def numerics(self) -> tuple[Numerics, ...]:
        layouts = (False, True) if self.channels_last is None else (self.channels_last,)
        return tuple(
            Numerics(precision=self.precision, channels_last=layout, compile=self.compile) for layout in layouts
        )

    def for_device(self, device: torch.device) -> CostSetting:
        """The setting as run on `device`; NumericsError when the device cannot run it."""
        setting = self.on_cpu if device.type != "cuda" and self.on_cpu is not None else self
        for numerics in setting.numerics():
            numerics.for_device(device)
        return setting


def _settings(*settings: CostSetting) -> dict[str, CostSetting]:
    return {setting.name: setting for setting in settings}


COST_SETTINGS: Mapping[str, CostSetting] = _settings(
    CostSetting(
        "paper",
        "InceptionNeXt's protocol (Tables 1, 4): fp32 with TF32, batch 128, the better of "
        "NCHW and channels-last, eager; on the CPU fp32, NCHW, batch 32",
        "tf32",
        None,
        batch=128,
        on_cpu=CostSetting(
            "paper", "InceptionNeXt's protocol on the CPU: fp32, NCHW, batch 32", "fp32", False, batch=32
        ),
    ),
    CostSetting("fp32", "float32 without TF32, NCHW, eager", "fp32"),
    CostSetting("fp32-cl", "float32 without TF32, channels-last, eager", "fp32", True),
    CostSetting("tf32", "float32 with TF32 tensor cores, NCHW, eager (CUDA only)", "tf32"),
    CostSetting("tf32-cl", "float32 with TF32 tensor cores, channels-last, eager (CUDA only)", "tf32", True),
    CostSetting("bf16", "bf16 autocast, NCHW, eager", "bf16"),
    CostSetting(
        "bf16-cl", "bf16 autocast, channels-last, eager (this project's training numerics before compile)", "bf16", True
    ),
    CostSetting(
        "bf16-compiled",
        "bf16 autocast, channels-last, torch.compile (this project's GPU default)",
        "bf16",
        True,
        compile=True,
    ),
    CostSetting("fp16-cl", "fp16 autocast with loss scaling, channels-last, eager", "fp16", True),
)


def default_cost_settings(device: torch.device | str) -> tuple[str, ...]:
    """The study's default: the paper's protocol and this project's settings on a GPU, fp32 on the CPU."""
    return ("paper", "bf16-cl", "bf16-compiled") if torch.device(device).type == "cuda" else ("fp32",)


def parse_cost_settings(text: str) -> tuple[str, ...]:
    """Comma-separated setting names (`_` or `-`, any case), in order, without repeats."""
    names = [part.strip().lower().replace("_", "-") for part in text.split(",") if part.strip()]
    valid = ", ".join(COST_SETTINGS)
    if not names:
        raise ValueError(f"no cost setting given; choose from: {valid}")
    for name in names:
        if name not in COST_SETTINGS:
            raise ValueError(f"unknown cost setting {name!r}; choose from: {valid}")
    return tuple(dict.fromkeys(names))


def setting_key(name: str) -> str:
    """The setting's part of a result.json key: `bf16-cl` -> `bf16_cl` (cost_bf16_cl_train_images_per_s)."""
    return name.replace("-", "_")


def unavailable_settings(settings: Sequence[str], device: torch.device | str) -> dict[str, str]:
    """{setting: reason} for each setting `device` cannot run (e.g. TF32 on the CPU)."""
    reasons = {}
    for name in settings:
        try:
            COST_SETTINGS[name].for_device(torch.device(device))
        except NumericsError as error:
            reasons[name] = f"setting {name}: {error}"
    return reasons
