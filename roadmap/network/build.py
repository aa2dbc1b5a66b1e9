"""One generic builder: `Spec` -> `RoadmapNet`, a network with timm's model interface.

Every network of every roadmap (ResNet-50 through ConvNeXt, plus the V2 and InceptionNeXt
extensions) is a stem, a list of stages of one residual block type (roadmap.network.blocks), and a head.
`RoadmapNet` offers what timm's tests/test_models.py checks of a model: forward_features /
forward_head, classifier get and reset, pretrained_cfg, feature_info (so `features_only` works
through timm's builder), forward_intermediates, gradient checkpointing, group_matcher and
no_weight_decay. roadmap.network.timm_registry registers every roadmap row with timm.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import LayerNorm, SelectAdaptivePool2d, calculate_drop_path_rates, create_act_layer, trunc_normal_
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices
from torch import nn

from roadmap.network.blocks import ResidualBlock, build_downsample, build_stem, norm_layer, stem_reduction
from roadmap.spec import Network, Spec

# The resolution the papers train and test at; what `pretrained_cfg` describes.
PAPER_RESOLUTION = 224


def build(spec: Spec) -> RoadmapNet:
    """Build the network described by `spec`, initialised as its recipe says."""
    model = RoadmapNet(spec)
    initialise(model, spec.recipe.weight_init)
    return model


def stage_stride(network: Network, index: int) -> int:
    """Stage `index` halves the resolution unless it is the first or the network is isotropic."""
    return 1 if index == 0 or network.downsampling == "none" else 2


def stage_reductions(network: Network) -> list[int]:
    """Each stage's output stride: the stem's (roadmap.network.blocks.stem_reduction) times the stages' strides."""
    reductions = [stem_reduction(network)]
    for index in range(1, len(network.depths)):
        reductions.append(reductions[-1] * stage_stride(network, index))
    return reductions


def pretrained_config(spec: Spec, resolution: int = PAPER_RESOLUTION) -> dict[str, Any]:
    """timm's pretrained_cfg of the network: input, evaluation crop and the names of its first conv
    and classifier (used by timm to adapt `in_chans` and to drop the classifier for new classes)."""
    network = spec.network
    pooled = resolution // stage_reductions(network)[-1]
    return {
        "url": "",
        "num_classes": network.num_classes,
        "input_size": (network.in_channels, resolution, resolution),
        "pool_size": (pooled, pooled),
        "crop_pct": spec.recipe.crop_pct,
        "interpolation": spec.recipe.interpolation,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv",
        "classifier": "head.fc",
    }


def exempt_from_weight_decay(name: str, parameter: torch.Tensor) -> bool:
    """What the official modern recipes train without weight decay: 1-D tensors (norm affines,
    LayerScale, GRN) and biases."""
    return parameter.ndim <= 1 or name.endswith(".bias")


class Stage(nn.Module):
    """An optional downsampling layer, then the blocks (run under gradient checkpointing when set)."""

    def __init__(self, downsample: nn.Module, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.Sequential(*blocks)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class Head(nn.Module):
    """Global average pool, then linear / norm + linear / InceptionNeXt's MLP head.

    `reset` works as timm's heads: 0 classes leave the pre-logits features; pooling off ('') needs
    0 classes and passes the final feature map through unchanged, since the norm and the MLP act on
    pooled vectors.
    """

    def __init__(self, network: Network, width: int) -> None:
        super().__init__()
        self.pool = SelectAdaptivePool2d(pool_type="avg", flatten=True)
        self.norm: nn.Module = nn.Identity()
        self.hidden: nn.Module = nn.Identity()
        if network.head == "norm_linear":
            self.norm = norm_layer(network, width, channels_last=True)
        elif network.head == "mlp":
            hidden = int(width * network.head_hidden_ratio)
            self.hidden = nn.Sequential(
                OrderedDict(fc=nn.Linear(width, hidden), act=create_act_layer("gelu"), norm=LayerNorm(hidden, eps=1e-6))
            )
            width = hidden
        self.hidden_size = width
        self.fc: nn.Module = nn.Identity()
        self.reset(network.num_classes)

    def reset(self, num_classes: int, global_pool: str | None = None) -> None:
        pool_type = self.pool.pool_type if global_pool is None else global_pool
        if not pool_type and num_classes > 0:
            raise ValueError(f"a head without pooling ('') has no classifier: got num_classes={num_classes}, use 0")
        self.pool = SelectAdaptivePool2d(pool_type=pool_type, flatten=True)
        self.fc = nn.Linear(self.hidden_size, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.pool.is_identity():
            return x
        x = self.hidden(self.norm(self.pool(x)))
        return x if pre_logits else self.fc(x)


class RoadmapNet(nn.Module):
    """Stem, stages, head; built from a `Spec` and nothing else, with timm's model interface."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        network, recipe = spec.network, spec.recipe
        self.spec = spec
        self.stem = build_stem(network)
        rates = calculate_drop_path_rates(recipe.drop_path_rate, list(network.depths), stagewise=True)
        stages = []
        width = network.stem_width
        for index, (depth, out_width) in enumerate(zip(network.depths, network.widths)):
            stride = stage_stride(network, index)
            block_stride = stride if network.downsampling == "in_block" else 1
            if network.downsampling == "in_block":
                downsample: nn.Module = nn.Identity()
            else:
                downsample = build_downsample(network, width, out_width, stride)
                width = out_width
            blocks = []
            for block_index in range(depth):
                blocks.append(
                    ResidualBlock(
                        network,
                        width,
                        out_width,
                        network.hidden_width(index),
                        block_stride if block_index == 0 else 1,
                        rates[index][block_index],
                        recipe.layer_scale_init,
                    )
                )
                width = out_width
            stages.append(Stage(downsample, blocks))
        self.stages = nn.Sequential(*stages)
        self.head = Head(network, width)
        # timm's attributes: classes, final feature width, pre-logits width, and one entry per stage
        # for its feature extractors (FeatureListNet finds the modules by these names).
        self.num_classes = network.num_classes
        self.num_features = width
        self.head_hidden_size = self.head.hidden_size
        self.feature_info = [
            {"num_chs": channels, "reduction": reduction, "module": f"stages.{index}"}
            for index, (channels, reduction) in enumerate(zip(network.widths, stage_reductions(network)))
        ]
        self.pretrained_cfg = self.default_cfg = pretrained_config(spec)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier for `num_classes` (0: none); `global_pool` '' also turns pooling off."""
        self.head.reset(num_classes, global_pool)
        self.num_classes = num_classes

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The stages' outputs (`indices`: the last n stages if an int, those listed, or all) and the
        final features, as timm's models return them. `norm` changes nothing: no norm sits between
        the last stage and the head."""
        if output_fmt != "NCHW":
            raise ValueError(f"roadmap networks give NCHW features, not {output_fmt}")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        intermediates = []
        x = self.stem(x)
        for index, stage in enumerate(stages):
            x = stage(x)
            if index in take_indices:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last one `indices` takes, and the head (timm's API)."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        pruned_end = max_index < len(self.stages) - 1
        self.stages = self.stages[: max_index + 1]
        if pruned_end:
            # The head was sized for the last stage's width: a new one (uninitialised, as timm's
            # reset_other) fits the kept stages, so a later reset_classifier(n, "avg") works.
            self.num_features = self.feature_info[max_index]["num_chs"]
            self.head = Head(self.spec.network, self.num_features)
            self.head_hidden_size = self.head.hidden_size
        if prune_head or pruned_end:
            self.reset_classifier(0, "")
        return take_indices

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for stage in self.stages:
            stage.grad_checkpointing = enable

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's parameter groups: the stem, then one group per stage (`coarse`) or per block with
        a stage's downsampling layer in its first block's group; the head is the last group.
        roadmap.train.optimisation maps these groups to ConvNeXt V2's official layer ids."""
        blocks = [(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None)]
        return {"stem": r"^stem\.", "blocks": r"^stages\.(\d+)" if coarse else blocks}

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """The parameters this network's recipe trains without weight decay (none under torchvision's
        recipe, which decays every parameter)."""
        if not self.spec.recipe.no_decay_1d:
            return set()
        return {name for name, parameter in self.named_parameters() if exempt_from_weight_decay(name, parameter)}


def initialise(model: nn.Module, scheme: str) -> None:
    """`kaiming`: torchvision's ResNet init. `trunc_normal`: ConvNeXt's (std 0.02, zero biases)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if scheme == "trunc_normal":
                trunc_normal_(module.weight, std=0.02)
            elif isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None and scheme == "trunc_normal":
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
