"""roadmap: the ConvNeXt "modernizing a ResNet" ablation as composable transforms on one spec."""

import warnings

# timm and fvcore still call torch.jit, which recent torch flags on every import and trace; the
# warning says nothing about this package and buries the progress output of every job.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)

from roadmap.build import build  # noqa: E402
from roadmap.complexity import CONVENTION, Complexity, complexity
from roadmap.presets import preset
from roadmap.roadmaps import ROADMAPS, Entry, compose, specs
from roadmap.spec import Network, Recipe, Spec, SpecError

__all__ = [
    "CONVENTION",
    "Complexity",
    "Entry",
    "Network",
    "ROADMAPS",
    "Recipe",
    "Spec",
    "SpecError",
    "build",
    "complexity",
    "compose",
    "preset",
    "specs",
]
