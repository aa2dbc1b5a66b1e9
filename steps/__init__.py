"""The registry of roadmap steps: one line per step (CLI name, function, paper row label, summary).

A step is a pure function `Spec -> Spec` living alone in its module of this package. Adding a step
means adding that module and one `Step(...)` line below. Branch rows (`branch_of`) are variants of
another step that the paper tried but did not adopt; they start from the same parent spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from roadmap.spec import Spec
from steps import (
    depthwise,
    fcmae,
    fewer_activations,
    fewer_norms,
    gelu,
    grn,
    inception,
    invert,
    kernel,
    layer_norm,
    move_up,
    origin,
    partial_conv,
    patchify,
    recipe,
    separate_downsampling,
    stage_ratio,
    supervised,
    width,
)


@dataclass(frozen=True)
class Step:
    name: str
    function: Callable[..., Spec]
    label: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    branch_of: str | None = None
    # An origin step ignores its input and starts a roadmap.
    origin: bool = False

    def apply(self, spec: Spec, **overrides: Any) -> Spec:
        return self.function(spec, **{**self.params, **overrides})


STEPS: tuple[Step, ...] = (
    Step("resnet50", origin.resnet, "ResNet-50 (PyTorch, 90 ep)", "torchvision ResNet-50, 90-epoch SGD recipe", {"depths": (3, 4, 6, 3)}, origin=True),
    Step("resnet200", origin.resnet, "ResNet-200", "ResNet-200 (3,24,36,3), 90-epoch SGD recipe", {"depths": (3, 24, 36, 3)}, origin=True),
    Step("recipe", recipe.modern_recipe, "enhanced recipe", "modern training recipe (AdamW, 300 ep, Mixup/CutMix, RandAugment, ...)"),
    Step("stage_ratio", stage_ratio.stage_ratio, "stage ratio", "blocks per stage 3:4:6:3 -> 3:3:9:3"),
    Step("patchify", patchify.patchify, '"patchify" stem', "4x4 stride-4 patchify stem"),
    Step("depthwise", depthwise.depthwise, "depthwise conv", "3x3 conv -> depthwise 3x3 conv"),
    Step("width", width.increase_width, "increase width", "base width 64 -> 96"),
    Step("invert", invert.invert, "inverting dimensions", "inverted bottleneck, expansion 4"),
    Step("move_up", move_up.move_up, "move up depthwise conv", "depthwise conv first in the block"),
    Step("kernel", kernel.kernel_size, "kernel size -> 7", "depthwise kernel 3 -> 7 (adopted)", {"size": 7}),
    Step("kernel5", kernel.kernel_size, "kernel size -> 5", "depthwise kernel 3 -> 5 (branch)", {"size": 5}, branch_of="kernel"),
    Step("kernel9", kernel.kernel_size, "kernel size -> 9", "depthwise kernel 3 -> 9 (branch)", {"size": 9}, branch_of="kernel"),
    Step("kernel11", kernel.kernel_size, "kernel size -> 11", "depthwise kernel 3 -> 11 (branch)", {"size": 11}, branch_of="kernel"),
    Step("gelu", gelu.gelu, "ReLU -> GELU", "every activation becomes GELU"),
    Step("fewer_act", fewer_activations.fewer_activations, "fewer activations", "one activation per block"),
    Step("fewer_norm", fewer_norms.fewer_norms, "fewer norms", "one norm per block, after the depthwise conv"),
    Step("ln", layer_norm.layer_norm, "BN -> LN", "BatchNorm -> LayerNorm"),
    Step("sep_ds", separate_downsampling.separate_downsampling, "separate d.s. conv", "separate LN + 2x2 conv downsampling layers"),
    Step("grn", grn.global_response_norm, "ConvNeXt V2 (GRN)", "GRN after the GELU on the 4C features, LayerScale removed"),
    Step("inception", inception.inception, "InceptionNeXt-T", "Inception dw mixer (3x3, 1x11, 11x1 on 1/8 each), BN, MLP ratio 3 in stage 4, MLP head"),
    Step("k5", partial_conv.partial_conv, "dw 5x5, conv ratio 1", "InceptionNeXt Table 1: ConvNeXt-T with depthwise 5x5 (branch)", {"size": 5, "ratio": 1.0}, branch_of="inception"),
    Step("k3", partial_conv.partial_conv, "dw 3x3, conv ratio 1", "InceptionNeXt Table 1: ConvNeXt-T with depthwise 3x3 (branch)", {"size": 3, "ratio": 1.0}, branch_of="inception"),
    Step("k3_par1_2", partial_conv.partial_conv, "dw 3x3, conv ratio 1/2", "InceptionNeXt Table 1: 3x3 on 1/2 of the channels (branch)", {"size": 3, "ratio": 1 / 2}, branch_of="inception"),
    Step("k3_par3_8", partial_conv.partial_conv, "dw 3x3, conv ratio 3/8", "InceptionNeXt Table 1: 3x3 on 3/8 of the channels (branch)", {"size": 3, "ratio": 3 / 8}, branch_of="inception"),
    Step("k3_par1_4", partial_conv.partial_conv, "dw 3x3, conv ratio 1/4", "InceptionNeXt Table 1: 3x3 on 1/4 of the channels (branch)", {"size": 3, "ratio": 1 / 4}, branch_of="inception"),
    Step("k3_par1_8", partial_conv.partial_conv, "dw 3x3, conv ratio 1/8", "InceptionNeXt Table 1: 3x3 on 1/8 of the channels (branch)", {"size": 3, "ratio": 1 / 8}, branch_of="inception"),
    Step("k3_par1_16", partial_conv.partial_conv, "dw 3x3, conv ratio 1/16", "InceptionNeXt Table 1: 3x3 on 1/16 of the channels (branch)", {"size": 3, "ratio": 1 / 16}, branch_of="inception"),
    Step("fcmae", fcmae.fcmae, "FCMAE pre-training", "masked-autoencoder pre-training (60% of 32x32 patches), then V2 fine-tuning"),
    # The co-design table of ConvNeXt V2 (Table 3 / App. D): V1 and V2 blocks, supervised and FCMAE.
    Step("v1_supervised", supervised.supervised, "V1, supervised", "ConvNeXt V1 from scratch, IN-1K recipe with EMA"),
    Step("v1_fcmae", fcmae.fcmae, "V1 + FCMAE", "V1 block, FCMAE pre-training + V2 fine-tuning"),
    Step("v2_supervised", grn.global_response_norm, "V2 (GRN), supervised", "V2 block from scratch (branch)", branch_of="v1_fcmae"),
    Step("v2_fcmae", grn.global_response_norm, "V2 (GRN) + FCMAE", "V2 block, FCMAE pre-training + V2 fine-tuning"),
)

REGISTRY: dict[str, Step] = {step.name: step for step in STEPS}


def canonical_name(name: str) -> str:
    """CLI names accept '-' or '_'."""
    return name.strip().replace("-", "_")
