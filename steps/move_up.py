"""Row "move up depthwise conv": the spatial conv moves to the top of the block (Fig. 3c)."""

from roadmap.spec import Spec


def move_up(spec: Spec) -> Spec:
    """Spatial conv first, then the two pointwise convs; its norm and activation move with it."""
    return spec.with_network(block_order="spatial_first")
