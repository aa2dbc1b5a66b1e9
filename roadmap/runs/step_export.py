"""`run_roadmap.py export`: a finished step's weights as a plain state dict that timm (and `--init`) load.

FILE holds the network's tensors under our names (torch.save of a dict of tensors, nothing else), the
EMA's where the step reports the EMA's figures, unless --raw / --ema says otherwise. Beside it,
`<FILE stem>.spec.json` holds the step's spec as trained (Spec.to_dict): a proxy-sized step's depths,
widths and classes differ from the registered timm model's, and `spec=` gives them back.
"""

from __future__ import annotations

from pathlib import Path

import torch

from roadmap.files.atomic import NotWritable, check_writable_folder, write_atomic, write_json
from roadmap.network.roadmaps import specs
from roadmap.network.timm_registry import model_timm_name, timm_name
from roadmap.runs.step_weights import FinishedStep, final_checkpoint
from roadmap.spec import SpecError
from roadmap.train.checkpoints import StepWeightsError, checkpoint_weights


def spec_path(out: Path) -> Path:
    """Where the spec of a state dict written to `out` goes: `<out stem>.spec.json` beside it."""
    return out.with_name(f"{out.stem}.spec.json")


def registered_name(step: FinishedStep) -> str:
    """The timm name the exported step loads under: its row's (roadmap.network.timm_registry), the --model's
    for the model row; a row no roadmap registers (ablation modes, custom steps) loads under its
    roadmap's first row, which the exported spec then replaces."""
    info, row = step.info, step.paths.step
    if info.model is not None and row == info.model:
        return model_timm_name(info.model)
    try:
        return timm_name(info.roadmap, row)
    except SpecError:
        if info.model is not None:
            return model_timm_name(info.model)
        return timm_name(info.roadmap, specs(info.roadmap)[0][0])


def check_out(out: Path) -> None:
    """NotWritable / StepWeightsError unless `out` is a file path in an existing folder this process
    can write into: checked before the checkpoint is read, so a wrong --out costs nothing."""
    if out.is_dir():
        raise StepWeightsError(f"--out {out} is a folder; give the file to write, e.g. {out / 'weights.pth'}")
    if not out.parent.exists():  # not created: a mistyped folder would otherwise appear silently
        raise NotWritable(f"--out {out}: the folder {out.parent} does not exist; create it or give another --out")
    check_writable_folder(out.parent, what="--out folder")


def export_write_error(out: Path, error: BaseException) -> StepWeightsError | None:
    """The one-line error of a failed write (permission, full disk, quota); None for another error.
    torch's zip writer reports a short write as an `inline_container` RuntimeError."""
    if isinstance(error, OSError):
        why = error.strerror or str(error)
    elif isinstance(error, RuntimeError) and "inline_container" in str(error):
        why = "the file was cut short while being written"
    else:
        return None
    return StepWeightsError(
        f"could not write {out} ({why}); nothing was exported: free space (or raise the quota) or give another --out"
    )


def write_export(out: Path, tensors: dict[str, torch.Tensor], spec: dict) -> None:
    """The state dict, then its spec, each atomically. Should the spec fail, the weights just written
    go too: without their spec a proxy-sized state dict loads into the wrong network."""
    try:
        write_atomic(out, lambda handle: torch.save(tensors, handle), binary=True)
        try:
            write_json(spec_path(out), spec)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    except (OSError, RuntimeError) as error:
        failure = export_write_error(out, error)
        if failure is None:
            raise
        raise failure from None


def export_step(step: FinishedStep, out: Path, weights: str | None = None) -> tuple[str, Path]:
    """Write the step's `weights` (default: the reported ones) to `out` and its spec beside it;
    returns which weights were written and the spec's path."""
    weights = weights or step.reported_weights
    if weights == "ema" and not step.has_ema:
        raise StepWeightsError(f"{step.name} trained without an EMA (its recipe has none); export its --raw weights")
    check_out(out)
    state = checkpoint_weights(final_checkpoint(step), weights)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}
    write_export(out, tensors, step.spec.to_dict())
    return weights, spec_path(out)


def timm_line(step: FinishedStep, out: Path) -> str:
    """How to load the exported file with timm, as a line of Python."""
    return (
        f"import roadmap, timm; model = timm.create_model({registered_name(step)!r}, pretrained=True, "
        f"pretrained_cfg_overlay=dict(file={str(out)!r}), spec={str(spec_path(out))!r})"
    )
