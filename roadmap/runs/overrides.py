"""Recipe overrides: `--set [RECIPE.]FIELD=VALUE` and `--config FILE`, parsed against the fields of
roadmap.spec's `Recipe` (and `Pretrain`, scope `pretrain`) and applied to the full-size rows before a
preset resolves them, so that a value means what the paper states: `lr` at the recipe's reference
batch, `epochs` before the preset scales the schedule (`--epochs` sets the trained epochs instead).

A config file holds the same overrides (TOML, or YAML for .yaml/.yml):

    [set]                 # every row's recipe
    lr = 2e-3
    [set.legacy]          # only rows whose recipe is `legacy`
    epochs = 100
    [set.pretrain]        # FCMAE pre-training of the rows that have it
    mask_ratio = 0.75
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from roadmap.recipes import LEGACY, MODERN, V2_FINETUNE
from roadmap.spec import Pretrain, Recipe, Spec, SpecError

try:
    import tomllib  # the standard library's from Python 3.11
except ImportError:  # Python 3.10: a TOML config file is refused in one line, YAML still works
    tomllib = None
PARSE_ERRORS = (UnicodeDecodeError, yaml.YAMLError, *((tomllib.TOMLDecodeError,) if tomllib else ()))

PRETRAIN = "pretrain"
# A row's recipe keeps the name of the recipe it started from (steps replace a recipe's values, not
# its name): that name is what `--set RECIPE.FIELD=VALUE` matches.
RECIPE_NAMES = (LEGACY.name, MODERN.name, *(recipe.name for recipe in V2_FINETUNE.values()))
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class OverrideError(SpecError):
    """A --set or --config entry naming no field or scope, or a value its field cannot take."""


@dataclass(frozen=True)
class Override:
    scope: str | None  # a recipe name, PRETRAIN, or None: every row's recipe
    field: str
    value: Any  # parsed to the field's type
    typed: str  # as written: "lr=2e-3", or "legacy.epochs=100" from a file
    source: str  # "--set" or "--config FILE"

    @property
    def where(self) -> str:
        return _where(self.typed, self.source)


def _where(typed: str, source: str) -> str:
    """An override as an error names it: `--set lr=abc`, or `--config FILE: lr=abc`."""
    return f"--set {typed}" if source == "--set" else f"{source}: {typed}"


def settable_fields(target: type) -> dict[str, Any]:
    """Field name -> type of a Recipe or Pretrain; `name` is what a scope matches, not a setting."""
    hints = typing.get_type_hints(target)
    return {item.name: hints[item.name] for item in fields(target) if item.name != "name"}


def expected(kind: Any) -> str:
    """What a field of type `kind` takes, in words."""
    options = [option for option in typing.get_args(kind) if option is not type(None)]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return f"{expected(options[0])} or none"
    if typing.get_origin(kind) is tuple:
        count = "comma-separated" if options[-1] is Ellipsis else f"{len(options)} comma-separated"
        return f"{count} values, each {expected(options[0])} (e.g. 0.9,0.999)"
    return {float: "a number", int: "an integer", bool: "true or false", str: "text"}[kind]


def _scalar(kind: type, value: Any) -> Any:
    """`value` (text from --set, or a file's own value) as a `kind`; ValueError if it is not one."""
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text not in TRUE + FALSE:
                raise ValueError(value)
            return text in TRUE
        value = kind(text)  # int("2.5"), float("abc"): ValueError
    elif isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float) if kind is float else kind):
        raise ValueError(value)  # e.g. a TOML 100.0 for an integer field, or true for a number
    value = kind(value)
    if (kind is float and not math.isfinite(value)) or (kind is str and not value.strip()):
        raise ValueError(value)
    return value


def parse_value(kind: Any, value: Any) -> Any:
    """`value` as the annotated type `kind` (optional and tuple types included); ValueError if not."""
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        (kind,) = [option for option in typing.get_args(kind) if option is not type(None)]
    if typing.get_origin(kind) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        kinds = typing.get_args(kind)
        if not isinstance(items, (list, tuple)) or (kinds[-1] is not Ellipsis and len(items) != len(kinds)):
            raise ValueError(value)
        item_kinds = [kinds[0]] * len(items) if kinds[-1] is Ellipsis else kinds
        return tuple(_scalar(item_kind, item) for item_kind, item in zip(item_kinds, items))
    return _scalar(kind, value)


def make_override(key: str, value: Any, typed: str, source: str) -> Override:
    """One override of `key` (FIELD, RECIPE.FIELD or pretrain.FIELD), checked by name and type."""
    scope, _, name = key.strip().rpartition(".")
    scope = scope.replace("_", "-") if scope != PRETRAIN else scope  # step names accept - or _ too
    where = _where(typed, source)
    if scope and scope not in (*RECIPE_NAMES, PRETRAIN):
        raise OverrideError(
            f"{where}: unknown recipe {scope!r}; choose one of: {', '.join(RECIPE_NAMES)}, or {PRETRAIN} "
            f"(FCMAE pre-training)"
        )
    target = Pretrain if scope == PRETRAIN else Recipe
    kinds = settable_fields(target)
    if name not in kinds:
        what = "FCMAE pre-training" if target is Pretrain else "recipe"
        raise OverrideError(f"{where}: unknown {what} field {name!r}; valid fields: {', '.join(kinds)}")
    try:
        parsed = parse_value(kinds[name], value)
    except (ValueError, TypeError):
        raise OverrideError(f"{where}: {name} takes {expected(kinds[name])}, got {value!r}") from None
    return Override(scope or None, name, parsed, typed, source)


def parse_set(text: str) -> Override:
    """One `--set [RECIPE.]FIELD=VALUE`."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise OverrideError(f"--set takes [RECIPE.]FIELD=VALUE (e.g. --set lr=2e-3), got {text!r}")
    return make_override(key, value, text, "--set")


def _load_config(path: Path) -> Any:
    """The parsed content of a TOML or YAML file; OverrideError (one line) if it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise OverrideError(f"--config {path}: name a .toml, .yaml or .yml file")
    if suffix == ".toml" and tomllib is None:
        raise OverrideError(f"--config {path}: TOML needs Python 3.11+ (tomllib); use a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except OSError as error:
        raise OverrideError(f"--config {path}: cannot read it ({error.strerror or error})") from None
    except PARSE_ERRORS as error:  # the parser's own words, on one line
        raise OverrideError(
            f"--config {path}: not valid {suffix[1:].upper()}: {' '.join(str(error).split())}"
        ) from None


def read_config(path: str) -> list[Override]:
    """The overrides of a config file: table `set` of FIELD = VALUE and of RECIPE tables."""
    data = _load_config(Path(path))
    source = f"--config {path}"
    entries = data.get("set") if isinstance(data, Mapping) else None
    if not isinstance(entries, Mapping) or set(data) != {"set"}:
        found = ", ".join(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise OverrideError(
            f"{source}: expected only a table `set` of FIELD = VALUE and [set.RECIPE] tables, "
            f"found: {found or 'nothing'}"
        )
    overrides = []
    for key, value in entries.items():
        # A table is a scope (a recipe, or pretrain); anything else is a value of every row's recipe.
        scoped = value.items() if isinstance(value, Mapping) else [(None, value)]
        for name, item in scoped:
            field = f"{key}.{name}" if name is not None else str(key)
            overrides.append(make_override(field, item, f"{field}={item}", source))
    return overrides


def collect_overrides(set_texts: Sequence[str], config: str | None) -> tuple[Override, ...]:
    """The --config file's overrides, then the --set flags'; one field set twice is refused."""
    overrides = (read_config(config) if config else []) + [parse_set(text) for text in set_texts]
    seen: dict[tuple[str | None, str], Override] = {}
    for override in overrides:
        first = seen.setdefault((override.scope, override.field), override)
        if first is not override:
            raise OverrideError(f"{first.where} and {override.where} set the same field; give it once")
    return tuple(overrides)


def check_against_flags(overrides: Sequence[Override], epochs: int | None, mask_ratio: float | None) -> None:
    """Overrides that an option of their own would contradict: one line."""
    for override in overrides:
        if epochs is not None and override.field == "epochs" and override.scope != PRETRAIN:
            raise OverrideError(
                f"--epochs {epochs} sets the epochs every row trains, {override.where} the recipe's epochs "
                f"before the preset scales them; drop one of them"
            )
        if mask_ratio is not None and override.field == "mask_ratio":
            raise OverrideError(f"--mask-ratio {mask_ratio:g} and {override.where} both set the mask ratio; drop one")


def _check_scopes(rows: Sequence[tuple[str, Spec]], overrides: Sequence[Override]) -> None:
    """A scope no row of this run has would be ignored: refused, naming the recipes the rows use."""
    used = list(dict.fromkeys(spec.recipe.name for _, spec in rows))
    for override in overrides:
        if override.scope == PRETRAIN and not any(spec.pretrain is not None for _, spec in rows):
            raise OverrideError(
                f"{override.where}: no row of this run pre-trains (FCMAE); add --steps ...,fcmae or "
                f"--roadmap convnext-v2-codesign, or drop it"
            )
        if override.scope not in (None, PRETRAIN) and override.scope not in used:
            raise OverrideError(
                f"{override.where}: no row of this run uses the {override.scope} recipe; "
                f"its rows use: {', '.join(used)}"
            )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # as JSON reads it back


def _for_row(spec: Spec, overrides: Sequence[Override]) -> list[Override]:
    """The overrides that set this row's values: its recipe's own scope wins over an unscoped
    override of the same field; `pretrain` ones only where the row pre-trains."""
    chosen: dict[tuple[bool, str], Override] = {}
    for override in overrides:
        if override.scope == PRETRAIN:
            if spec.pretrain is not None:
                chosen[(True, override.field)] = override
        elif override.scope == spec.recipe.name or (override.scope is None and (False, override.field) not in chosen):
            chosen[(False, override.field)] = override
    return list(chosen.values())


def apply_overrides(
    rows: Sequence[tuple[str, Spec]], overrides: Sequence[Override]
) -> tuple[list[tuple[str, Spec]], tuple[dict[str, Any], ...]]:
    """The rows with their overrides, and run.json's record of each override: as typed, as parsed,
    and the values it replaced per recipe (or pre-training) name."""
    if not overrides:
        return list(rows), ()
    _check_scopes(rows, overrides)
    replaced: dict[Override, dict[str, list[Any]]] = {override: {} for override in overrides}
    changed = []
    for row, spec in rows:
        applied = _for_row(spec, overrides)
        changes: dict[bool, dict[str, Any]] = {True: {}, False: {}}  # pre-training or not -> field -> value
        for override in applied:
            part = spec.pretrain if override.scope == PRETRAIN else spec.recipe
            was = replaced[override].setdefault(part.name, [])
            if _plain(getattr(part, override.field)) not in was:
                was.append(_plain(getattr(part, override.field)))
            changes[override.scope == PRETRAIN][override.field] = override.value
        try:
            spec = spec.with_recipe(**changes[False])
            spec = spec.with_pretrain(**changes[True]) if changes[True] else spec
        except SpecError as error:  # the dataclass's own checks, e.g. epochs=0
            raise OverrideError(f"{row} with {', '.join(item.where for item in applied)}: {error}") from None
        changed.append((row, spec))
    records = tuple(
        dict(
            typed=item.typed,
            source=item.source,
            scope=item.scope,
            field=item.field,
            value=_plain(item.value),
            replaced=was,
        )
        for item, was in replaced.items()
    )
    return changed, records
