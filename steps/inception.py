"""Row "InceptionNeXt-T" (arXiv 2303.16900, §3 and Table 3): ConvNeXt-T becomes InceptionNeXt-T.

The Inception depthwise token mixer (3x3 square, 1x11 and 11x1 bands on 1/8 of the channels each,
the rest identity), BatchNorm everywhere, MLP ratio 3 in the last stage with the saved parameters
moved into an MLP head, and a bias on every conv as in the official code.
"""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def inception(
    spec: Spec,
    square_kernel: int = 3,
    band_kernel: int = 11,
    branch_ratio: float = 0.125,
    last_stage_expansion: float = 3.0,
) -> Spec:
    """Swap the depthwise conv of a ConvNeXt block for the Inception mixer, and BN, MLP head."""
    network = spec.network
    if not (network.depthwise and network.block_order == "spatial_first"):
        raise SpecError("inception: needs a depthwise, spatial-first block; apply depthwise and move_up first")
    if network.downsampling != "separate":
        raise SpecError("inception: needs separate downsampling layers; apply sep_ds first")
    if not 0.0 < branch_ratio <= 1 / 3:
        raise SpecError(f"inception: three branches of ratio {branch_ratio} do not fit in the channels")
    expansions = network.expansions[:-1] + (float(last_stage_expansion),)
    return spec.with_network(
        mixer="inception",
        kernel_size=square_kernel,
        inception_band_kernel=band_kernel,
        inception_branch_ratio=branch_ratio,
        conv_ratio=1.0,
        norm="batchnorm",
        expansions=expansions,
        head="mlp",
        bias="all",
    )


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "inception",
        inception,
        "InceptionNeXt-T",
        "Inception dw mixer (3x3, 1x11, 11x1 on 1/8 each), BN, MLP ratio 3 in stage 4, MLP head",
    ),
)
