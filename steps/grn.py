"""Row "GRN" (ConvNeXt V2, §4): Global Response Normalization on the expanded features, no LayerScale."""

from roadmap.spec import Spec, SpecError
from steps.registry import Step


def global_response_norm(spec: Spec) -> Spec:
    """GRN after the activation on the 4C hidden features of every block; LayerScale is dropped.

    GRN acts on the expanded features of an inverted bottleneck, so it needs one (apply `invert`).
    """
    network = spec.network
    if max(network.expansions) <= 1:
        raise SpecError("grn: needs an inverted bottleneck (expanded hidden features); apply invert first")
    # ConvNeXt V2 found LayerScale redundant once GRN is used.
    return spec.with_network(grn=True, layer_scale=False)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step("grn", global_response_norm, "ConvNeXt V2 (GRN)", "GRN after the GELU on the 4C features, LayerScale removed"),
)
