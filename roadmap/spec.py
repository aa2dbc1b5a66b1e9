"""The immutable description of one roadmap row: a network plus its training recipe.

A `Spec` is plain data (frozen dataclasses of numbers, strings and tuples). Steps are pure
functions `Spec -> Spec` built on `dataclasses.replace`; the builder turns a spec into an
`nn.Module`. Specs serialise to JSON and carry a stable content hash that keys results on disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

from roadmap.errors import UserError

# Names of the three convolutions of a residual block, independent of their order. Norms and
# activations are attached to these roles (not to positions) so that moving the depthwise conv
# up keeps its norm and activation with it, and steps commute where the paper's order is arbitrary.
CONV_ROLES = ("spatial", "pointwise1", "pointwise2")
ACTIVATION_SITES = CONV_ROLES + ("residual",)

STEMS = ("resnet", "patchify", "patchify_no_norm")
BLOCK_ORDERS = ("pointwise_first", "spatial_first")
MIXERS = ("conv", "inception")
NORMS = ("batchnorm", "layernorm")
ACTIVATIONS = ("relu", "gelu")
DOWNSAMPLINGS = ("in_block", "separate", "none")
HEADS = ("linear", "norm_linear", "mlp")
INITS = ("kaiming", "trunc_normal")
LAYER_DECAY_KINDS = ("single", "group")
# Recipe fields added after the first results were written (see Spec.to_dict).
LATER_RECIPE_FIELDS = ("crop_scale", "layer_decay", "layer_decay_kind", "ema_reference_updates", "head_init_scale")
LATER_NETWORK_FIELDS = ("grn_pooling",)
# GRN's aggregation: "sample" = the L2 norm over each image's positions (the paper's equation, the
# official dense PyTorch model, timm); "batch" = over every position of the batch, as the official
# sparse FCMAE encoder's GRN computes it (its sparse tensor holds the whole batch as one point set).
GRN_POOLINGS = ("sample", "batch")


class SpecError(UserError, ValueError):
    """A spec, step or composition of steps that cannot describe a network."""


@dataclass(frozen=True)
class Network:
    """Architecture of one network, flat per stage in the spirit of pycls' AnyNet."""

    # Stem: "resnet" = kxk/2 conv, norm, activation, 3x3/2 max-pool; "patchify" = kxk/k conv, norm;
    # "patchify_no_norm" = the kxk/k conv alone (isotropic ConvNeXt).
    stem: str = "resnet"
    stem_kernel: int = 7
    stem_width: int = 64
    # Stages: depth and residual-stream (block output) width of each stage.
    depths: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (256, 512, 1024, 2048)
    # Hidden width of each block = round(output width x expansion): 0.25 is a ResNet bottleneck,
    # 4 an inverted bottleneck. One value per stage (InceptionNeXt uses 3 in its last stage).
    expansions: tuple[float, ...] = (0.25, 0.25, 0.25, 0.25)
    # Block: order of the three convolutions and where norms and activations sit.
    block_order: str = "pointwise_first"
    kernel_size: int = 3
    groups: int = 1
    depthwise: bool = False
    norm_sites: tuple[str, ...] = CONV_ROLES
    activation_sites: tuple[str, ...] = ("pointwise1", "spatial", "residual")
    norm: str = "batchnorm"
    activation: str = "relu"
    layer_scale: bool = False
    grn: bool = False
    grn_pooling: str = "sample"
    # Token mixer of the spatial conv: a (possibly partial) depthwise conv or InceptionNeXt's mixer.
    mixer: str = "conv"
    # Fraction of channels the spatial conv acts on; the rest pass through (InceptionNeXt Table 1).
    conv_ratio: float = 1.0
    inception_band_kernel: int = 11
    inception_branch_ratio: float = 0.125
    # Downsampling: stride 2 inside the first block of stages 2.. with a projection shortcut,
    # separate norm + 2x2/2 conv layers between stages, or none (isotropic).
    downsampling: str = "in_block"
    head: str = "linear"
    # "auto": a conv has a bias unless a BatchNorm follows it; "all": every conv has one (InceptionNeXt).
    bias: str = "auto"
    head_hidden_ratio: float = 3.0
    num_classes: int = 1000
    in_channels: int = 3

    def __post_init__(self) -> None:
        _check_choice("stem", self.stem, STEMS)
        _check_choice("block_order", self.block_order, BLOCK_ORDERS)
        _check_choice("mixer", self.mixer, MIXERS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        _check_choice("downsampling", self.downsampling, DOWNSAMPLINGS)
        _check_choice("head", self.head, HEADS)
        _check_choice("bias", self.bias, ("auto", "all"))
        _check_choice("grn_pooling", self.grn_pooling, GRN_POOLINGS)
        stages = len(self.depths)
        if stages == 0 or len(self.widths) != stages or len(self.expansions) != stages:
            raise SpecError(
                f"depths, widths and expansions must have one entry per stage, got "
                f"{len(self.depths)}, {len(self.widths)} and {len(self.expansions)}"
            )
        if min(self.depths) < 1 or min(self.widths) < 1 or self.stem_width < 1:
            raise SpecError("depths and widths must be positive")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise SpecError(f"kernel_size must be a positive odd number, got {self.kernel_size}")
        if not 0.0 < self.conv_ratio <= 1.0:
            raise SpecError(f"conv_ratio must be in (0, 1], got {self.conv_ratio}")
        for site in self.norm_sites:
            _check_choice("norm site", site, CONV_ROLES)
        for site in self.activation_sites:
            _check_choice("activation site", site, ACTIVATION_SITES)
        if self.depthwise and self.groups != 1:
            raise SpecError("set either depthwise or groups, not both")
        if self.downsampling == "none" and stages != 1:
            raise SpecError("downsampling 'none' (isotropic) needs exactly one stage")
        if self.mixer == "inception" and not (self.depthwise and self.block_order == "spatial_first"):
            raise SpecError("the inception mixer needs a depthwise, spatial-first block")
        if (self.mixer == "inception" or self.conv_ratio < 1.0) and self.downsampling == "in_block":
            raise SpecError("partial and inception mixers need separate downsampling layers")

    def hidden_width(self, stage: int) -> int:
        """Width of the block's inner features in `stage` (bottleneck or inverted)."""
        return max(1, round(self.widths[stage] * self.expansions[stage]))


@dataclass(frozen=True)
class Recipe:
    """A training recipe as data; names follow timm's argument names where timm takes them."""

    name: str = "legacy"
    epochs: int = 90
    # The learning rate is `lr` at `reference_batch_size` and scales linearly with the batch.
    batch_size: int = 256
    reference_batch_size: int = 256
    # timm optimizer names: "momentum" is SGD with classical momentum (torchvision's recipe);
    # timm's "sgd" would add Nesterov.
    opt: str = "momentum"
    lr: float = 0.1
    momentum: float = 0.9
    opt_eps: float = 1e-8
    opt_betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    # No weight decay on 1-D parameters (biases, norm affines, layer-scale gammas, GRN).
    no_decay_1d: bool = False
    sched: str = "step"
    decay_epochs: float = 30.0
    decay_rate: float = 0.1
    warmup_epochs: int = 0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    auto_augment: str | None = None
    mixup: float = 0.0
    cutmix: float = 0.0
    mixup_prob: float = 1.0
    mixup_switch_prob: float = 0.5
    label_smoothing: float = 0.0
    random_erasing: float = 0.0
    random_erasing_mode: str = "pixel"
    color_jitter: float | None = None
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    drop_path_rate: float = 0.0
    layer_scale_init: float = 1e-6
    weight_init: str = "kaiming"
    ema: bool = False
    # The decay at the paper's length. `ema_reference_updates` is that length in optimizer updates
    # (set when a preset resolves the recipe): a run of another length fits the decay so that the
    # EMA averages over the same fraction of training (roadmap.train.optimisation.fitted_ema_decay).
    ema_decay: float = 0.9999
    gradient_clip: float | None = None
    # RandomResizedCrop's area range (timm's default; FCMAE pre-training crops 0.2-1.0).
    crop_scale: tuple[float, float] = (0.08, 1.0)
    # Layer-wise learning-rate decay (ConvNeXt V2 fine-tuning, timm's parameter groups): "single"
    # = one layer per block, "group" = the official grouping of a 12-layer ConvNeXt-B. None: off.
    layer_decay: float | None = None
    layer_decay_kind: str = "single"
    ema_reference_updates: int | None = None
    # Fine-tuning's classifier starts at this scale of its initialisation (ConvNeXt V2's
    # head_init_scale 0.001, i.e. weights drawn with std 2e-5, zero bias); 1.0: as built.
    head_init_scale: float = 1.0

    def __post_init__(self) -> None:
        _check_choice("weight_init", self.weight_init, INITS)
        _check_choice("layer_decay_kind", self.layer_decay_kind, LAYER_DECAY_KINDS)
        if self.epochs < 1 or self.batch_size < 1:
            raise SpecError("recipe epochs and batch_size must be positive")
        if self.layer_decay is not None and not 0.0 < self.layer_decay <= 1.0:
            raise SpecError(f"layer_decay must be in (0, 1], got {self.layer_decay}")


@dataclass(frozen=True)
class Pretrain:
    """FCMAE masked-autoencoder pre-training (ConvNeXt V2, papers.md 5.2), run before the recipe,
    which then fine-tunes the pre-trained encoder. Batch and learning-rate rule as in `Recipe`."""

    # Pixels per side of a masked patch: one last-stage position of a hierarchical ConvNeXt.
    patch: ClassVar[int] = 32
    name: str = "fcmae"
    epochs: int = 800
    warmup_epochs: int = 40
    batch_size: int = 4096
    reference_batch_size: int = 4096
    # The official base lr 1.5e-4 per 256 images, stated at the pre-training batch of 4096.
    lr: float = 1.5e-4 * 4096 / 256
    weight_decay: float = 0.05
    opt_betas: tuple[float, float] = (0.9, 0.95)
    mask_ratio: float = 0.6
    decoder_width: int = 512
    crop_scale: tuple[float, float] = (0.2, 1.0)
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if (
            isinstance(self.mask_ratio, bool)
            or not isinstance(self.mask_ratio, (int, float))
            or not 0.0 < self.mask_ratio < 1.0
        ):
            raise SpecError(f"fcmae mask ratio must be in (0, 1), got {self.mask_ratio!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.decoder_width < 1:
            raise SpecError("fcmae epochs, batch_size and decoder_width must be positive")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise SpecError(f"fcmae warm-up must be shorter than its {self.epochs} epochs, got {self.warmup_epochs}")


@dataclass(frozen=True)
class Spec:
    """One row of a roadmap: what network to build and how to train it."""

    network: Network = field(default_factory=Network)
    recipe: Recipe = field(default_factory=Recipe)
    # Masked pre-training before `recipe` (the `fcmae` step); None: trained from scratch.
    pretrain: Pretrain | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        # Fields added after results were first written are left out while at their default, so
        # every spec that does not use them keeps its content hash, and finished steps their keys.
        for part, later in (("recipe", LATER_RECIPE_FIELDS), ("network", LATER_NETWORK_FIELDS)):
            defaults = type(getattr(self, part))()
            for name in later:
                if getattr(getattr(self, part), name) == getattr(defaults, name):
                    del data[part][name]
        if self.pretrain is None:
            del data["pretrain"]
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Spec":
        return cls(
            network=_from_mapping(Network, data.get("network", {})),
            recipe=_from_mapping(Recipe, data.get("recipe", {})),
            pretrain=_from_mapping(Pretrain, data["pretrain"]) if data.get("pretrain") else None,
        )

    @classmethod
    def from_json(cls, text: str) -> "Spec":
        return cls.from_dict(json.loads(text))

    def content_hash(self, extra: Mapping[str, Any] | None = None) -> str:
        """Stable short hash of the spec (and optional extra keys such as preset and seed)."""
        payload = {"spec": self.to_dict(), "extra": dict(extra or {})}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def with_network(self, **changes: Any) -> "Spec":
        return replace(self, network=replace(self.network, **changes))

    def with_recipe(self, **changes: Any) -> "Spec":
        return replace(self, recipe=replace(self.recipe, **changes))

    def with_pretrain(self, **changes: Any) -> "Spec":
        return replace(self, pretrain=replace(self.pretrain or Pretrain(), **changes))


def _from_mapping(kind: type, data: Mapping[str, Any]) -> Any:
    """Rebuild a frozen dataclass from JSON data, turning lists back into tuples."""
    known = {f.name for f in fields(kind)}
    unknown = set(data) - known
    if unknown:
        raise SpecError(f"unknown {kind.__name__} field(s): {', '.join(sorted(unknown))}")
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
    return kind(**values)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
