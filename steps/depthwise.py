"""Row "depthwise conv" (ResNeXt-ify, part 1): the 3x3 conv becomes depthwise (groups = channels)."""

from roadmap.spec import Spec
from steps.registry import Step


def depthwise(spec: Spec) -> Spec:
    """Depthwise spatial conv: each channel mixes only spatial information."""
    return spec.with_network(depthwise=True, groups=1)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("depthwise", depthwise, "depthwise conv", "3x3 conv -> depthwise 3x3 conv"),)
