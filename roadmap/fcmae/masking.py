"""FCMAE (ConvNeXt V2, papers.md 5.2): random patch masks and the masked (sparse) encoder.

The encoder is the plain network our builder returns, with forward hooks that make its dense
computation equal to the submanifold sparse network of the paper: the binary visibility mask is
applied before and after every spatial convolution (stem, downsampling, depthwise/mixer) and before
every GRN, whose global L2 norm must see only visible positions. LayerNorm, the pointwise Linear
layers, GELU, LayerScale and DropPath act per position (or per sample), so masked positions never
reach a visible one through them. The hooks hold no weights: the module being pre-trained is the
network itself, and `release()` hands it back unchanged for fine-tuning.

Masks are boolean tensors (N, grid_h, grid_w), True where a patch is masked, drawn at the last
stage's grid (one patch per last-stage position) and upsampled by repetition to any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from timm.layers.grn import GlobalResponseNorm
from torch import nn

from roadmap.network.blocks import ResidualBlock
from roadmap.network.build import RoadmapNet, Stage
from roadmap.spec import Pretrain
from steps.fcmae import FcmaeError, check_network, network_stride


@dataclass(frozen=True)
class MaskGenerator:
    """Random masks of `ratio` of the `patch_size` x `patch_size` patches, one per sample.

    As in the official code, a sample keeps floor(patches x (1 - ratio)) patches, clamped so that at
    least one patch stays visible and at least one is masked: 224 px (7x7 = 49 patches) masks 30
    (0.61); 64 px (2x2) masks 3 of 4; 96 px (3x3) masks 6 of 9. A 32 px input has a single patch,
    which cannot be both seen and predicted, so it is refused.
    """

    ratio: float = Pretrain.mask_ratio
    patch_size: int = Pretrain.patch

    def __post_init__(self) -> None:
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0.0 < self.ratio < 1.0:
            raise FcmaeError(f"fcmae mask ratio must be in (0, 1), got {self.ratio!r}")
        if self.patch_size < 1:
            raise FcmaeError(f"fcmae patch size must be positive, got {self.patch_size}")

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patches per column and row of a `height` x `width` input."""
        if height % self.patch_size or width % self.patch_size:
            raise FcmaeError(f"fcmae input {height}x{width} px is not a multiple of the {self.patch_size} px patch")
        rows, columns = height // self.patch_size, width // self.patch_size
        if rows * columns < 2:
            raise FcmaeError(
                f"fcmae input {height}x{width} px has {rows * columns} patch of {self.patch_size} px; "
                f"masking needs at least 2 (one visible, one masked): use >= {2 * self.patch_size} px"
            )
        return rows, columns

    def masked_count(self, patches: int) -> int:
        kept = int(patches * (1.0 - self.ratio))
        return patches - min(max(kept, 1), patches - 1)

    def __call__(
        self,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Boolean masks (batch, rows, columns), True = masked; reproducible through `generator`."""
        rows, columns = self.grid(height, width)
        patches = rows * columns
        # Random ranks per sample: the patches ranked last are masked (exactly masked_count each).
        noise = torch.rand(batch, patches, generator=generator)
        order = noise.argsort(dim=1)
        masked = torch.zeros(batch, patches, dtype=torch.bool)
        masked.scatter_(1, order[:, patches - self.masked_count(patches) :], True)
        return masked.reshape(batch, rows, columns).to(device)


def visible_map(masked: torch.Tensor, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
    """The (N, 1, height, width) map that is 1 on visible positions, upsampled from the patch grid."""
    rows, columns = masked.shape[-2:]
    if height % rows or width % columns:
        raise FcmaeError(f"fcmae: a {height}x{width} feature map does not tile the {rows}x{columns} mask grid")
    visible = (~masked).unsqueeze(1).to(dtype)
    return visible.repeat_interleave(height // rows, dim=2).repeat_interleave(width // columns, dim=3)


class MaskedEncoder(nn.Module):
    """A ConvNeXt-style `RoadmapNet` computing as a submanifold sparse network on visible patches.

    `encoder(images, masked)` returns the last stage's features (N, C, rows, columns), zero at
    masked positions; with `masked=None` it is the plain network's `forward_features`.
    """

    def __init__(self, network: RoadmapNet) -> None:
        super().__init__()
        if not isinstance(network, RoadmapNet):
            raise FcmaeError(f"fcmae wraps a network built by roadmap.build, got {type(network).__name__}")
        check_network(network.spec.network)
        self.network = network
        self.patch_size = network_stride(network.spec.network)
        self.width = network.spec.network.widths[-1]
        # The mask of the forward pass in progress; the hooks read it, None outside a masked pass.
        self._masked: torch.Tensor | None = None
        self._handles = [
            handle for module, channels_last in self._masked_modules() for handle in self._hook(module, channels_last)
        ]

    def _masked_modules(self) -> list[tuple[nn.Module, bool]]:
        """Every module whose input must be masked: spatial convs and GRNs (with their layout)."""
        network = self.network
        modules: list[tuple[nn.Module, bool]] = [(network.stem.conv, False)]
        for stage in network.stages:
            assert isinstance(stage, Stage)
            if isinstance(stage.downsample, nn.Sequential):
                modules.append((stage.downsample.conv, False))
            for block in stage.blocks:
                assert isinstance(block, ResidualBlock)
                modules.append((block.spatial, False))
                if isinstance(block.grn, GlobalResponseNorm):
                    modules.append((block.grn, block.channels_last))
        return modules

    def _hook(self, module: nn.Module, channels_last: bool) -> list[Any]:
        handles = [module.register_forward_pre_hook(partial(self._mask_input, channels_last=channels_last))]
        if not isinstance(module, GlobalResponseNorm):
            # A convolution's output at masked positions (its bias, or visible pixels reaching
            # into a masked window) is zeroed: submanifold convs compute visible sites only. Since
            # every reader of those sites (next conv, GRN, the encoder's output) masks its input
            # too, this is belt and braces, kept so every intermediate matches the sparse network.
            handles.append(module.register_forward_hook(self._mask_output))
        return handles

    def _apply_mask(self, features: torch.Tensor, channels_last: bool) -> torch.Tensor:
        if self._masked is None:
            return features
        height, width = features.shape[1:3] if channels_last else features.shape[2:4]
        visible = visible_map(self._masked, height, width, features.dtype)
        return features * (visible.permute(0, 2, 3, 1) if channels_last else visible)

    def _mask_input(self, module: nn.Module, args: tuple[Any, ...], channels_last: bool) -> tuple[Any, ...]:
        return (self._apply_mask(args[0], channels_last),) + tuple(args[1:])

    def _mask_output(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return self._apply_mask(output, channels_last=False)

    def forward(self, images: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        if masked is None:
            return self.network.forward_features(images)
        self._check_mask(images, masked)
        self._masked = masked
        try:
            # Masking the input keeps masked pixels out of the computation by construction; masking
            # the output zeroes what the residual stream carries at masked positions (LayerNorm's
            # shift, GRN's bias): the sparse network has no such sites.
            features = self.network.forward_features(self._apply_mask(images, channels_last=False))
            return self._apply_mask(features, channels_last=False)
        finally:
            self._masked = None

    def _check_mask(self, images: torch.Tensor, masked: torch.Tensor) -> None:
        rows, columns = images.shape[2] // self.patch_size, images.shape[3] // self.patch_size
        if masked.dtype != torch.bool or tuple(masked.shape) != (images.shape[0], rows, columns):
            raise FcmaeError(
                f"fcmae mask must be boolean ({images.shape[0]}, {rows}, {columns}) for "
                f"{tuple(images.shape)} images, got {masked.dtype} {tuple(masked.shape)}"
            )

    def release(self) -> RoadmapNet:
        """Remove the hooks and return the plain network (the dense model to fine-tune)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return self.network


def encoder_state_dict(encoder: MaskedEncoder) -> dict[str, torch.Tensor]:
    """The pre-trained weights under the plain network's names, without the (untrained) head."""
    return {name: value for name, value in encoder.network.state_dict().items() if not name.startswith("head.")}


def load_pretrained(network: RoadmapNet, state: dict[str, torch.Tensor]) -> None:
    """Load pre-trained encoder weights into a plain network; only the head may stay as initialised."""
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches: torch's message spans several lines
        first = str(error).splitlines()[-1].strip()
        raise FcmaeError(f"fcmae checkpoint does not match the network: {first}") from None
    missing = [name for name in result.missing_keys if not name.startswith("head.")]
    if missing or result.unexpected_keys:
        raise FcmaeError(
            f"fcmae checkpoint does not match the network: missing {missing[:3]}, "
            f"unexpected {list(result.unexpected_keys)[:3]}"
        )
