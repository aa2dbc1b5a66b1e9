"""Row "fewer activations": one activation per block, between the two pointwise convs."""

from roadmap.spec import Spec


def fewer_activations(spec: Spec) -> Spec:
    """Keep only the activation after the first pointwise conv (none after the residual add)."""
    return spec.with_network(activation_sites=("pointwise1",))
