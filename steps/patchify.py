"""Row '"patchify" stem': the 7x7/2 conv + max-pool stem becomes a 4x4 stride-4 conv + norm."""

from roadmap.spec import Spec


def patchify(spec: Spec, patch_size: int = 4) -> Spec:
    """Non-overlapping patch embedding, same 4x downsampling as the ResNet stem."""
    return spec.with_network(stem="patchify", stem_kernel=patch_size)
