"""timm's parameter names -> the names of the equivalent `RoadmapNet` (roadmap.network.build).

Only names differ between timm's modules and ours; each family needs a few renaming rules. They
serve `--init` (a timm-format state dict as a step's starting weights) and the weight-for-weight
equality tests (tests/timm_weights.py), so that both rename the same way.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import torch

Rule = tuple[str, "str | Callable[[re.Match], str]"]

# (timm key pattern, our key) rules, applied in order; each rewrites the part of the key it matches.
RESNET_RULES: tuple[Rule, ...] = (
    (r"^conv1\.", "stem.conv."),
    (r"^bn1\.", "stem.norm."),
    (r"^layer(\d+)\.(\d+)\.conv1\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.pointwise1."),
    (r"^layer(\d+)\.(\d+)\.bn1\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.pointwise1_norm."),
    (r"^layer(\d+)\.(\d+)\.conv2\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.spatial."),
    (r"^layer(\d+)\.(\d+)\.bn2\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.spatial_norm."),
    (r"^layer(\d+)\.(\d+)\.conv3\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.pointwise2."),
    (r"^layer(\d+)\.(\d+)\.bn3\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.pointwise2_norm."),
    (r"^layer(\d+)\.(\d+)\.downsample\.0\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.shortcut.conv."),
    (r"^layer(\d+)\.(\d+)\.downsample\.1\.", lambda m: f"stages.{int(m[1]) - 1}.blocks.{m[2]}.shortcut.norm."),
    (r"^fc\.", "head.fc."),
)

# The stem and the downsampling layers, named alike in timm's ConvNeXt and InceptionNeXt (MetaNeXt).
PATCHIFY_STEM_RULES: tuple[Rule, ...] = (
    (r"^stem\.0\.", "stem.conv."),
    (r"^stem\.1\.", "stem.norm."),
    (r"^stages\.(\d+)\.downsample\.0\.", r"stages.\1.downsample.norm."),
    (r"^stages\.(\d+)\.downsample\.1\.", r"stages.\1.downsample.conv."),
)

CONVNEXT_RULES: tuple[Rule, ...] = (
    *PATCHIFY_STEM_RULES,
    (r"\.conv_dw\.", ".spatial."),
    (r"\.blocks\.(\d+)\.norm\.", r".blocks.\1.spatial_norm."),
    (r"\.mlp\.fc1\.", ".pointwise1."),
    (r"\.mlp\.fc2\.", ".pointwise2."),
    (r"\.mlp\.grn\.", ".grn."),
    (r"\.blocks\.(\d+)\.gamma$", r".blocks.\1.layer_scale.gamma"),
    (r"^norm_pre\.", "head.norm."),
    (r"^head\.norm\.", "head.norm."),
    (r"^head\.fc\.", "head.fc."),
)

# ConvNeXt V2 is timm's ConvNeXt with GRN (`mlp.grn`, covered above) and no LayerScale. Its small
# variants use 1x1 convs where ours use Linear layers; `convert_state_dict` reshapes those weights.
CONVNEXT_V2_RULES = CONVNEXT_RULES

INCEPTION_NEXT_RULES: tuple[Rule, ...] = (
    *PATCHIFY_STEM_RULES,
    (r"\.token_mixer\.dwconv_hw\.", ".spatial.square."),
    (r"\.token_mixer\.dwconv_w\.", ".spatial.band_width."),
    (r"\.token_mixer\.dwconv_h\.", ".spatial.band_height."),
    (r"\.blocks\.(\d+)\.norm\.", r".blocks.\1.spatial_norm."),
    (r"\.mlp\.fc1\.", ".pointwise1."),
    (r"\.mlp\.fc2\.", ".pointwise2."),
    (r"\.blocks\.(\d+)\.gamma$", r".blocks.\1.layer_scale.gamma"),
    (r"^head\.fc1\.", "head.hidden.fc."),
    (r"^head\.norm\.", "head.hidden.norm."),
    (r"^head\.fc2\.", "head.fc."),
)

FAMILY_RULES: Mapping[str, tuple[Rule, ...]] = {
    "resnet": RESNET_RULES,
    "convnext": CONVNEXT_RULES,
    "convnextv2": CONVNEXT_V2_RULES,
    "inception_next": INCEPTION_NEXT_RULES,
}


def rename(key: str, rules: tuple[Rule, ...]) -> str:
    """One timm key in our names: every rule that matches rewrites its part of the key, in order."""
    for pattern, replacement in rules:
        renamed, count = re.subn(pattern, replacement, key, count=1)
        if count:
            key = renamed
    return key


def is_pointwise_conv_of(tensor: torch.Tensor, target: Any) -> bool:
    """Whether `tensor` is a 1x1 conv's weight (out, in, 1, 1) holding the Linear weight (out, in) of
    `target`'s shape. Only this pair is the same layer in another shape; any other mismatch (a
    transposed or otherwise reshaped tensor of equal size) is another layer and must stay visible."""
    return tuple(tensor.shape) == (*target.shape, 1, 1)


def convert_state_dict(
    state: Mapping[str, torch.Tensor], family: str, ours: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """timm state dict -> our key names, with the 1x1 convs of timm's small ConvNeXt V2 variants
    reshaped to our Linear layers; every other tensor keeps its shape, so a mismatch is reported by
    whoever loads the result. `ours`: our network's state dict (or any mapping of our names to
    tensors of the target shapes). KeyError for a timm key that maps to none of ours."""
    rules = FAMILY_RULES[family]
    converted = {}
    for key, tensor in state.items():
        new_key = rename(key, rules)
        if new_key not in ours:
            raise KeyError(f"timm key {key!r} maps to {new_key!r}, which our model does not have")
        target = ours[new_key]
        converted[new_key] = tensor.reshape(target.shape) if is_pointwise_conv_of(tensor, target) else tensor
    return converted
