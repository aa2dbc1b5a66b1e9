"""Row "BN -> LN": BatchNorm becomes LayerNorm over channels at each position, everywhere."""

from roadmap.spec import Spec


def layer_norm(spec: Spec) -> Spec:
    """Swap the norm kind; where norms sit is unchanged."""
    return spec.with_network(norm="layernorm")
