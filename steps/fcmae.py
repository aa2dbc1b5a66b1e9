"""Row "FCMAE" (ConvNeXt V2, §3): masked-autoencoder pre-training, then the V2 fine-tuning recipe."""

from dataclasses import replace

from roadmap.recipes import v2_finetune_recipe
from roadmap.spec import Network, Pretrain, Spec, SpecError
from steps.registry import Step


class FcmaeError(SpecError):
    """A network, mask setting or input size FCMAE cannot use (a SpecError: the CLI exits 2)."""


def network_stride(network: Network) -> int:
    """Input pixels per last-stage position: the FCMAE patch size (32 for hierarchical ConvNeXts)."""
    downsamplings = 0 if network.downsampling == "none" else len(network.depths) - 1
    return network.stem_kernel * 2**downsamplings


def check_network(network: Network) -> None:
    """Refuse, in one line, a network whose dense computation cannot emulate the sparse one."""
    problems = []
    if network.stem not in ("patchify", "patchify_no_norm"):
        problems.append(f"a {network.stem!r} stem (overlapping windows mix masked and visible patches)")
    if network.norm != "layernorm":
        problems.append(f"{network.norm} (its batch statistics would include masked positions)")
    if network.downsampling == "in_block":
        problems.append("in-block strided downsampling (overlapping windows and projection shortcuts)")
    if problems:
        raise FcmaeError(
            "fcmae: needs a ConvNeXt-style network (patchify stem, LayerNorm, separate downsampling); "
            f"this spec has {'; '.join(problems)}"
        )


# The paper's mask ratio and epochs are `Pretrain`'s defaults (one owner: roadmap.spec).
def fcmae(spec: Spec, mask_ratio: float = Pretrain.mask_ratio, epochs: int = Pretrain.epochs) -> Spec:
    """Pre-train the encoder as a fully convolutional masked autoencoder, then fine-tune it.

    Pre-training masks `mask_ratio` of the 32x32 patches and reconstructs them for `epochs` epochs
    (800 in the paper's ablations); fine-tuning follows ConvNeXt V2's recipe for the model's size
    (layer-wise lr decay, EMA). The network is unchanged: only ConvNeXt-style ones (patchify stem,
    LayerNorm, separate downsampling) can run the sparse encoder, others are refused.
    """
    check_network(spec.network)
    pretrain = replace(spec.pretrain or Pretrain(), mask_ratio=mask_ratio, epochs=epochs)
    return replace(spec, recipe=v2_finetune_recipe(spec.network.stem_width), pretrain=pretrain)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "fcmae",
        fcmae,
        "FCMAE pre-training",
        "masked-autoencoder pre-training (60% of 32x32 patches), then V2 fine-tuning",
    ),
)
