"""Row "move up depthwise conv": the spatial conv moves to the top of the block (Fig. 3c)."""

from roadmap.spec import Spec
from steps.registry import Step


def move_up(spec: Spec) -> Spec:
    """Spatial conv first, then the two pointwise convs; its norm and activation move with it."""
    return spec.with_network(block_order="spatial_first")


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("move_up", move_up, "move up depthwise conv", "depthwise conv first in the block"),)
