"""Row "depthwise conv" (ResNeXt-ify, part 1): the 3x3 conv becomes depthwise (groups = channels)."""

from roadmap.spec import Spec


def depthwise(spec: Spec) -> Spec:
    """Depthwise spatial conv: each channel mixes only spatial information."""
    return spec.with_network(depthwise=True, groups=1)
