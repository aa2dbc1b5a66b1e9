"""The words under a run's table and figures: what was run, how, and what the numbers can conclude.

Pure text from run.json, the run table and the per-seed frame of roadmap.report.write; no plotting.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import pandas as pd

from roadmap.files.layout import is_set
from roadmap.network.complexity import CONVENTION
from roadmap.network.roadmaps import PAPER_MODE
from roadmap.report.intervals import LEVEL, MAX_SEEDS, POWER, WITHIN_NOISE
from roadmap.report.measured_spread import RUN_POOLED_SOURCE, RUN_SOURCE
from roadmap.train.presets import PRESETS

# Only the paper's cumulative path trains the networks of Tables 10/11; other modes (ablations,
# custom orders) may reuse step names for different networks, so they get no paper values.
SYNTHETIC_NOTE = "CPU proxy on the embedded synthetic dataset, not ImageNet."
SETTING_NAMES = {
    "precision": "precision",
    "channels_last": "channels-last",
    "compiled": "compiled",
    "deterministic": "deterministic",
    "pixels": "pixels",
}
ENVIRONMENT_KEYS = ("torch", "timm", "cuda", "cudnn", "roadmap", "git_commit", "device")


def singular_counts(text: str) -> str:
    """'1 threads' -> '1 thread' (older results wrote the plural for any count)."""
    return re.sub(r"\b1 (thread|core|worker|GPU|seed)s\b", r"1 \1", text)


def figure_caption(run_info: Mapping[str, Any]) -> str:
    """Dataset, preset and FLOPs convention, shared by every figure of a run."""
    caption = (
        f"Run {run_info.get('run', '?')}: dataset {run_info.get('dataset', '?')}, preset "
        f"{run_info.get('preset', '?')}, mode {run_info.get('mode', PAPER_MODE)}. "
        f"GFLOPs of the full-size network at 224x224: {CONVENTION}."
    )
    if run_info.get("dataset") == "synthetic":
        caption += " " + SYNTHETIC_NOTE
    for pretraining in dict.fromkeys(row.get("pretrain") for row in run_info.get("rows", []) if row.get("pretrain")):
        caption += f" {pretraining}."
    for line in (overrides_line(run_info), init_line(run_info)):
        if line:
            caption += " " + line
    for note in [*run_info.get("notes", []), run_info.get("reference_note")]:
        if note:
            caption += f" Note: {note}."
    return caption


def _value_words(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(_value_words, value))
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    return f"{value:g}" if isinstance(value, float) else str(value)


def overrides_line(run_info: Mapping[str, Any]) -> str:
    """The --set / --config overrides of run.json in words, e.g. 'lr 0.002 instead of 0.004 (modern)';
    '' without any (and in runs planned before overrides existed)."""
    changes = []
    for override in run_info.get("overrides", []):
        replaced = override.get("replaced", {})
        if not replaced:  # shadowed on every row by a recipe's own override of the same field
            continue
        was = " / ".join(f"{' or '.join(map(_value_words, values))} ({recipe})" for recipe, values in replaced.items())
        field = f"pretrain.{override['field']}" if override.get("scope") == "pretrain" else override["field"]
        changes.append(f"{field} {_value_words(override['value'])} instead of {was}")
    return f"Overridden (--set / --config): {'; '.join(changes)}." if changes else ""


def init_line(run_info: Mapping[str, Any]) -> str:
    """The --init file of run.json in words (its name and the start of its sha256); '' without one."""
    init = run_info.get("init")
    if not isinstance(init, Mapping):
        return ""
    name = str(init.get("path", "?")).replace("\\", "/").rsplit("/", 1)[-1]
    return (
        f"Started from {name} (sha256 {str(init.get('sha256', ''))[:8]}...; {init.get('holds', 'weights')}) "
        f"instead of the recipe's initialisation."
    )


def _distinct(values: Any) -> list[str]:
    shown = [("yes" if value else "no") if isinstance(value, bool) else str(value) for value in values if is_set(value)]
    return list(dict.fromkeys(shown))


def distinct_text(values: Any) -> str | None:
    """The distinct set values in order of appearance, joined by ', ' (booleans as yes/no); None if none."""
    return ", ".join(_distinct(values)) or None


def settings_line(frame: pd.DataFrame | None) -> str:
    """One sentence on how the steps were computed (precision, memory format, compile, determinism,
    pixels) and in which environment: distinct values over the finished seeds; '' for older results."""
    if frame is None or frame.empty:
        return ""
    finished = frame[frame.status.isin(["done", "diverged"])] if "status" in frame else frame
    parts = []
    for column, name in SETTING_NAMES.items():
        values = _distinct(finished[column]) if column in finished else []
        if values:
            parts.append(f"{name} {' / '.join(values)}")
    environments = [value for value in finished.get("environment", []) if isinstance(value, Mapping)]
    for key in ENVIRONMENT_KEYS:
        values = _distinct(environment.get(key) for environment in environments)
        if values:
            parts.append(f"{key.replace('_', ' ')} {' / '.join(values)}")
    return f"Computed with: {'; '.join(parts)}." if parts else ""


def spread_words(source: str) -> str:
    """A spread_source of the run table (roadmap.report.run_table._spread) in a caption's words."""
    if source == RUN_SOURCE:
        return "this run's seed std of the two rows"
    if source == RUN_POOLED_SOURCE:
        return "this run's seed std, pooled over its rows"
    # "measured cpu-synthetic, 3 seeds[, pooled over rows]": a shipped measurement (roadmap/report/noise/).
    name, seeds, *pooled = source.removeprefix("measured ").split(", ")
    return (
        f"the seed std measured on {name} with {seeds} per row{', ' + pooled[0] if pooled else ''} "
        "(benchmarks/seed_spread.py)"
    )


def _seeds_entry(step: str, seeds: Any, change: float) -> str:
    if pd.isna(seeds):
        # No count: a change of exactly zero never resolves; any other needs more than MAX_SEEDS.
        return f"{step} {'none (no change)' if change == 0 else f'>{MAX_SEEDS}'}"
    return f"{step} {int(seeds)}"


def noise_line(table: pd.DataFrame) -> str:
    """How to read the change column: the interval and verdict rule; for changes without a verdict
    (one seed) or within noise, the seeds per row that would resolve each, with the power assumed
    and where the spread came from, or plainly that no spread is known."""
    if "verdict" not in table:
        return ""
    lines = []
    if table.verdict.notna().any():
        lines.append(
            f"Change interval: {LEVEL:.0%} Welch confidence interval over done seeds; verdict gain/loss when it "
            "excludes zero, else within noise."
        )
    unresolved = table[(table.verdict.isna() | (table.verdict == WITHIN_NOISE)) & table.change.notna()]
    if unresolved.empty:
        return " ".join(lines)
    if unresolved.verdict.isna().any():
        lines.append("One seed: no verdict.")
    sized = unresolved[unresolved.spread_source.notna()]
    if sized.empty:
        lines.append(
            "No seed spread is known (this run has fewer than 2 done seeds per row, and none is measured for "
            "its preset and dataset): the seeds that would resolve a change are not estimated."
        )
        return " ".join(lines)
    spreads = "; ".join(spread_words(source) for source in dict.fromkeys(sized.spread_source))
    entries = ", ".join(map(_seeds_entry, sized.step, sized.seeds_to_resolve, sized.change))
    lines.append(
        f"Seeds per row that would resolve each change without a verdict or within noise, at {LEVEL:.0%} "
        f"confidence and {POWER:.0%} power (two-sided Welch test; spread: {spreads}): {entries}."
    )
    return " ".join(lines)


def weights_line(table: pd.DataFrame) -> str:
    """Which weights the top-1 column comes from: the raw model, or the EMA where a row has one."""
    weights = set(table.get("weights", pd.Series(dtype=object)).dropna())
    if not weights:
        return ""
    if weights == {"raw"}:
        return "Top-1 of the raw model (no row trains with an EMA)."
    return (
        "Rows with an EMA of the weights report the EMA's top-1, as the papers do for those recipes (column "
        "weights), with the raw model's beside it; the EMA's decay is fitted to the run's length (README)."
    )


def lr_rule_line(run_info: Mapping[str, Any]) -> str:
    """Where the run departs from the paper's linear lr rule: a preset that keeps each recipe's lr at
    its own batch (the CPU proxies) instead of scaling it (roadmap.train.presets.TrainingPreset.scale_lr)."""
    preset = PRESETS.get(str(run_info.get("preset")))
    if preset is None or preset.scale_lr:
        return ""
    unscaled = {
        row.get("recipe"): str(row.get("batch", "")).split(" = ")[0].replace("effective ", "")
        for row in run_info.get("rows", [])
        if row.get("recipe")
    }
    if not unscaled:
        return ""
    recipes = ", ".join(f"{recipe} at {batch}" for recipe, batch in unscaled.items())
    return (
        f"Learning rate: each recipe's own, not scaled linearly to the proxy's batch as the paper's rule "
        f"would ({recipes}), which would leave a few epochs too small a rate."
    )


def _resolution(value: Any) -> str:
    # run.json: a number (older runs) or a description such as "160->192 px, tested at 224".
    return f"{value} px" if isinstance(value, int) or str(value).isdigit() else str(value)


def table_caption(run_info: Mapping[str, Any], table: pd.DataFrame, frame: pd.DataFrame | None = None) -> str:
    """The figure caption plus how the table's columns were computed (and, from the per-seed
    `frame`, the numerics and environment of the steps)."""
    seeds = len(run_info.get("seeds", [0]))
    devices = sorted({str(device) for device in table.get("device", []) if is_set(device)})
    caption = figure_caption(run_info) + (
        f" Top-1 (%): mean +- sample std over done seeds ({seeds} planned), "
        f"{run_info.get('epochs', '?')} epochs at {_resolution(run_info.get('resolution', '?'))}. "
        "Change: against the previous main-path row; branch rows against the row their branch starts from."
    )
    for line in (weights_line(table), lr_rule_line(run_info), noise_line(table)):
        if line:
            caption += " " + line
    if devices:
        caption += f" Throughput measured on the trained proxy on {', '.join(devices)}."
    if table.get("paper_top1") is not None and table.paper_top1.notna().any():
        caption += " Paper columns: ImageNet-1K values of the paper's table for this roadmap."
    settings = settings_line(frame)
    if settings:
        caption += " " + settings
    return singular_counts(caption)
