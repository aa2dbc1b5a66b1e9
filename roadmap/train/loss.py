"""The training loss a recipe asks for: Mixup/CutMix with soft targets, label smoothing, or plain
cross-entropy; all of it timm's (roadmap.train.trainer wires it into the loop)."""

from __future__ import annotations

from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from roadmap.spec import Recipe


def recipe_loss(recipe: Recipe, step: str, per_device_batch: int, num_classes: int) -> tuple[Mixup | None, nn.Module]:
    """The batch mixing (None without Mixup/CutMix) and the criterion of `recipe`."""
    if recipe.mixup > 0 or recipe.cutmix > 0:
        if per_device_batch % 2:
            raise ValueError(f"{step}: Mixup/CutMix need an even batch per device, got {per_device_batch}")
        mixup = Mixup(
            mixup_alpha=recipe.mixup,
            cutmix_alpha=recipe.cutmix,
            prob=recipe.mixup_prob,
            switch_prob=recipe.mixup_switch_prob,
            mode="batch",
            label_smoothing=recipe.label_smoothing,
            num_classes=num_classes,
        )
        return mixup, SoftTargetCrossEntropy()
    if recipe.label_smoothing > 0:
        return None, LabelSmoothingCrossEntropy(smoothing=recipe.label_smoothing)
    return None, nn.CrossEntropyLoss()
