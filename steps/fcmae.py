"""Row "FCMAE" (ConvNeXt V2, §3): masked-autoencoder pre-training, then the V2 fine-tuning recipe."""

from dataclasses import replace

from roadmap.fcmae import check_network
from roadmap.recipes import v2_finetune_recipe
from roadmap.spec import Pretrain, Spec
from steps.registry import Step


def fcmae(spec: Spec, mask_ratio: float = 0.6, epochs: int = 800) -> Spec:
    """Pre-train the encoder as a fully convolutional masked autoencoder, then fine-tune it.

    Pre-training masks `mask_ratio` of the 32x32 patches and reconstructs them for `epochs` epochs
    (800 in the paper's ablations); fine-tuning follows ConvNeXt V2's recipe for the model's size
    (layer-wise lr decay, EMA). The network is unchanged: only ConvNeXt-style ones (patchify stem,
    LayerNorm, separate downsampling) can run the sparse encoder, others are refused.
    """
    check_network(spec.network)
    pretrain = replace(spec.pretrain or Pretrain(), mask_ratio=mask_ratio, epochs=epochs)
    return replace(spec, recipe=v2_finetune_recipe(spec.network.stem_width), pretrain=pretrain)


# The rows this module adds to the registry (roadmap.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "fcmae",
        fcmae,
        "FCMAE pre-training",
        "masked-autoencoder pre-training (60% of 32x32 patches), then V2 fine-tuning",
    ),
)
