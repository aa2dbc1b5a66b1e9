"""Row "increase width" (ResNeXt-ify, part 2): base width 64 -> 96, Swin-T's C."""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def scale_width(spec: Spec, width: int) -> Spec:
    """Scale the stem and every stage so that the base (stem) width becomes `width`."""
    if width < 1:
        raise SpecError(f"width: the base width must be positive, got {width}")
    network = spec.network
    factor = width / network.stem_width
    widths = tuple(round(stage_width * factor) for stage_width in network.widths)
    return spec.with_network(stem_width=width, widths=widths)


def increase_width(spec: Spec, width: int = 96) -> Spec:
    """Widen every stage by the same factor; idempotent at a given target width."""
    return scale_width(spec, width)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("width", increase_width, "increase width", "base width 64 -> 96"),)
