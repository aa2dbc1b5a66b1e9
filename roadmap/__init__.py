"""roadmap: the ConvNeXt "modernizing a ResNet" ablation as composable transforms on one spec.

The package is layered; each layer imports only the ones before it (docs/architecture.md, and
tests/test_imports.py reads the imports to hold it):

    spec, recipes, errors, files -> steps -> network -> cost -> data -> train -> fcmae -> runs
                                 -> report -> launch -> cli

The public names (`roadmap.specs`, `roadmap.build`, ...) are loaded on first use from the module
that owns each. Importing the package registers every roadmap row with timm
(roadmap.network.timm_registry), which needs the roadmaps and so the steps. The steps import
`roadmap.spec`, so when `import steps` comes first this file runs while steps is incomplete: it then
registers nothing and loads no torch (the network subpackage registers the rows when it is imported).
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

# Public name -> the module that owns it, imported on first use.
_EXPORTS = {
    "build": "roadmap.network.build",
    "complexity": "roadmap.network.complexity",
    "Complexity": "roadmap.network.complexity",
    "CONVENTION": "roadmap.network.complexity",
    "model": "roadmap.network.families",
    "ROADMAPS": "roadmap.network.roadmaps",
    "Entry": "roadmap.network.roadmaps",
    "compose": "roadmap.network.roadmaps",
    "specs": "roadmap.network.roadmaps",
    "Network": "roadmap.spec",
    "Pretrain": "roadmap.spec",
    "Recipe": "roadmap.spec",
    "Spec": "roadmap.spec",
    "SpecError": "roadmap.spec",
}
# Names kept for code written against earlier versions: `preset` was renamed `model` when the
# training presets of --preset took that word.
_RENAMED = {"preset": ("roadmap.network.families", "model")}

__all__ = sorted([*_EXPORTS, *_RENAMED])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _RENAMED:
        module, attribute = _RENAMED[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'roadmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Every roadmap row is a timm model once the package is imported, unless `import steps` is what
# brought this file in (steps is then incomplete, and the rows are registered by roadmap.network).
_steps = sys.modules.get("steps")
if _steps is None or hasattr(_steps, "REGISTRY"):
    # timm's import calls torch.jit.script, which recent torch flags as deprecated: a warning about
    # neither this package nor the user's code. Filtered for this import only (no global filter).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        importlib.import_module("roadmap.network")
