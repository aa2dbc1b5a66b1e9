"""Row "ReLU -> GELU": every activation becomes GELU."""

from roadmap.spec import Spec
from steps.registry import Step


def gelu(spec: Spec) -> Spec:
    """Swap the activation kind; where activations sit is unchanged."""
    return spec.with_network(activation="gelu")


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("gelu", gelu, "ReLU -> GELU", "every activation becomes GELU"),)
