"""roadmap: the ConvNeXt "modernizing a ResNet" ablation as composable transforms on one spec."""

from roadmap.build import build
from roadmap.complexity import CONVENTION, Complexity, complexity
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
    "specs",
]
