"""Roadmaps as data: ordered (step name, parameters) entries, and the functions that walk them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from roadmap.spec import Spec, SpecError
from steps import REGISTRY, canonical_name


@dataclass(frozen=True)
class Entry:
    """One row of a roadmap: a registered step and the parameters this roadmap gives it."""

    step: str
    params: Mapping[str, Any] = field(default_factory=dict)


def _path(*entries: Entry | str) -> tuple[Entry, ...]:
    return tuple(entry if isinstance(entry, Entry) else Entry(entry) for entry in entries)


_SHARED_TAIL = ("move_up", "kernel", "kernel5", "kernel9", "kernel11", "gelu", "fewer_act", "fewer_norm", "ln", "sep_ds")

ROADMAPS: dict[str, tuple[Entry, ...]] = {
    # Table 10: ResNet-50 -> ConvNeXt-T, the ResNet-50 / Swin-T regime.
    "resnet50": _path("resnet50", "recipe", "stage_ratio", "patchify", "depthwise", "width", "invert", *_SHARED_TAIL),
    # Table 11: ResNet-200 -> ConvNeXt-B; the stage-ratio step also widens 64 -> 84, width goes 84 -> 128.
    "resnet200": _path(
        "resnet200",
        Entry("recipe", {"drop_path_rate": 0.5}),
        Entry("stage_ratio", {"depths": (3, 3, 27, 3), "width": 84}),
        "patchify",
        "depthwise",
        Entry("width", {"width": 128}),
        "invert",
        *_SHARED_TAIL,
    ),
}


class RoadmapError(ValueError):
    """An unknown roadmap or step name, with the valid choices in the message."""


def roadmap_entries(roadmap: str) -> tuple[Entry, ...]:
    key = canonical_name(roadmap)
    if key not in ROADMAPS:
        raise RoadmapError(f"unknown roadmap {roadmap!r}; choose one of: {', '.join(ROADMAPS)}")
    return ROADMAPS[key]


def resolve_step(name: str, valid: Iterable[str] | None = None) -> str:
    key = canonical_name(name)
    choices = list(valid) if valid is not None else list(REGISTRY)
    if key not in choices:
        raise RoadmapError(f"unknown step {name!r}; choose one of: {', '.join(choices)}")
    return key


def specs(roadmap: str = "resnet50", upto: str | None = None, branches: bool = True) -> list[tuple[str, Spec]]:
    """The ordered (step name, spec) pairs of a roadmap, up to and including `upto`.

    Main-path steps apply cumulatively; a branch row (kernel 5/9/11) applies its step to the same
    parent as the step it branches from and does not continue the path.
    """
    entries = roadmap_entries(roadmap)
    names = [entry.step for entry in entries]
    last = resolve_step(upto, names) if upto is not None else names[-1]
    rows: list[tuple[str, Spec]] = []
    current = Spec()
    parents: dict[str, Spec] = {}
    for entry in entries[: names.index(last) + 1]:
        step = REGISTRY[entry.step]
        if step.branch_of is not None:
            if branches:
                rows.append((entry.step, step.apply(parents[step.branch_of], **entry.params)))
            continue
        parents[entry.step] = current
        current = step.apply(current, **entry.params)
        rows.append((entry.step, current))
    return rows


def compose(step_names: Iterable[str | Entry], start: Spec | None = None) -> list[tuple[str, Spec]]:
    """Apply any sequence of steps cumulatively (custom orders and subsets), one row per step."""
    current = start if start is not None else Spec()
    rows = []
    for item in step_names:
        entry = item if isinstance(item, Entry) else Entry(resolve_step(item))
        step = REGISTRY[resolve_step(entry.step)]
        try:
            current = step.apply(current, **entry.params)
        except SpecError as error:
            message = str(error)
            prefix = f"{step.name}: "
            raise SpecError(message if message.startswith(prefix) else prefix + message) from None
        rows.append((step.name, current))
    return rows
