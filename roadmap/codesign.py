"""ConvNeXt V2's co-design table: FCMAE's gain on the V1 block and on the V2 (GRN) block.

The paper's claim (papers.md 5.2, ConvNeXt-B, 800-epoch pre-training): FCMAE does not help the V1
block (83.8 supervised -> 83.7) but helps once GRN is in the block (84.3 -> 84.6; 84.6 against the
V1 baseline's 83.8). The interaction, gain(V2) - gain(V1), is the claim in one number. A report of
a run holding the four rows of `--roadmap convnext-v2-codesign` adds codesign.csv and codesign.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

# (block, row with supervised training, row with FCMAE pre-training + fine-tuning)
BLOCKS = (("V1 (LayerScale)", "v1_supervised", "v1_fcmae"), ("V2 (GRN)", "v2_supervised", "v2_fcmae"))


def _value(table: pd.DataFrame, step: str, column: str) -> float:
    value = table.at[step, column] if column in table.columns else math.nan
    return float(value) if value is not None and not pd.isna(value) else math.nan


def codesign_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """One row per block (and the interaction), ours beside the paper's; None without the four rows."""
    rows = table.set_index("step")
    if not all(step in rows.index for _, supervised, fcmae in BLOCKS for step in (supervised, fcmae)):
        return None
    records = []
    for block, supervised, fcmae in BLOCKS:
        record = {"block": block}
        for prefix, column in (("", "top1_mean"), ("paper ", "paper_top1")):
            record[f"{prefix}supervised"] = _value(rows, supervised, column)
            record[f"{prefix}FCMAE"] = _value(rows, fcmae, column)
            record[f"{prefix}FCMAE gain"] = record[f"{prefix}FCMAE"] - record[f"{prefix}supervised"]
        record["pre-training loss"] = _value(rows, fcmae, "pretrain_loss")
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    interaction = {"block": "V2 gain - V1 gain (co-design)"}
    for column in ("FCMAE gain", "paper FCMAE gain"):
        interaction[column] = float(frame[column].iloc[1] - frame[column].iloc[0])
    return pd.concat([frame, pd.DataFrame([interaction])], ignore_index=True)


def _markdown(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for column in shown.columns[1:]:
        digits = 4 if column == "pre-training loss" else 2
        signed = "gain" in column
        shown[column] = [
            "-" if pd.isna(value) else (f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}")
            for value in shown[column]
        ]
    return shown.to_markdown(index=False, disable_numparse=True)


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
        "Paper columns: ConvNeXt-B on ImageNet-1K, 800-epoch pre-training (ConvNeXt V2 Table 3, App. D). "
        "The claim holds where FCMAE's gain is larger with GRN than without (last row positive)."
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(paths["codesign_csv"], index=False)
    paths["codesign_md"].write_text(f"{_markdown(frame)}\n\n{caption}\n")
    return paths
