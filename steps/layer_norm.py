"""Row "BN -> LN": BatchNorm becomes LayerNorm over channels at each position, everywhere."""

from roadmap.spec import Spec
from steps.registry import Step


def layer_norm(spec: Spec) -> Spec:
    """Swap the norm kind; where norms sit is unchanged."""
    return spec.with_network(norm="layernorm")


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("ln", layer_norm, "BN -> LN", "BatchNorm -> LayerNorm"),)
