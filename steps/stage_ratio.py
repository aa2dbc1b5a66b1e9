"""Row "stage ratio": blocks per stage (3,4,6,3) -> (3,3,9,3), Swin-T's 1:1:3:1 compute ratio."""

from roadmap.spec import Spec, SpecError
from steps.registry import Step
from steps.width import scale_width


def stage_ratio(spec: Spec, depths: tuple[int, ...] = (3, 3, 9, 3), width: int | None = None) -> Spec:
    """Set the stage depths; the ResNet-200 roadmap also widens the base width here (64 -> 84)."""
    if len(depths) != len(spec.network.depths):
        raise SpecError(f"stage_ratio: got {len(depths)} depths for a network with {len(spec.network.depths)} stages")
    spec = spec.with_network(depths=tuple(depths))
    return scale_width(spec, width) if width is not None else spec


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("stage_ratio", stage_ratio, "stage ratio", "blocks per stage 3:4:6:3 -> 3:3:9:3"),)
