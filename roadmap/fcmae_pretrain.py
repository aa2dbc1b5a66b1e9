"""FCMAE's pre-training model, optimiser and schedule, and fine-tuning's layer-wise lr decay
(papers.md 5.2).

`FcmaeModel` is what the training loop trains in the pre-training phase (roadmap.fcmae_trainer):
masked encoder + decoder, returning the masked-patch loss. The factories build the optimiser and
schedule with timm as the official pre-training does (AdamW (0.9, 0.95), weight decay 0.05, lr =
1.5e-4 x batch / 256, cosine to 0 after a linear warm-up), and `layer_decay_param_groups` gives
fine-tuning its layer-wise learning-rate decay through timm's `param_groups_layer_decay`.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from timm.optim import create_optimizer_v2, param_groups_layer_decay
from timm.scheduler import create_scheduler_v2
from torch import nn

from roadmap.build import RoadmapNet
from roadmap.fcmae import FcmaeError, MaskedEncoder, MaskGenerator
from roadmap.fcmae_decoder import FcmaeDecoder, reconstruction_loss

PRETRAIN_BETAS = (0.9, 0.95)
PRETRAIN_WEIGHT_DECAY = 0.05


class FcmaeModel(nn.Module):
    """Encoder and decoder as one module: `model(images, masked)` is the reconstruction loss."""

    def __init__(self, encoder: MaskedEncoder, decoder: FcmaeDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, images: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        predictions = self.decoder(self.encoder(images, masked), masked)
        return reconstruction_loss(predictions, images, masked, self.encoder.patch_size)


def pretrain_step(
    model: FcmaeModel, images: torch.Tensor, mask_generator: MaskGenerator, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One pre-training forward: draw masks, encode the visible patches, decode, masked MSE."""
    masked = mask_generator(images.shape[0], images.shape[2], images.shape[3], generator, images.device)
    return model(images, masked)


def create_pretrain_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = PRETRAIN_WEIGHT_DECAY,
    betas: tuple[float, float] = PRETRAIN_BETAS,
) -> torch.optim.Optimizer:
    """AdamW over encoder and decoder; 1-D parameters (biases, norms, GRN) without weight decay."""
    return create_optimizer_v2(
        model, opt="adamw", lr=lr, weight_decay=weight_decay, betas=betas, filter_bias_and_bn=True
    )


def create_pretrain_scheduler(
    optimizer: torch.optim.Optimizer, epochs: int, warmup_epochs: int, updates_per_epoch: int
) -> tuple[Any, int]:
    """Cosine to 0 with a linear warm-up from 0, updated every optimiser step as the official code."""
    if not 0 <= warmup_epochs < epochs:
        raise FcmaeError(f"fcmae warm-up must be shorter than the {epochs} epochs, got {warmup_epochs}")
    return create_scheduler_v2(
        optimizer,
        sched="cosine",
        # With warmup_prefix timm appends the warm-up to num_epochs; the official total includes it.
        num_epochs=epochs - warmup_epochs,
        warmup_epochs=warmup_epochs,
        warmup_lr=0.0,
        min_lr=0.0,
        # The official schedule: the cosine spans the epochs after the warm-up (timm's default
        # starts it at step 0, so the warm-up would end below the peak lr).
        warmup_prefix=True,
        step_on_epochs=False,
        updates_per_epoch=updates_per_epoch,
    )


class _LayerGroups(nn.Module):
    """The network's own children under the same names, plus the `group_matcher` timm reads.

    `single`: one layer per block, a stage's downsampling layer shares its first block's layer;
    the stem is layer 0 and the head the last (decay^0 = 1). `group`: the official ConvNeXt V2
    grouping for 12 layers (ConvNeXt-B), three consecutive blocks of stage 3 per layer.
    """

    def __init__(self, network: RoadmapNet, kind: str) -> None:
        super().__init__()
        for name, child in network.named_children():
            self.add_module(name, child)
        self.kind = kind

    def group_matcher(self, coarse: bool = False) -> Any:
        if self.kind == "single":
            return {
                "stem": r"^stem",
                "blocks": [(r"^stages\.(\d+)\.downsample", (0,)), (r"^stages\.(\d+)\.blocks\.(\d+)", None)],
            }
        return self._grouped_ordinal

    @staticmethod
    def _grouped_ordinal(name: str) -> tuple[float, ...]:
        match = re.match(r"^stages\.(\d+)\.(?:blocks\.(\d+)|downsample)", name)
        if name.startswith("stem"):
            return (0,)
        if match is None:
            return (float("inf"),)  # the head
        stage, block = int(match.group(1)), int(match.group(2) or 0)
        if stage < 2:
            return (stage + 1,)
        if stage == 2:
            return (3 + block // 3,)
        return (12,)


def layer_decay_param_groups(
    network: RoadmapNet, layer_decay: float, weight_decay: float, kind: str = "single"
) -> list[dict[str, Any]]:
    """timm's layer-decay groups: each carries `lr_scale` = layer_decay ** (last layer - its layer)."""
    if kind not in ("single", "group"):
        raise FcmaeError(f"layer decay kind must be 'single' or 'group', got {kind!r}")
    if not 0.0 < layer_decay <= 1.0:
        raise FcmaeError(f"layer decay must be in (0, 1], got {layer_decay}")
    return param_groups_layer_decay(_LayerGroups(network, kind), weight_decay=weight_decay, layer_decay=layer_decay)


def create_finetune_optimizer(
    network: RoadmapNet, lr: float, weight_decay: float, layer_decay: float, kind: str = "single"
) -> torch.optim.Optimizer:
    """AdamW over the layer-decay groups; timm's schedulers multiply each group's lr by its lr_scale."""
    groups = layer_decay_param_groups(network, layer_decay, weight_decay, kind)
    return create_optimizer_v2(groups, opt="adamw", lr=lr, weight_decay=weight_decay)
