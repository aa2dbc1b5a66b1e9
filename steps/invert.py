"""Row "inverting dimensions": the bottleneck becomes an inverted bottleneck (hidden = 4 x width)."""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def invert(spec: Spec, ratio: float = 4.0) -> Spec:
    """The residual stream takes the old bottleneck width; the block expands it `ratio` times."""
    network = spec.network
    if max(network.expansions) > 1:
        raise SpecError("invert: the block is already an inverted bottleneck; apply it only once")
    widths = tuple(network.hidden_width(stage) for stage in range(len(network.widths)))
    return spec.with_network(widths=widths, expansions=(float(ratio),) * len(widths))


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("invert", invert, "inverting dimensions", "inverted bottleneck, expansion 4"),)
