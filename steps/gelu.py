"""Row "ReLU -> GELU": every activation becomes GELU."""

from roadmap.spec import Spec


def gelu(spec: Spec) -> Spec:
    """Swap the activation kind; where activations sit is unchanged."""
    return spec.with_network(activation="gelu")
