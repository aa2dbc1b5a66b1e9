"""Roadmaps as data: ordered (step name, parameters) entries, and the functions that walk them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from roadmap.errors import UserError
from roadmap.spec import Spec, SpecError
from steps import REGISTRY, canonical_name


@dataclass(frozen=True)
class Entry:
    """One row of a roadmap: a registered step and the parameters this roadmap gives it."""

    step: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # Applied but not a row: the path to a roadmap's starting network (a --model replaces it).
    hidden: bool = False


def _path(*entries: Entry | str) -> tuple[Entry, ...]:
    return tuple(entry if isinstance(entry, Entry) else Entry(entry) for entry in entries)


@dataclass(frozen=True)
class Roadmap:
    """A roadmap and what belongs to it: its rows, and the paper's table of them where one exists."""

    name: str
    description: str
    entries: tuple[Entry, ...]
    # The paper's values of the rows (roadmap/network/paper_tables/<file>: label, stage group of the
    # figures, top-1, GFLOPs); None where the paper has no such table.
    paper_table: str | None = None
    # How captions name that table, and what its columns are where they are not the run's network.
    paper_name: str = "paper"
    paper_note: str | None = None
    # Branch rows that belong to the result (trained without --branches).
    branches_by_default: bool = False


_SHARED_TAIL = (
    "move_up",
    "kernel",
    "kernel5",
    "kernel9",
    "kernel11",
    "gelu",
    "fewer_act",
    "fewer_norm",
    "ln",
    "sep_ds",
)
_RESNET50_PATH = _path("resnet50", "recipe", "stage_ratio", "patchify", "depthwise", "width", "invert", *_SHARED_TAIL)

_ROADMAPS = (
    Roadmap(
        "resnet50",
        "Table 10: ResNet-50 -> ConvNeXt-T, the ResNet-50 / Swin-T regime",
        _RESNET50_PATH,
        paper_table="table10_resnet50.csv",
        paper_name="paper Table 10",
    ),
    Roadmap(
        "resnet200",
        "Table 11: ResNet-200 -> ConvNeXt-B; the stage-ratio step also widens 64 -> 84, width goes 84 -> 128",
        _path(
            "resnet200",
            Entry("recipe", {"drop_path_rate": 0.5}),
            Entry("stage_ratio", {"depths": (3, 3, 27, 3), "width": 84}),
            "patchify",
            "depthwise",
            Entry("width", {"width": 128}),
            "invert",
            *_SHARED_TAIL,
        ),
        paper_table="table11_resnet200.csv",
        paper_name="paper Table 11",
    ),
    Roadmap("convnext_v2", "ConvNeXt-T -> ConvNeXt V2-T (GRN, no LayerScale)", _RESNET50_PATH + _path("grn")),
    Roadmap(
        "inceptionnext",
        "ConvNeXt-T -> InceptionNeXt-T, then InceptionNeXt's Table 1 variants of ConvNeXt-T as branches",
        _RESNET50_PATH
        + _path("inception", "k5", "k3", "k3_par1_2", "k3_par3_8", "k3_par1_4", "k3_par1_8", "k3_par1_16"),
    ),
    # The main path adds FCMAE, then GRN; `v2_supervised` is GRN without FCMAE, a branch of `v1_fcmae`.
    Roadmap(
        "convnext_v2_codesign",
        "ConvNeXt V2's co-design (papers.md 5.2): FCMAE on the V1 and the V2 block of ConvNeXt-T",
        tuple(Entry(entry.step, entry.params, hidden=True) for entry in _RESNET50_PATH)
        + _path("v1_supervised", "v1_fcmae", "v2_supervised", "v2_fcmae"),
        paper_table="codesign_convnext_v2.csv",
        paper_name="ConvNeXt V2 co-design (ConvNeXt-B)",
        paper_note="paper columns are ConvNeXt-B (ConvNeXt V2 Table 3 and App. D; 800-epoch FCMAE pre-training), "
        "beside the ConvNeXt-T this roadmap trains unless --model",
        branches_by_default=True,
    ),
)
ROADMAPS: dict[str, Roadmap] = {roadmap.name: roadmap for roadmap in _ROADMAPS}


class RoadmapError(UserError, ValueError):
    """An unknown roadmap or step name, with the valid choices in the message."""


def get_roadmap(roadmap: str) -> Roadmap:
    key = canonical_name(roadmap)
    if key not in ROADMAPS:
        raise RoadmapError(f"unknown roadmap {roadmap!r}; choose one of: {', '.join(ROADMAPS)}")
    return ROADMAPS[key]


def roadmap_entries(roadmap: str) -> tuple[Entry, ...]:
    return get_roadmap(roadmap).entries


def step_names() -> list[str]:
    """Every registered step: in the order the roadmaps first use them, then the others by name."""
    on_roadmaps = [entry.step for roadmap in ROADMAPS.values() for entry in roadmap.entries if not entry.hidden]
    return list(dict.fromkeys(on_roadmaps + sorted(REGISTRY)))


def resolve_step(name: str, valid: Iterable[str] | None = None) -> str:
    key = canonical_name(name)
    choices = list(valid) if valid is not None else step_names()
    if key not in choices:
        raise RoadmapError(f"unknown step {name!r}; choose one of: {', '.join(choices)}")
    return key


def starts_from_network(roadmap: str) -> bool:
    """True when the roadmap's rows start from a finished network (hidden entries), which --model replaces."""
    return any(entry.hidden for entry in roadmap_entries(roadmap))


def specs(
    roadmap: str = "resnet50", upto: str | None = None, branches: bool = True, start: Spec | None = None
) -> list[tuple[str, Spec]]:
    """The ordered (step name, spec) pairs of a roadmap, up to and including `upto`.

    Main-path steps apply cumulatively; a branch row (kernel 5/9/11) applies its step to the same
    parent as the step it branches from and does not continue the path. Hidden entries build the
    starting network without rows; `start` replaces what they build.
    """
    rows: list[tuple[str, Spec]] = []
    current = Spec()
    parents: dict[str, Spec] = {}
    entries = _entries_upto(roadmap, upto)
    if start is not None:
        entries, current = tuple(entry for entry in entries if not entry.hidden), start
    for entry in entries:
        step = REGISTRY[entry.step]
        if entry.hidden and step.branch_of is not None:
            continue
        if step.branch_of is not None:
            if branches:
                rows.append((entry.step, step.apply(parents[step.branch_of], **entry.params)))
            continue
        parents[entry.step] = current
        current = step.apply(current, **entry.params)
        if not entry.hidden:
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


# Ablation modes beyond the paper's cumulative path. Each returns uniquely named rows in a stable
# order; rows that cannot mean anything are left out and reported with the reason (`ModePlan`).
MODES = ("cumulative", "leave_one_out", "single", "custom")
PAPER_MODE = MODES[0]  # the paper's own path


@dataclass(frozen=True)
class ModePlan:
    """The rows of one ablation mode, and the rows left out with the reason for each."""

    rows: list[tuple[str, Spec]]
    skipped: list[tuple[str, str]] = field(default_factory=list)


def mode_specs(
    roadmap: str, mode: str, upto: str | None = None, branches: bool = True, steps: Iterable[str] | None = None
) -> list[tuple[str, Spec]]:
    """The (row name, spec) pairs of `roadmap` under an ablation `mode`; see `mode_plan`."""
    return mode_plan(roadmap, mode, upto, branches, steps).rows


def mode_plan(
    roadmap: str, mode: str, upto: str | None = None, branches: bool = True, steps: Iterable[str] | None = None
) -> ModePlan:
    """Rows of an ablation mode.

    cumulative:    the paper's path, as `specs`.
    leave_one_out: row `final` (the main path up to `upto`) and, for each main-path step s after
                   the origin, `without_<s>`: every main-path step but s, applied in order. Branch
                   rows are not part of the final network and are ignored. A row is skipped (with
                   its reason) when a later step needs s and refuses to apply without it, or when
                   a later step overrides s so that the row equals `final`; dependent steps are
                   never removed silently.
    single:        the origin row and `only_<s>`: each step (branches too when `branches`) applied
                   alone to the origin; skipped when the step cannot apply to the origin or
                   changes nothing.
    custom:        the roadmap's origin row, then `steps` composed on it, one row per step (a
                   list that starts with an origin step starts from that origin instead);
                   `upto` and `branches` do not apply.
    """
    key = canonical_name(mode)
    if key not in MODES:
        raise RoadmapError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if key != "custom" and steps is not None:
        raise RoadmapError(f"mode {key!r} takes no step list; use mode 'custom' for one")
    if key == "cumulative":
        return ModePlan(specs(roadmap, upto, branches))
    if starts_from_network(roadmap):
        raise RoadmapError(
            f"roadmap {roadmap!r} compares a few variants of one network; only mode 'cumulative' "
            f"applies to it (give single steps with --model NAME --steps ...)"
        )
    if key == "custom":
        if not steps:
            raise RoadmapError("mode 'custom' needs a non-empty step list")
        return ModePlan(_custom_rows(roadmap, list(steps)))
    entries = _entries_upto(roadmap, upto)
    origin, path = entries[0], entries[1:]
    if key == "leave_one_out":
        if upto is not None and REGISTRY[entries[-1].step].branch_of is not None:
            raise RoadmapError(f"leave_one_out ends at a main-path step; {upto!r} is a branch row")
        return _leave_one_out(origin, [entry for entry in path if REGISTRY[entry.step].branch_of is None])
    if not branches:
        path = [entry for entry in path if REGISTRY[entry.step].branch_of is None]
    return _single(origin, path)


def _entries_upto(roadmap: str, upto: str | None) -> tuple[Entry, ...]:
    entries = roadmap_entries(roadmap)
    if upto is None:
        return entries
    names = [entry.step for entry in entries]
    last = resolve_step(upto, [entry.step for entry in entries if not entry.hidden])  # rows only
    return entries[: len(names) - names[::-1].index(last)]


def _apply(entry: Entry, spec: Spec) -> Spec:
    return REGISTRY[entry.step].apply(spec, **entry.params)


def _message(step: str, error: SpecError) -> str:
    """The error text without the step-name prefix the reason already carries."""
    return str(error).removeprefix(f"{step}: ")


def _leave_one_out(origin: Entry, path: list[Entry]) -> ModePlan:
    start = _apply(origin, Spec())
    final = start
    for entry in path:
        final = _apply(entry, final)
    rows, skipped = [("final", final)], []
    for removed in path:
        name = f"without_{removed.step}"
        spec, reason = start, None
        for entry in path:
            if entry is removed:
                continue
            try:
                spec = _apply(entry, spec)
            except SpecError as error:
                reason = f"{entry.step} needs {removed.step}: {_message(entry.step, error)}"
                break
        if reason is None and spec == final:
            reason = f"same spec as final: a later step overrides what {removed.step} sets"
        if reason is None:
            rows.append((name, spec))
        else:
            skipped.append((name, reason))
    return ModePlan(rows, skipped)


def _single(origin: Entry, path: list[Entry]) -> ModePlan:
    start = _apply(origin, Spec())
    rows, skipped = [(origin.step, start)], []
    for entry in path:
        name = f"only_{entry.step}"
        try:
            spec = _apply(entry, start)
        except SpecError as error:
            skipped.append((name, f"{entry.step} cannot apply to {origin.step}: {_message(entry.step, error)}"))
            continue
        if spec == start:
            skipped.append((name, f"{entry.step} changes nothing on {origin.step}"))
        else:
            rows.append((name, spec))
    return ModePlan(rows, skipped)


def _custom_rows(roadmap: str, step_names: list[str]) -> list[tuple[str, Spec]]:
    names = [resolve_step(name) for name in step_names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RoadmapError(f"custom steps must be distinct (row names are step names): {', '.join(repeated)}")
    if REGISTRY[names[0]].origin:
        return compose(names)
    origin = roadmap_entries(roadmap)[0]
    start = _apply(origin, Spec())
    if origin.step in names:
        raise RoadmapError(f"custom steps: the origin {origin.step!r} must come first")
    return [(origin.step, start)] + compose(names, start=start)


def row_label(name: str) -> str:
    """A readable label for a step's row or a mode row (`final`, `without_x`, `only_x`)."""
    if name in REGISTRY:
        return REGISTRY[name].label
    if name == "final":
        return "final network"
    for prefix, word in (("without_", "without"), ("only_", "only")):
        if name.startswith(prefix) and name[len(prefix) :] in REGISTRY:
            return f"{word} {REGISTRY[name[len(prefix) :]].label}"
    return name
