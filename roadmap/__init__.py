"""roadmap: the ConvNeXt "modernizing a ResNet" ablation as composable transforms on one spec.

The package's public names (`roadmap.specs`, `roadmap.build`, ...) are loaded on first use from the
module that owns each. Importing the package registers every roadmap row with timm
(roadmap.timm_models), which needs the roadmaps and so the steps; the steps (package `steps`) import
`roadmap.spec`, so when `import steps` comes first the registration waits for steps to be complete
(see the end of this file and of steps/__init__.py).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

# timm and fvcore still call torch.jit, which recent torch flags on every import and trace; the
# warning says nothing about this package and buries the progress output of every job.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

# `build` and `complexity` share their module's name: bound here, or the submodule (set on the
# package when anything imports it) would shadow the function. Both import only spec and torch.
from roadmap.build import build  # noqa: E402
from roadmap.complexity import CONVENTION, Complexity, complexity  # noqa: E402

# Public name -> the module that owns it, imported on first use.
_EXPORTS = {
    "model": "roadmap.models",
    "ROADMAPS": "roadmap.roadmaps",
    "Entry": "roadmap.roadmaps",
    "compose": "roadmap.roadmaps",
    "specs": "roadmap.roadmaps",
    "Network": "roadmap.spec",
    "Pretrain": "roadmap.spec",
    "Recipe": "roadmap.spec",
    "Spec": "roadmap.spec",
    "SpecError": "roadmap.spec",
}
# Names kept for code written against earlier versions: `preset` was renamed `model` when the
# training presets of --preset took that word.
_RENAMED = {"preset": ("roadmap.models", "model")}

__all__ = ["CONVENTION", "Complexity", "build", "complexity", *sorted(_EXPORTS), *sorted(_RENAMED)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attribute = _RENAMED[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'roadmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Every roadmap row is a timm model once the package is imported (roadmap.timm_models). Registering
# needs the roadmaps, which need the steps: when `import steps` comes first, its modules import
# roadmap.spec and so run this file before steps is complete, and steps registers them itself when
# it is (the last line of steps/__init__.py).
_steps = sys.modules.get("steps")
if _steps is None or hasattr(_steps, "REGISTRY"):
    importlib.import_module("roadmap.timm_models")
