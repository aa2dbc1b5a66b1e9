"""Row '"patchify" stem': the 7x7/2 conv + max-pool stem becomes a 4x4 stride-4 conv + norm."""

from roadmap.spec import Spec
from steps.registry import Step


def patchify(spec: Spec, patch_size: int = 4) -> Spec:
    """Non-overlapping patch embedding, same 4x downsampling as the ResNet stem."""
    return spec.with_network(stem="patchify", stem_kernel=patch_size)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("patchify", patchify, '"patchify" stem', "4x4 stride-4 patchify stem"),)
