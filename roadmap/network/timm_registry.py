"""Every roadmap row and model family member as a timm model: `timm.create_model('roadmap_resnet50_ln')`.

Registered with timm's registry when `roadmap` is imported, under names that cannot shadow timm's:
`roadmap_<roadmap>_<row>` for the rows of each roadmap (a row that roadmaps share has a name on
each: `roadmap_convnext_v2_ln` is `roadmap_resnet50_ln`), and `roadmap_<model>` for each `--model`
family member (`roadmap_convnext_tiny`). The entrypoints build through timm's `build_model_with_cfg`, so
`pretrained=True` with `pretrained_cfg_overlay=dict(file=...)`, `features_only` and `out_indices`
work as for timm's own models; timm's `num_classes`, `in_chans` and `drop_path_rate` go into the
spec, and `spec=` (a Spec, its dict, or the path of a JSON file of one, as `export` writes for a
proxy-sized step) replaces the registered spec.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Mapping

from timm.models import build_model_with_cfg, register_model
from torch import nn

from roadmap.network.build import RoadmapNet, initialise, pretrained_config
from roadmap.network.families import MODELS
from roadmap.network.roadmaps import ROADMAPS, specs
from roadmap.spec import Spec, SpecError

PREFIX = "roadmap_"
# timm's registry reads each entrypoint module's `default_cfgs` when the entrypoint registers.
default_cfgs: dict[str, dict[str, Any]] = {}


def as_spec(spec: Spec | Mapping[str, Any] | str | Path) -> Spec:
    """A spec given as a Spec, its `to_dict` form, or the path of a JSON file of one."""
    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Mapping):
        return Spec.from_dict(spec)
    path = Path(spec)
    try:
        return Spec.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise SpecError(f"cannot read a roadmap spec from {path}: {error}") from None


def _construct(
    spec: Spec,
    num_classes: int,
    in_chans: int,
    drop_path_rate: float | None = None,
    global_pool: str | None = None,
    drop_rate: float = 0.0,
) -> RoadmapNet:
    """The network of `spec` with timm's keyword arguments mapped into it (timm fills `num_classes`
    and `in_chans` from the pretrained_cfg when the caller does not)."""
    if drop_rate:
        # timm's train.py always passes drop_rate (0 by default); the papers' heads have no dropout
        # and the spec has no field for one, so only 0 describes a roadmap network.
        raise ValueError(
            f"roadmap networks have no dropout before the classifier: drop_rate must be 0, got {drop_rate}"
        )
    spec = spec.with_network(num_classes=num_classes, in_channels=in_chans)
    if drop_path_rate is not None:
        spec = spec.with_recipe(drop_path_rate=drop_path_rate)
    model = RoadmapNet(spec)
    if global_pool is not None:
        model.reset_classifier(num_classes, global_pool)
    # After the reset, so that a new classifier is initialised as the recipe says too.
    initialise(model, spec.recipe.weight_init)
    return model


def create(name: str, registered: Spec, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """What every roadmap entrypoint does: the registered (or given) spec through timm's builder."""
    spec = as_spec(kwargs.pop("spec")) if "spec" in kwargs else registered
    # timm.create_model passes both, None when unset; the config follows the spec actually built, so
    # that timm keeps the classifier of a checkpoint trained with the spec's own classes.
    pretrained_cfg = kwargs.pop("pretrained_cfg", None) or pretrained_config(spec)
    return build_model_with_cfg(
        _construct,
        name,
        pretrained,
        pretrained_cfg=pretrained_cfg,
        pretrained_cfg_overlay=kwargs.pop("pretrained_cfg_overlay", None),
        feature_cfg={"flatten_sequential": True, "out_indices": tuple(range(len(spec.network.depths)))},
        spec=spec,
        **kwargs,
    )


def _register(name: str, spec: Spec) -> None:
    entrypoint: Callable[..., nn.Module] = functools.partial(create, name, spec)
    # register_model keys the entry by the function's name and module.
    entrypoint.__name__ = name  # type: ignore[attr-defined]
    entrypoint.__module__ = __name__
    default_cfgs[name] = pretrained_config(spec)
    register_model(entrypoint)


def _roadmap_rows() -> dict[tuple[str, str], tuple[str, Spec]]:
    """(roadmap, row) -> (its timm name, spec). A row that several roadmaps share (ConvNeXt V2's `ln`
    is ResNet-50's) has a name on each, so that every roadmap's rows read alike."""
    return {(roadmap, row): (f"{PREFIX}{roadmap}_{row}", spec) for roadmap in ROADMAPS for row, spec in specs(roadmap)}


ROADMAP_ROWS = _roadmap_rows()


def timm_name(roadmap: str, row: str) -> str:
    """The timm name of a roadmap row."""
    if (roadmap, row) not in ROADMAP_ROWS:
        raise SpecError(f"roadmap {roadmap!r} has no row {row!r}")
    return ROADMAP_ROWS[(roadmap, row)][0]


def model_timm_name(model: str) -> str:
    """The timm name of a `--model` family member."""
    return f"{PREFIX}{model}"


def registered_names() -> list[str]:
    return list(default_cfgs)


def _register_all() -> None:
    for name, spec in dict(ROADMAP_ROWS.values()).items():
        _register(name, spec)
    for model in MODELS.values():
        _register(model_timm_name(model.name), model.make())


_register_all()
