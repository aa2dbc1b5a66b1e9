"""ConvNeXt V2's co-design table: FCMAE's gain on the V1 block and on the V2 (GRN) block.

The paper's claim (papers.md 5.2, ConvNeXt-B, 800-epoch pre-training): FCMAE does not help the V1
block (83.8 supervised -> 83.7) but helps once GRN is in the block (84.3 -> 84.6; 84.6 against the
V1 baseline's 83.8). The interaction, gain(V2) - gain(V1), is the claim in one number. A report of
a run holding the four rows of `--roadmap convnext-v2-codesign` adds codesign.csv and codesign.md.
Each gain shows its rows' done seeds; spread, 95% interval and verdict only where every row has two
or more done seeds (a one-seed gain is a single draw, and the page says it has no verdict).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from roadmap.report.intervals import contrast_interval, verdict
from roadmap.report.measured_spread import root_mean_square

# (block, row with supervised training, row with FCMAE pre-training + fine-tuning)
BLOCKS = (("V1 (LayerScale)", "v1_supervised", "v1_fcmae"), ("V2 (GRN)", "v2_supervised", "v2_fcmae"))


# The gain of FCMAE in one block: +FCMAE row - supervised row; the interaction adds V2's, subtracts V1's.
GAIN_SIGNS = (-1.0, 1.0)
INTERVAL_COLUMNS = ("seeds", "spread", "gain 95% low", "gain 95% high", "verdict")
INTERACTION = "V2 gain - V1 gain (co-design)"
COLUMN_ORDER = (
    "block",
    "supervised",
    "FCMAE",
    "FCMAE gain",
    *INTERVAL_COLUMNS,
    "paper supervised",
    "paper FCMAE",
    "paper FCMAE gain",
    "pre-training loss",
)


def _value(table: pd.DataFrame, step: str, column: str) -> float:
    value = table.at[step, column] if column in table.columns else math.nan
    return float(value) if value is not None and not pd.isna(value) else math.nan


def _count(value: float) -> int:
    return int(value) if math.isfinite(value) else 0


def _terms(
    rows: pd.DataFrame, steps: tuple[str, ...], signs: tuple[float, ...]
) -> list[tuple[float, float, float, int]]:
    """(sign, mean, std, done seeds) of each row, the input of roadmap.report.intervals.contrast_interval."""
    return [
        (
            sign,
            _value(rows, step, "top1_mean"),
            _value(rows, step, "top1_std"),
            _count(_value(rows, step, "seeds_done")),
        )
        for step, sign in zip(steps, signs)
        if step in rows.index
    ]


def _noise(terms: list[tuple[float, float, float, int]]) -> dict[str, object]:
    """Seeds, spread, the gain's Welch interval and its verdict: NaN / None where a row has fewer
    than two done seeds (one seed says nothing about the spread, so no interval and no verdict)."""
    _, low, high = contrast_interval(terms)
    seeds = " / ".join(str(n) for *_, n in terms)
    spread = root_mean_square(std for _, _, std, _ in terms) if all(n >= 2 for *_, n in terms) else math.nan
    return dict(zip(INTERVAL_COLUMNS, (seeds, spread, low, high, verdict(low, high))))


def codesign_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """One row per block (and the interaction), ours beside the paper's; None without the four rows.
    Each gain carries the done seeds of its rows, their spread (root mean square of the seed stds),
    its 95% Welch interval and verdict where every row has two or more done seeds."""
    rows = table.set_index("step")
    if not all(step in rows.index for _, supervised, fcmae in BLOCKS for step in (supervised, fcmae)):
        return None
    records = []
    for block, supervised, fcmae in BLOCKS:
        record: dict[str, object] = {"block": block}
        for prefix, column in (("", "top1_mean"), ("paper ", "paper_top1")):
            record[f"{prefix}supervised"] = _value(rows, supervised, column)
            record[f"{prefix}FCMAE"] = _value(rows, fcmae, column)
            record[f"{prefix}FCMAE gain"] = record[f"{prefix}FCMAE"] - record[f"{prefix}supervised"]
        record.update(_noise(_terms(rows, (supervised, fcmae), GAIN_SIGNS)))
        record["pre-training loss"] = _value(rows, fcmae, "pretrain_loss")
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    interaction: dict[str, object] = {"block": INTERACTION}
    for column in ("FCMAE gain", "paper FCMAE gain"):
        interaction[column] = float(frame[column].iloc[1] - frame[column].iloc[0])
    steps = tuple(step for _, supervised, fcmae in BLOCKS for step in (supervised, fcmae))
    interaction.update(_noise(_terms(rows, steps, (1.0, -1.0, -1.0, 1.0))))
    frame = pd.concat([frame, pd.DataFrame([interaction])], ignore_index=True)
    return frame[[column for column in COLUMN_ORDER if column in frame.columns]]


def _cell(column: str, value: object) -> str:
    if column in ("block", "seeds"):
        return str(value)
    if column == "verdict":
        return str(value) if isinstance(value, str) else "none: fewer than 2 seeds"
    if value is None or pd.isna(value):
        return "-"
    digits = 4 if column == "pre-training loss" else 2
    signed = "gain" in column
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _markdown(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns:
        shown[column] = [_cell(column, value) for value in shown[column]]
    return shown.to_markdown(index=False, disable_numparse=True)


def noise_caption(frame: pd.DataFrame) -> str:
    """What the gains can conclude: the interval rule where every row has 2+ done seeds, else
    plainly that there is no interval and no verdict, so the claim is neither confirmed nor refuted."""
    rule = (
        "Seeds: done seeds per row (supervised / FCMAE; the last row: all four). Spread: root mean square of "
        "the rows' sample stds. Gain interval: 95% Welch confidence interval over done seeds; verdict gain/loss "
        "when it excludes zero, else within noise. The paper gives no seed std for these rows."
    )
    if isinstance(frame.verdict.iloc[-1], str):
        return f"{rule} The claim holds on this run when the last row's verdict is gain."
    return (
        f"{rule} A row with fewer than 2 done seeds (one seed) has no spread, so there is no interval and "
        "no verdict: each gain is a single draw, and this table cannot say whether the claim holds on this run."
    )


def write_codesign(table: pd.DataFrame, out_dir: str | Path, run_caption: str) -> dict[str, Path]:
    """codesign.csv and codesign.md when the table holds the four co-design rows; {} otherwise."""
    out_dir = Path(out_dir)
    paths = {"codesign_csv": out_dir / "codesign.csv", "codesign_md": out_dir / "codesign.md"}
    frame = codesign_table(table)
    if frame is None:
        for path in paths.values():
            path.unlink(missing_ok=True)  # from an earlier report of another plan
        return {}
    caption = (
        f"{run_caption} Top-1 (%) of each block trained from scratch (supervised) and with FCMAE "
        "pre-training + fine-tuning; pre-training loss: masked-patch MSE on the validation images. "
        "Paper columns: ConvNeXt-B on ImageNet-1K, 800-epoch pre-training (ConvNeXt V2 Table 3, App. D); "
        "the paper's claim is that FCMAE's gain is larger with GRN than without (last row positive). "
        + noise_caption(frame)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(paths["codesign_csv"], index=False)
    paths["codesign_md"].write_text(f"{_markdown(frame)}\n\n{caption}\n")
    return paths
