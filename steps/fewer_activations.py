"""Row "fewer activations": one activation per block, between the two pointwise convs."""

from roadmap.spec import Spec
from steps.registry import Step


def fewer_activations(spec: Spec) -> Spec:
    """Keep only the activation after the first pointwise conv (none after the residual add)."""
    return spec.with_network(activation_sites=("pointwise1",))


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("fewer_act", fewer_activations, "fewer activations", "one activation per block"),)
