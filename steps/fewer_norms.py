"""Row "fewer norms": one norm per block, right after the spatial (depthwise) conv."""

from roadmap.spec import Spec
from steps.registry import Step


def fewer_norms(spec: Spec) -> Spec:
    """Keep only the norm after the spatial conv; stem and shortcut norms stay."""
    return spec.with_network(norm_sites=("spatial",))


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("fewer_norm", fewer_norms, "fewer norms", "one norm per block, after the depthwise conv"),)
