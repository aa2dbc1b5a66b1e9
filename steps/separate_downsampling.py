"""Row "separate d.s. conv": norm + 2x2 stride-2 conv between stages, a norm before the head."""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def separate_downsampling(spec: Spec) -> Spec:
    """No more in-block striding or projection shortcuts (the final ConvNeXt layout)."""
    if spec.network.downsampling == "none":
        raise SpecError("sep_ds: an isotropic network (one stage) has no downsampling to separate")
    return spec.with_network(downsampling="separate", head="norm_linear")


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (Step("sep_ds", separate_downsampling, "separate d.s. conv", "separate LN + 2x2 conv downsampling layers"),)
