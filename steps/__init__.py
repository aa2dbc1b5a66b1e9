"""The roadmap steps: one module per step, each declaring the rows it gives in `STEPS`.

A step is a pure function `Spec -> Spec` in its own module of this package, with a docstring naming
its paper row. The module lists its rows as `Step` records (steps.registry): CLI name, function,
the paper's row label, a summary, and optionally parameters, the step it is a branch of, or that it
starts a roadmap. Every module of this package is found and read when the package is imported, so
adding a step is adding its module (and, to place it on a roadmap, a line in roadmap/network/roadmaps.py).
The steps import only roadmap.spec and roadmap.recipes (plain data): `import steps` loads no torch.
"""

from __future__ import annotations

import importlib
import pkgutil

from steps.registry import Step, canonical_name

__all__ = ["REGISTRY", "Step", "canonical_name"]

_NOT_STEPS = {"registry"}


def _discover() -> dict[str, Step]:
    """{name: Step} from every module of the package, in module order then declaration order."""
    registry: dict[str, Step] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name.startswith("_") or module_info.name in _NOT_STEPS:
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for step in getattr(module, "STEPS", ()):
            if step.name in registry:
                raise ValueError(f"step {step.name!r} is declared twice (in steps.{module_info.name} and before)")
            registry[step.name] = step
    return registry


REGISTRY: dict[str, Step] = _discover()
