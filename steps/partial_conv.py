"""Rows of InceptionNeXt's preliminary study (Table 1): ConvNeXt-T with a smaller depthwise kernel
(5x5, 3x3), and the 3x3 conv on only a fraction of the channels (1/2, 3/8, 1/4, 1/8, 1/16).

The paper trained these with the ConvNeXt recipe plus EMA; here they keep the roadmap's recipe so
that each row differs from ConvNeXt-T in the network only.
"""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def partial_conv(spec: Spec, size: int = 3, ratio: float = 1.0) -> Spec:
    """Depthwise kxk conv on the last `ratio` of the channels; the other channels pass unchanged."""
    network = spec.network
    if not (network.depthwise and network.block_order == "spatial_first" and network.mixer == "conv"):
        raise SpecError("partial_conv: needs the depthwise conv of a ConvNeXt block; apply depthwise and move_up first")
    if ratio < 1.0 and network.downsampling != "separate":
        raise SpecError("partial_conv: a partial conv cannot stride; apply sep_ds first")
    return spec.with_network(kernel_size=size, conv_ratio=float(ratio))


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "k5",
        partial_conv,
        "dw 5x5, conv ratio 1",
        "InceptionNeXt Table 1: ConvNeXt-T with depthwise 5x5 (branch)",
        {"size": 5, "ratio": 1.0},
        branch_of="inception",
    ),
    Step(
        "k3",
        partial_conv,
        "dw 3x3, conv ratio 1",
        "InceptionNeXt Table 1: ConvNeXt-T with depthwise 3x3 (branch)",
        {"size": 3, "ratio": 1.0},
        branch_of="inception",
    ),
    Step(
        "k3_par1_2",
        partial_conv,
        "dw 3x3, conv ratio 1/2",
        "InceptionNeXt Table 1: 3x3 on 1/2 of the channels (branch)",
        {"size": 3, "ratio": 1 / 2},
        branch_of="inception",
    ),
    Step(
        "k3_par3_8",
        partial_conv,
        "dw 3x3, conv ratio 3/8",
        "InceptionNeXt Table 1: 3x3 on 3/8 of the channels (branch)",
        {"size": 3, "ratio": 3 / 8},
        branch_of="inception",
    ),
    Step(
        "k3_par1_4",
        partial_conv,
        "dw 3x3, conv ratio 1/4",
        "InceptionNeXt Table 1: 3x3 on 1/4 of the channels (branch)",
        {"size": 3, "ratio": 1 / 4},
        branch_of="inception",
    ),
    Step(
        "k3_par1_8",
        partial_conv,
        "dw 3x3, conv ratio 1/8",
        "InceptionNeXt Table 1: 3x3 on 1/8 of the channels (branch)",
        {"size": 3, "ratio": 1 / 8},
        branch_of="inception",
    ),
    Step(
        "k3_par1_16",
        partial_conv,
        "dw 3x3, conv ratio 1/16",
        "InceptionNeXt Table 1: 3x3 on 1/16 of the channels (branch)",
        {"size": 3, "ratio": 1 / 16},
        branch_of="inception",
    ),
)
