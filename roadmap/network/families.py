"""Model families as specs (`--model NAME`): ConvNeXt (and isotropic), ConvNeXt V2, InceptionNeXt, ResNet.

Each family starts from the end point of its roadmap (ConvNeXt-T, ConvNeXt V2-T, InceptionNeXt-T,
ResNet-50) and changes only what the papers change between sizes: blocks and channels per stage
(papers.md sections 4-6), plus the stochastic-depth rate and EMA where a paper prints them. A model
named like a timm model is that timm model, weight for weight (tests/test_models.py). Not to be
confused with the training presets of `--preset` (roadmap.train.presets: how big a run is).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Callable, Iterable, Mapping

from roadmap.network.roadmaps import compose, specs
from roadmap.network.roadmaps import row_label as step_row_label
from roadmap.recipes import LEGACY
from roadmap.spec import Spec, SpecError
from steps import REGISTRY, canonical_name


def _stage_widths(base: int) -> tuple[int, ...]:
    """ConvNeXt-style channels C, 2C, 4C, 8C."""
    return (base, 2 * base, 4 * base, 8 * base)


@functools.lru_cache(maxsize=None)
def _roadmap_end(roadmap: str, step: str) -> Spec:
    return dict(specs(roadmap, upto=step, branches=False))[step]


def _convnext(depths: tuple[int, ...], base: int, drop_path: float) -> Spec:
    """ConvNeXt (§3, Table 5 IN-1K recipe): the roadmap's ConvNeXt-T resized, with EMA as reported."""
    spec = _roadmap_end("resnet50", "sep_ds")
    spec = spec.with_network(depths=depths, stem_width=base, widths=_stage_widths(base))
    return spec.with_recipe(drop_path_rate=drop_path, ema=True)


def _convnext_isotropic(dim: int, depth: int, layer_scale: bool, drop_path: float) -> Spec:
    """Isotropic ConvNeXt (§3.3): 16x16/16 conv stem without a norm, one stage, GAP, LN, FC.

    The paper disables LayerScale for iso-S/B and keeps it for iso-L; warm-up is 50 epochs.
    """
    spec = _roadmap_end("resnet50", "sep_ds").with_network(
        stem="patchify_no_norm",
        stem_kernel=16,
        stem_width=dim,
        depths=(depth,),
        widths=(dim,),
        expansions=(4.0,),
        downsampling="none",
        layer_scale=layer_scale,
    )
    return spec.with_recipe(drop_path_rate=drop_path, ema=True, warmup_epochs=50)


def _convnext_v2(depths: tuple[int, ...], base: int) -> Spec:
    """ConvNeXt V2 (App. A.1): ConvNeXt V2-T resized. Its FCMAE pre-training recipe is not modelled."""
    spec = _roadmap_end("convnext_v2", "grn")
    return spec.with_network(depths=depths, stem_width=base, widths=_stage_widths(base))


def _inception_next(
    depths: tuple[int, ...], base: int, drop_path: float, band_kernel: int = 11, branch_ratio: float = 0.125
) -> Spec:
    """InceptionNeXt (Table 3): InceptionNeXt-T resized; Atto has 1x9/9x1 bands on 1/4 of the channels."""
    spec = _roadmap_end("inceptionnext", "inception")
    spec = spec.with_network(
        depths=depths,
        stem_width=base,
        widths=_stage_widths(base),
        inception_band_kernel=band_kernel,
        inception_branch_ratio=branch_ratio,
    )
    return spec.with_recipe(drop_path_rate=drop_path)


def _resnet(depths: tuple[int, ...]) -> Spec:
    """torchvision's bottleneck ResNet with its 90-epoch recipe (the roadmap's origin, deeper)."""
    return replace(_roadmap_end("resnet50", "resnet50").with_network(depths=depths), recipe=LEGACY)


@dataclass(frozen=True)
class Model:
    """One member of a model family: its name (timm's where timm has it) and how to make its spec."""

    name: str
    description: str
    make: Callable[[], Spec]
    # The family whose renaming rules load timm's weights (tests/timm_weights.py), None without a
    # timm counterpart (isotropic ConvNeXt: the name is the official repository's).
    weights_family: str | None


def _models() -> tuple[Model, ...]:
    convnext_depths, deep = (3, 3, 9, 3), (3, 3, 27, 3)
    small_depths = (2, 2, 6, 2)
    return (
        # ConvNeXt (§3, papers.md 4.2); stochastic depth T/S/B/L 0.1/0.4/0.5/0.5 (Table 5). XL was
        # trained on ImageNet-22K only; it takes L's rate.
        Model("convnext_tiny", "ConvNeXt-T", lambda: _convnext(convnext_depths, 96, 0.1), "convnext"),
        Model("convnext_small", "ConvNeXt-S", lambda: _convnext(deep, 96, 0.4), "convnext"),
        Model("convnext_base", "ConvNeXt-B", lambda: _convnext(deep, 128, 0.5), "convnext"),
        Model("convnext_large", "ConvNeXt-L", lambda: _convnext(deep, 192, 0.5), "convnext"),
        Model("convnext_xlarge", "ConvNeXt-XL", lambda: _convnext(deep, 256, 0.5), "convnext"),
        # Isotropic ConvNeXt (§3.3, papers.md 4.3); stochastic depth S/B/L 0.1/0.2/0.5.
        Model("convnext_isotropic_small", "ConvNeXt-S (iso.)", lambda: _convnext_isotropic(384, 18, False, 0.1), None),
        Model("convnext_isotropic_base", "ConvNeXt-B (iso.)", lambda: _convnext_isotropic(768, 18, False, 0.2), None),
        Model("convnext_isotropic_large", "ConvNeXt-L (iso.)", lambda: _convnext_isotropic(1024, 36, True, 0.5), None),
        # ConvNeXt V2 (papers.md 5.3).
        Model("convnextv2_atto", "ConvNeXt V2-A", lambda: _convnext_v2(small_depths, 40), "convnextv2"),
        Model("convnextv2_femto", "ConvNeXt V2-F", lambda: _convnext_v2(small_depths, 48), "convnextv2"),
        Model("convnextv2_pico", "ConvNeXt V2-P", lambda: _convnext_v2(small_depths, 64), "convnextv2"),
        Model("convnextv2_nano", "ConvNeXt V2-N", lambda: _convnext_v2((2, 2, 8, 2), 80), "convnextv2"),
        Model("convnextv2_tiny", "ConvNeXt V2-T", lambda: _convnext_v2(convnext_depths, 96), "convnextv2"),
        Model("convnextv2_base", "ConvNeXt V2-B", lambda: _convnext_v2(deep, 128), "convnextv2"),
        Model("convnextv2_large", "ConvNeXt V2-L", lambda: _convnext_v2(deep, 192), "convnextv2"),
        Model("convnextv2_huge", "ConvNeXt V2-H", lambda: _convnext_v2(deep, 352), "convnextv2"),
        # InceptionNeXt (papers.md 6.3); stochastic depth A/T/S/B 0.1/0.1/0.3/0.4 (App. Table 9).
        Model(
            "inception_next_atto",
            "InceptionNeXt-A",
            lambda: _inception_next(small_depths, 40, 0.1, 9, 0.25),
            "inception_next",
        ),
        Model(
            "inception_next_tiny",
            "InceptionNeXt-T",
            lambda: _inception_next(convnext_depths, 96, 0.1),
            "inception_next",
        ),
        Model("inception_next_small", "InceptionNeXt-S", lambda: _inception_next(deep, 96, 0.3), "inception_next"),
        Model("inception_next_base", "InceptionNeXt-B", lambda: _inception_next(deep, 128, 0.4), "inception_next"),
        # ResNets (torchvision definitions).
        Model("resnet50", "ResNet-50", lambda: _resnet((3, 4, 6, 3)), "resnet"),
        Model("resnet101", "ResNet-101", lambda: _resnet((3, 4, 23, 3)), "resnet"),
        Model("resnet152", "ResNet-152", lambda: _resnet((3, 8, 36, 3)), "resnet"),
        Model("resnet200", "ResNet-200", lambda: _resnet((3, 24, 36, 3)), "resnet"),
    )


MODELS: Mapping[str, Model] = MappingProxyType({entry.name: entry for entry in _models()})


def model_names() -> list[str]:
    return list(MODELS)


def model(name: str) -> Spec:
    """The spec of the model family member `name` (timm's name where timm has the model)."""
    key = canonical_name(name)
    if key not in MODELS:
        raise SpecError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[key].make()


def model_rows(name: str, steps: Iterable[str] | None = None) -> list[tuple[str, Spec]]:
    """The model as the first row, then `steps` composed on it (one row per step)."""
    start = model(name)
    return [(canonical_name(name), start)] + (compose(list(steps), start=start) if steps else [])


def row_label(name: str) -> str:
    """A readable label for any row name: a step, a mode row (`without_x`, `only_x`) or a model.
    A step's own label wins: `resnet50` is the paper's row "ResNet-50 (PyTorch, 90 ep)" as well
    as a model family member."""
    if name in MODELS and name not in REGISTRY:
        return MODELS[name].description
    return step_row_label(name)
