"""FCMAE's decoder and loss (ConvNeXt V2, papers.md 5.2).

The decoder projects the encoder's last-stage features to 512 channels with a 1x1 conv, fills the
masked positions with one learnable mask token, runs a single ConvNeXt V2 block (the official
fcmae.py uses the V2 block, GRN included, for V1 and V2 encoders alike, so the co-design ablation
changes the encoder only) and predicts patch x patch x 3 pixel values per position with a 1x1 conv.
The loss is the MSE on masked patches only, against pixels normalised per patch (MAE's
norm_pix_loss).
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

from roadmap.fcmae.masking import MaskedEncoder
from roadmap.network.blocks import ResidualBlock
from roadmap.spec import Network

DECODER_WIDTH = 512

# The ConvNeXt V2 block: depthwise 7x7, LN, Linear 4x, GELU, GRN, Linear; no LayerScale. Only the
# block fields of this Network matter (the builder's ResidualBlock reads nothing else).
DECODER_BLOCK = Network(
    stem="patchify",
    stem_kernel=4,
    expansions=(4.0,) * 4,
    block_order="spatial_first",
    kernel_size=7,
    depthwise=True,
    norm_sites=("spatial",),
    activation_sites=("pointwise1",),
    norm="layernorm",
    activation="gelu",
    layer_scale=False,
    grn=True,
    downsampling="separate",
)


class FcmaeDecoder(nn.Module):
    """Encoder features (N, C, rows, columns) and masks -> per-patch predictions (N, patches, p*p*3)."""

    def __init__(self, encoder_width: int, patch_size: int, width: int = DECODER_WIDTH, in_channels: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.project = nn.Conv2d(encoder_width, width, 1)
        self.mask_token = nn.Parameter(torch.zeros(1, width, 1, 1))
        self.block = ResidualBlock(
            DECODER_BLOCK, width, width, 4 * width, stride=1, drop_path=0.0, layer_scale_init=0.0
        )
        self.predict = nn.Conv2d(width, patch_size * patch_size * in_channels, 1)
        self._initialise()

    def _initialise(self) -> None:
        # The official decoder: truncated normal (std 0.02) weights, zero biases, mask token N(0, 0.02).
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, features: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        x = self.project(features)
        masked_map = masked.unsqueeze(1).to(x.dtype)
        x = x * (1.0 - masked_map) + self.mask_token.to(x.dtype) * masked_map
        predictions = self.predict(self.block(x))
        # (N, p*p*3, rows, columns) -> (N, patches, p*p*3): the layout `patchify` gives the targets.
        return predictions.flatten(2).transpose(1, 2)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, patches, p*p*C), patches in row-major order, pixels as (row, col, channel)."""
    batch, channels, height, width = images.shape
    rows, columns = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, columns, patch_size)
    patches = patches.permute(0, 2, 4, 3, 5, 1)
    return patches.reshape(batch, rows * columns, patch_size * patch_size * channels)


def normalised_patches(images: torch.Tensor, patch_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch standardised pixels: MAE's norm_pix_loss target (unbiased variance, as MAE's)."""
    patches = patchify(images, patch_size)
    mean = patches.mean(dim=-1, keepdim=True)
    variance = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (variance + eps).sqrt()


def reconstruction_loss(
    predictions: torch.Tensor, images: torch.Tensor, masked: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """Mean squared error over the masked patches only; visible patches do not contribute."""
    target = normalised_patches(images, patch_size)
    per_patch = (predictions.float() - target.float()).pow(2).mean(dim=-1)
    # Selecting (not weighting) the masked patches: a non-finite visible prediction cannot leak in.
    # torch.where keeps the shapes static (boolean indexing would break a compiled graph).
    selected = masked.flatten(1)
    return torch.where(selected, per_patch, torch.zeros_like(per_patch)).sum() / selected.sum()


def build_decoder(encoder: MaskedEncoder, width: int = DECODER_WIDTH) -> FcmaeDecoder:
    """The decoder matching `encoder`'s last-stage width and patch size."""
    return FcmaeDecoder(encoder.width, encoder.patch_size, width)
