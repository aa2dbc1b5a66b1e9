"""Row "separate d.s. conv": norm + 2x2 stride-2 conv between stages, a norm before the head."""

from roadmap.spec import Spec, SpecError


def separate_downsampling(spec: Spec) -> Spec:
    """No more in-block striding or projection shortcuts (the final ConvNeXt layout)."""
    if spec.network.downsampling == "none":
        raise SpecError("sep_ds: an isotropic network (one stage) has no downsampling to separate")
    return spec.with_network(downsampling="separate", head="norm_linear")
