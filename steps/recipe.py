"""Row "ResNet-50 (enhanced recipe)": the paper's modern training recipe (Table 5), no EMA."""

from dataclasses import replace

from roadmap.recipes import MODERN
from roadmap.spec import Spec


def modern_recipe(spec: Spec, drop_path_rate: float = 0.1) -> Spec:
    """Switch to AdamW, 300 epochs, Mixup/CutMix, RandAugment, stochastic depth and LayerScale."""
    return replace(
        spec.with_network(layer_scale=True),
        recipe=replace(MODERN, drop_path_rate=drop_path_rate),
    )
