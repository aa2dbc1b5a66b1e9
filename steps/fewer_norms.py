"""Row "fewer norms": one norm per block, right after the spatial (depthwise) conv."""

from roadmap.spec import Spec


def fewer_norms(spec: Spec) -> Spec:
    """Keep only the norm after the spatial conv; stem and shortcut norms stay."""
    return spec.with_network(norm_sites=("spatial",))
