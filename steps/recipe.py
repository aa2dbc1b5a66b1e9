"""Row "ResNet-50 (enhanced recipe)": the paper's modern training recipe (Table 5), no EMA."""

from dataclasses import replace

from roadmap.recipes import MODERN
from roadmap.spec import Spec
from steps.registry import Step


def modern_recipe(spec: Spec, drop_path_rate: float = 0.1) -> Spec:
    """Switch to AdamW, 300 epochs, Mixup/CutMix, RandAugment, stochastic depth and LayerScale."""
    return replace(spec.with_network(layer_scale=True), recipe=replace(MODERN, drop_path_rate=drop_path_rate))


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "recipe",
        modern_recipe,
        "enhanced recipe",
        "modern training recipe (AdamW, 300 ep, Mixup/CutMix, RandAugment, ...)",
    ),
)
