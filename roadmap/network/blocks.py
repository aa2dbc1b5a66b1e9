"""The layers a roadmap network is made of, from torch.nn and timm.layers pieces.

Every network of every roadmap is a stem, stages of one residual block type, and a head
(roadmap.network.build assembles them). The block is a sequence of three convolutions (spatial kxk, two
pointwise) whose order, norms and activations come from the spec; read `ResidualBlock.forward` top
to bottom for the whole computation.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from timm.layers import DropPath, LayerNorm, LayerNorm2d, LayerScale2d, create_act_layer
from timm.layers.grn import GlobalResponseNorm
from torch import nn

from roadmap.spec import Network


def norm_layer(network: Network, channels: int, channels_last: bool = False) -> nn.Module:
    """The spec's norm for NCHW maps, or for NHWC / (N, C) features when `channels_last`."""
    if network.norm == "layernorm":
        # eps 1e-6 as in the official ConvNeXt and timm.
        return LayerNorm(channels, eps=1e-6) if channels_last else LayerNorm2d(channels, eps=1e-6)
    return nn.BatchNorm1d(channels) if channels_last else nn.BatchNorm2d(channels)


def activation_layer(network: Network) -> nn.Module:
    return create_act_layer(network.activation, inplace=network.activation == "relu")


def has_bias(network: Network, followed_by_norm: bool) -> bool:
    """A conv before a BatchNorm needs no bias (the norm's shift replaces it)."""
    if network.bias == "all":
        return True
    return not (followed_by_norm and network.norm == "batchnorm")


class BatchPooledGRN(GlobalResponseNorm):
    """GRN whose L2 norm runs over the whole batch's positions per channel, as the official sparse
    FCMAE encoder computes it; the same parameters and output as timm's GRN for a batch of one."""

    def __init__(self, channels: int, channels_last: bool) -> None:
        super().__init__(channels, channels_last=channels_last)
        self.spatial_dim = (0, *self.spatial_dim)


def grn_layer(network: Network, channels: int, channels_last: bool) -> nn.Module:
    """GRN with the spec's aggregation (roadmap.spec.GRN_POOLINGS): per sample (timm's) or per batch."""
    kind = GlobalResponseNorm if network.grn_pooling == "sample" else BatchPooledGRN
    return kind(channels, channels_last=channels_last)


class PartialConv(nn.Module):
    """Depthwise kxk conv on the last `ratio` of the channels; the rest pass through unchanged."""

    def __init__(self, channels: int, kernel_size: int, ratio: float, bias: bool) -> None:
        super().__init__()
        convolved = max(1, int(channels * ratio))
        self.split = (channels - convolved, convolved)
        self.conv = nn.Conv2d(convolved, convolved, kernel_size, padding=kernel_size // 2, groups=convolved, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity, convolved = torch.split(x, self.split, dim=1)
        return torch.cat((identity, self.conv(convolved)), dim=1)


class InceptionMixer(nn.Module):
    """InceptionNeXt's token mixer: square, 1xk and kx1 depthwise branches, the rest identity."""

    def __init__(self, channels: int, square: int, band: int, branch_ratio: float, bias: bool) -> None:
        super().__init__()
        branch = int(channels * branch_ratio)
        # Identity first, then square, horizontal, vertical: the order timm and the official code use.
        self.split = (channels - 3 * branch, branch, branch, branch)
        self.square = nn.Conv2d(branch, branch, square, padding=square // 2, groups=branch, bias=bias)
        self.band_width = nn.Conv2d(branch, branch, (1, band), padding=(0, band // 2), groups=branch, bias=bias)
        self.band_height = nn.Conv2d(branch, branch, (band, 1), padding=(band // 2, 0), groups=branch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity, square, horizontal, vertical = torch.split(x, self.split, dim=1)
        return torch.cat(
            (identity, self.square(square), self.band_width(horizontal), self.band_height(vertical)), dim=1
        )


def spatial_layer(network: Network, channels: int, stride: int) -> nn.Module:
    """The block's kxk token mixer on `channels` channels."""
    bias = has_bias(network, "spatial" in network.norm_sites)
    if network.mixer == "inception":
        return InceptionMixer(
            channels, network.kernel_size, network.inception_band_kernel, network.inception_branch_ratio, bias
        )
    if network.conv_ratio < 1.0:
        return PartialConv(channels, network.kernel_size, network.conv_ratio, bias)
    groups = channels if network.depthwise else network.groups
    return nn.Conv2d(
        channels,
        channels,
        network.kernel_size,
        stride=stride,
        padding=network.kernel_size // 2,
        groups=groups,
        bias=bias,
    )


class ResidualBlock(nn.Module):
    """Three convolutions in the spec's order, norms and activations where the spec puts them.

    Bottleneck (ResNet):   pointwise1 -> spatial -> pointwise2, hidden = width / 4
    Inverted (MobileNetV2): the same order, hidden = 4 x width
    Spatial-first (ConvNeXt): spatial -> pointwise1 -> pointwise2
    With LayerNorm in a spatial-first block the pointwise convs run as `nn.Linear` on NHWC
    tensors, as in the official ConvNeXt (same FLOPs, faster).
    """

    def __init__(
        self,
        network: Network,
        in_width: int,
        out_width: int,
        hidden_width: int,
        stride: int,
        drop_path: float,
        layer_scale_init: float,
    ) -> None:
        super().__init__()
        self.spatial_first = network.block_order == "spatial_first"
        self.channels_last = self.spatial_first and network.norm == "layernorm"
        spatial_width = in_width if self.spatial_first else hidden_width
        pointwise1_in = in_width

        self.spatial = spatial_layer(network, spatial_width, stride)
        self.spatial_norm = self._norm(network, "spatial", spatial_width)
        self.spatial_act = self._act(network, "spatial")
        self.pointwise1 = self._pointwise(network, pointwise1_in, hidden_width, "pointwise1")
        self.pointwise1_norm = self._norm(network, "pointwise1", hidden_width)
        self.pointwise1_act = self._act(network, "pointwise1")
        self.grn = grn_layer(network, hidden_width, self.channels_last) if network.grn else nn.Identity()
        self.pointwise2 = self._pointwise(network, hidden_width, out_width, "pointwise2")
        self.pointwise2_norm = self._norm(network, "pointwise2", out_width)
        self.layer_scale = LayerScale2d(out_width, layer_scale_init) if network.layer_scale else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.shortcut = self._shortcut(network, in_width, out_width, stride)
        self.residual_act = self._act(network, "residual")

    def _norm(self, network: Network, site: str, channels: int) -> nn.Module:
        if site not in network.norm_sites:
            return nn.Identity()
        # In a channels-last block every norm, the spatial one included, runs after the permute.
        return norm_layer(network, channels, self.channels_last)

    def _act(self, network: Network, site: str) -> nn.Module:
        return activation_layer(network) if site in network.activation_sites else nn.Identity()

    def _pointwise(self, network: Network, width_in: int, width_out: int, site: str) -> nn.Module:
        bias = has_bias(network, site in network.norm_sites)
        if self.channels_last:
            return nn.Linear(width_in, width_out, bias=bias)
        return nn.Conv2d(width_in, width_out, 1, bias=bias)

    @staticmethod
    def _shortcut(network: Network, in_width: int, out_width: int, stride: int) -> nn.Module:
        if stride == 1 and in_width == out_width:
            return nn.Identity()
        return nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_width, out_width, 1, stride=stride, bias=has_bias(network, True)),
                norm=norm_layer(network, out_width),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        if self.spatial_first:
            x = self.spatial(x)
            if self.channels_last:
                x = x.permute(0, 2, 3, 1)
            x = self.spatial_act(self.spatial_norm(x))
            x = self.pointwise1_act(self.pointwise1_norm(self.pointwise1(x)))
        else:
            x = self.pointwise1_act(self.pointwise1_norm(self.pointwise1(x)))
            x = self.spatial_act(self.spatial_norm(self.spatial(x)))
        x = self.grn(x)
        x = self.pointwise2_norm(self.pointwise2(x))
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        x = self.drop_path(self.layer_scale(x)) + shortcut
        return self.residual_act(x)


def stem_reduction(network: Network) -> int:
    """The stem's output stride: ResNet's kxk/2 conv then 3x3/2 max-pool, or a kxk/k patchify conv."""
    return 4 if network.stem == "resnet" else network.stem_kernel


def build_stem(network: Network) -> nn.Module:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    stride = 2 if network.stem == "resnet" else network.stem_kernel
    padding = network.stem_kernel // 2 if network.stem == "resnet" else 0
    layers["conv"] = nn.Conv2d(
        network.in_channels,
        network.stem_width,
        network.stem_kernel,
        stride=stride,
        padding=padding,
        bias=has_bias(network, True),
    )
    if network.stem != "patchify_no_norm":
        layers["norm"] = norm_layer(network, network.stem_width)
    if network.stem == "resnet":
        layers["act"] = activation_layer(network)
        layers["pool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return nn.Sequential(layers)


def build_downsample(network: Network, in_width: int, out_width: int, stride: int) -> nn.Module:
    """Separate downsampling layer: norm, then a kxk/k conv (1x1 when only the width changes)."""
    if stride == 1 and in_width == out_width:
        return nn.Identity()
    return nn.Sequential(
        OrderedDict(
            norm=norm_layer(network, in_width),
            conv=nn.Conv2d(in_width, out_width, stride, stride=stride, bias=has_bias(network, False)),
        )
    )
