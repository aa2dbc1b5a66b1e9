"""Checkpoints in and out: `eval` scores a finished step's saved weights again and gets result.json's
figures to the last digit, `export` writes a state dict that timm loads into the step's network,
and `--init` starts every step of a run from a file's weights (in the step's key, run.json, the task
and the caption), refusing a file that does not fit in one line before anything is written.

Steps are planned through the command line's own parsing and trained for real on the tiny preset."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

import roadmap
import roadmap.runs.step_export
from roadmap.cli.arguments import build_parser
from roadmap.cli.commands import main, run_options
from roadmap.files.atomic import write_json
from roadmap.launch.job import run_step
from roadmap.network.timm_registry import timm_name
from roadmap.report.captions import table_caption
from roadmap.report.run_table import aggregate
from roadmap.runs.plan import plan_run, write_plan
from roadmap.runs.seeds import collect, load_run
from roadmap.spec import Spec
from roadmap.train.checkpoints import checkpoint_weights, load_torch_file
from roadmap.train.init_weights import InitError, load_init, plan_init
from roadmap.train.task import StepTask
from roadmap.train.trainer import Trainer

RUN = "resnet50-tiny-synthetic"
# One legacy row (ResNet-50 proxy) with an EMA whose decay stays well below 1 over the run's 16
# updates (1 - 0.1 x 8 / 16 = 0.95), so that the EMA's weights and figures are not the raw model's.
ROW = ("--upto", "resnet50", "--preset", "tiny")
WITH_EMA = ("--epochs", "2", "--set", "ema=true", "--set", "ema_decay=0.9", "--set", "ema_reference_updates=8")
FIGURE_LINE = re.compile(r"^(raw|ema)( \(reported\))?: top-1 (\S+), top-5 (\S+) \(%\); (.*)$")


def planned(results: Path, *extra: str):
    """The plan the command line makes of the tiny resnet50 row plus `extra` (nothing trains)."""
    return plan_run(run_options(build_parser().parse_args([*ROW, "--results", str(results), *extra])))


def trained_plan(results: Path, *extra: str):
    """A real tiny run: its plan recorded (run.json) and every step x seed trained."""
    plan = planned(results, *extra)
    write_plan(plan)
    for task in plan.tasks:
        assert run_step(task)["status"] == "done"
    return plan


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny resnet50 row with an EMA, trained once; tests that write copy nothing from it."""
    return trained_plan(tmp_path_factory.mktemp("ema-run"), *WITH_EMA)


def evaluated(capsys, results: Path, run: str = RUN) -> dict[str, tuple[float, float, str]]:
    """`eval` of the run's resnet50 seed 0: weights -> (top-1, top-5, what it says about result.json)."""
    assert main(["eval", "--run", run, "--step", "resnet50", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    figures = {}
    for line in lines[1:]:
        match = FIGURE_LINE.match(line)
        assert match, line
        figures[match[1]] = (float(match[3]), float(match[4]), match[5])
    return figures


def checkpoint(task) -> dict:
    # Through the product's safe loader: a real checkpoint (numpy's random state included) must pass it.
    return load_torch_file(task.paths.checkpoint)


@pytest.mark.slow
def test_eval_reproduces_the_recorded_figures_of_raw_and_ema(trained, capsys):
    task = trained.tasks[0]
    result = task.paths.read_result()
    state = checkpoint(task)
    raw, ema = checkpoint_weights(state, "raw"), checkpoint_weights(state, "ema")
    assert result["reported_weights"] == "ema" and 0 < result["ema_decay"] < 1
    assert any(not torch.equal(raw[name], ema[name]) for name in raw)  # two different networks
    figures = evaluated(capsys, trained.run_dir.parent)
    assert set(figures) == {"raw", "ema"}
    for weights, (top1, top5, verdict) in figures.items():
        assert (top1, top5) == (result[f"top1_{weights}"], result[f"top5_{weights}"])  # exactly
        assert verdict == "equal to result.json"


@pytest.mark.slow
def test_export_loads_back_through_timm(trained, tmp_path, capsys):
    task = trained.tasks[0]
    out = tmp_path / "x.pth"
    argv = ["export", "--run", RUN, "--step", "resnet50", "--results", str(trained.run_dir.parent), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "ema weights" in printed[0] and timm_name("resnet50", "resnet50") in printed[1]
    exported = torch.load(out, weights_only=True)
    ema = checkpoint_weights(checkpoint(task), "ema")  # the reported weights are the default
    assert set(exported) == set(ema) and all(torch.equal(exported[name], ema[name]) for name in ema)
    assert Spec.from_dict(json.loads((tmp_path / "x.spec.json").read_text())) == task.spec
    # The printed line, run as it is, builds the step's network with the exported weights.
    namespace: dict = {}
    exec(printed[1], namespace)
    loaded = namespace["model"].eval()
    ours = roadmap.build(task.spec).eval()
    ours.load_state_dict(ema)
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), ours(images))
    assert main([*argv, "--raw"]) == 0 and "raw weights" in capsys.readouterr().out
    raw = checkpoint_weights(checkpoint(task), "raw")
    assert all(torch.equal(torch.load(out, weights_only=True)[name], raw[name]) for name in raw)


@pytest.mark.slow
def test_init_from_a_finished_step_is_keyed_loaded_recorded_and_named(trained, tmp_path, capsys):
    source = trained.tasks[0].paths.checkpoint
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    base, started = planned(tmp_path), planned(tmp_path, "--init", str(source))
    assert base.info.rows[0].key != started.info.rows[0].key
    assert base.tasks[0].key != started.tasks[0].key
    assert planned(tmp_path, "--init", str(source)).tasks[0].key == started.tasks[0].key  # stable
    record = {"path": str(source.resolve()), "sha256": sha, "holds": "roadmap checkpoint, ema weights"}
    assert started.info.init == record and started.tasks[0].init == record and base.info.init is None
    # The job's network (and, with an EMA, the EMA's) start from the checkpoint's reported weights.
    trainer = Trainer(planned(tmp_path, *WITH_EMA, "--init", str(source)).tasks[0])
    ema = checkpoint_weights(checkpoint(trained.tasks[0]), "ema")
    for model in (trainer.model, trainer.ema.module):
        assert all(torch.equal(value, ema[name]) for name, value in model.state_dict().items())
    del trainer
    trained_plan(tmp_path, "--init", str(source), "--epochs", "1")
    run_dir = tmp_path / RUN
    assert json.loads((run_dir / "run.json").read_text())["init"] == record
    assert json.loads((run_dir / "resnet50" / "0" / "task.json").read_text())["init"] == record
    run_info, frame = load_run(run_dir), collect(run_dir)
    caption = table_caption(run_info, aggregate(frame, run_info), frame)
    assert f"Started from checkpoint.pt (sha256 {sha[:8]}...; roadmap checkpoint, ema weights) instead of" in caption
    # A row without an EMA: eval scores its one network, equal to result.json.
    result = json.loads((run_dir / "resnet50" / "0" / "result.json").read_text())
    figures = evaluated(capsys, tmp_path)
    assert figures == {"raw": (result["top1"], result["top5"], "equal to result.json")}
    argv = ["export", "--run", RUN, "--step", "resnet50", "--results", str(tmp_path), "--out", str(tmp_path / "e.pt")]
    assert "trained without an EMA" in one_error_line(capsys, [*argv, "--ema"])


def network_file(tmp_path: Path, change) -> Path:
    """A state dict of the tiny resnet50 row's network, changed by `change`, saved to a file."""
    spec = planned(tmp_path / "plan").tasks[0].spec
    state = roadmap.build(spec).state_dict()
    change(state)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    return path


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a torch file")
    return path


def leave_marker(path: str) -> None:
    """What the unsafe pickles below run when read with pickle's full powers: a file appears."""
    Path(path).write_text("ran")


class RunsCode:
    """Pickled as a call of leave_marker(marker): a file holding it runs code when read without
    weights_only, and is refused unread with it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (leave_marker, (str(self.marker),))


def _runs_code(tmp_path: Path) -> Path:
    path = tmp_path / "unsafe.pth"
    torch.save({"stem.conv.weight": torch.zeros(1), "payload": RunsCode(tmp_path / "ran")}, path)
    return path


BAD_FILES = {
    "missing": (lambda tmp_path: tmp_path / "absent.pth", "absent.pth: no such file"),
    "garbage": (_garbage, "not a state dict or checkpoint torch can read"),
    "runs code": (_runs_code, "leave_marker, not only tensors and plain data; refused unread"),
    "shape": (
        lambda tmp_path: network_file(tmp_path, lambda s: s.update({"head.fc.weight": torch.zeros(3, 4)})),
        "does not fit the network of row resnet50: key 'head.fc.weight' has shape (3, 4) in the file",
    ),
    "missing key": (
        lambda tmp_path: network_file(tmp_path, lambda s: s.pop("stem.conv.weight")),
        "key 'stem.conv.weight' of the network is missing from the file",
    ),
    "extra key": (
        lambda tmp_path: network_file(tmp_path, lambda s: s.update({"extra.weight": torch.zeros(1)})),
        "the file's key 'extra.weight' is not in the network",
    ),
    "no tensors": (
        lambda tmp_path: network_file(tmp_path, lambda s: s.clear() or s.update({"a": 1})),
        "holds no state dict",
    ),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_bad_init_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, kind):
    make, expected = BAD_FILES[kind]
    results = tmp_path / "results"
    argv = [*ROW, "--executor", "local", "--results", str(results), "--init", str(make(tmp_path))]
    assert expected in one_error_line(capsys, argv)
    assert not results.exists()  # no run folder: nothing a later run could trust


@pytest.mark.parametrize(
    "index, timm_model, names, suffix",
    [(0, "resnet50", "timm resnet", ".pth"), (-1, "convnext_tiny", "timm convnext", ".safetensors")],
)
def test_timm_state_dict_starts_the_equivalent_network(tmp_path, index, timm_model, names, suffix):
    """A timm-format state dict (a torch file or safetensors) is renamed by the rules the equality
    tests use (roadmap.network.timm_names); the network it starts computes what timm's does."""
    spec = roadmap.specs("resnet50")[index][1].with_network(num_classes=10)
    reference = timm.create_model(timm_model, num_classes=10).eval()
    path = tmp_path / f"{timm_model}{suffix}"
    if suffix == ".safetensors":
        safetensors.torch.save_file(reference.state_dict(), str(path))
    else:
        torch.save(reference.state_dict(), path)
    init = plan_init(path, [("row", spec)])
    assert init.holds == f"state dict, {names} names"
    ours = roadmap.build(spec).eval()
    load_init(ours, init.to_json())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (ours(images) - reference(images)).abs().max().item() <= 1e-5


def test_eval_and_export_refuse_unknown_or_unfinished_steps(tmp_path, capsys):
    write_plan(planned(tmp_path))  # run.json only: nothing has trained
    where = ["--results", str(tmp_path)]
    cases = [
        (["eval", "--run", "nope", "--step", "resnet50", *where], f"runs in {tmp_path}: {RUN}"),
        (["eval", "--run", RUN, "--step", "nope", *where], f"run {RUN} has no row 'nope'; its rows: resnet50"),
        (["eval", "--run", RUN, "--step", "resnet50", "--seed", "3", *where], "has no seed 3 (its seeds: 0)"),
        (["eval", "--run", RUN, "--step", "resnet50", *where], "has not finished training (status: not started)"),
        (["export", "--run", RUN, "--step", "resnet50", "--out", str(tmp_path / "x.pth"), *where], "not finished"),
        (["export", "--run", RUN, "--step", "resnet50", *where], "the following arguments are required: --out"),
    ]
    for argv, expected in cases:
        assert expected in one_error_line(capsys, argv), argv
    assert not (tmp_path / "x.pth").exists()


def test_timm_state_dict_with_a_tensor_of_equal_size_but_another_shape_is_one_line_exit_2(tmp_path, capsys):
    """Renaming reshapes only timm's 1x1 convs into our Linear layers: a transposed weight (the same
    number of elements, another layout) keeps its shape, and the check names it. The full-size row
    is planned only (--plan with given throughputs: nothing is measured, trained or written)."""
    results = tmp_path / "results"
    full_size = [*ROW[:2], "--preset", "paper", "--dataset", "synthetic", "--results", str(results)]
    classes = plan_run(run_options(build_parser().parse_args(full_size))).tasks[0].spec.network.num_classes
    state = timm.create_model("resnet50", num_classes=classes).state_dict()
    state["fc.weight"] = state["fc.weight"].t().contiguous()
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    argv = [*full_size, "--init", str(path), "--plan", "--throughput", "1000", "--loader-throughput", "1000"]
    line = one_error_line(capsys, argv)
    assert f"key 'head.fc.weight' has shape (2048, {classes}) in the file, ({classes}, 2048) in the network" in line
    assert not results.exists()


@pytest.mark.parametrize(
    "timm_model, key, ours, shapes",
    [
        # timm's Linear layer, transposed.
        ("convnext_tiny", "mlp.fc1.weight", "pointwise1.weight", "(96, 384) in the file, (384, 96)"),
        # timm's 1x1 conv (reshaped when it is (out, in, 1, 1)), with its channels swapped.
        ("convnextv2_atto", "mlp.fc2.weight", "pointwise2.weight", "(160, 40, 1, 1) in the file, (40, 160)"),
    ],
)
def test_timm_convnext_tensor_of_another_shape_is_named(tmp_path, timm_model, key, ours, shapes):
    state = timm.create_model(timm_model).state_dict()
    state[f"stages.0.blocks.0.{key}"] = state[f"stages.0.blocks.0.{key}"].transpose(0, 1).contiguous()
    path = tmp_path / f"{timm_model}.safetensors"
    safetensors.torch.save_file(state, str(path))
    expected = f"key 'stages.0.blocks.0.{ours}' has shape {shapes} in the network"
    with pytest.raises(InitError, match=re.escape(expected)):
        plan_init(path, [("row", roadmap.model(timm_model))])


# -- eval / export / resume of a checkpoint holding an object that runs code ---------------------


def finished_untrained(results: Path):
    """The tiny resnet50 row's step x seed recorded as done, with a checkpoint of its key, without
    training: for the checks of `eval` / `export` where the weights' values do not matter."""
    plan = planned(results)
    write_plan(plan)
    task = plan.tasks[0]
    write_json(task.paths.task, dataclasses.asdict(task))
    write_json(task.paths.result, {"status": "done", "key": task.key, "epochs": 1})
    model = roadmap.build(task.spec).state_dict()
    torch.save({"key": task.key, "epoch": 1, "model": model, "optimizer": {}, "ema": None}, task.paths.checkpoint)
    return task


def with_payload(path: Path, marker: Path) -> None:
    """Rewrite the checkpoint `path` with an object that runs code when unpickled beside its content."""
    state = load_torch_file(path)
    state["payload"] = RunsCode(marker)
    torch.save(state, path)


def export_argv(results: Path, out: Path) -> list[str]:
    return ["export", "--run", RUN, "--step", "resnet50", "--results", str(results), "--out", str(out)]


def test_eval_and_export_refuse_a_checkpoint_that_would_run_code(tmp_path, capsys):
    task = finished_untrained(tmp_path)
    marker = tmp_path / "ran"
    with_payload(task.paths.checkpoint, marker)
    eval_argv = ["eval", "--run", RUN, "--step", "resnet50", "--results", str(tmp_path)]
    for argv in (export_argv(tmp_path, tmp_path / "x.pth"), eval_argv):
        line = one_error_line(capsys, argv)
        assert f"{task.paths.checkpoint} holds a pickled " in line and "leave_marker" in line, argv
        assert "refused unread" in line
    assert not marker.exists()  # nothing in the file ran
    assert not (tmp_path / "x.pth").exists()


@pytest.mark.slow
def test_resume_skips_a_checkpoint_that_would_run_code(trained, tmp_path):
    """A resumed step reads its checkpoint through the same loader: the unsafe newest file is refused
    unread and the step resumes from the checkpoint kept before it (epoch 1 of 2)."""
    run_dir = shutil.copytree(trained.run_dir, tmp_path / RUN)
    task = StepTask.from_json(json.loads((run_dir / "resnet50" / "0" / "task.json").read_text()), run_dir)
    marker = tmp_path / "ran"
    with_payload(task.paths.checkpoint, marker)
    trainer = Trainer(task)
    assert trainer.load_checkpoint() and trainer.epoch == 1
    assert not marker.exists()


# -- export: --out checked before the checkpoint is read, failed writes in one line --------------


def refuse_to_load(*args, **kwargs):
    raise AssertionError("export read the checkpoint before checking --out")


def test_export_into_a_missing_folder_is_one_line_before_loading(tmp_path, capsys, monkeypatch):
    finished_untrained(tmp_path)
    monkeypatch.setattr(roadmap.runs.step_export, "final_checkpoint", refuse_to_load)
    out = tmp_path / "absent" / "x.pth"
    assert f"the folder {out.parent} does not exist" in one_error_line(capsys, export_argv(tmp_path, out))
    assert not out.parent.exists()  # not created on the way
    monkeypatch.undo()  # an existing folder exports
    out.parent.mkdir()
    assert main(export_argv(tmp_path, out)) == 0 and out.is_file()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder: chmod does not bite")
def test_export_into_a_read_only_folder_is_one_line_before_loading(tmp_path, capsys, monkeypatch):
    finished_untrained(tmp_path)
    monkeypatch.setattr(roadmap.runs.step_export, "final_checkpoint", refuse_to_load)
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        line = one_error_line(capsys, export_argv(tmp_path, folder / "x.pth"))
    finally:
        folder.chmod(0o755)
    assert f"--out folder {folder} is not writable" in line
    assert not any(folder.iterdir())


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("failing", ["weights", "spec"])
def test_export_write_failure_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, failing):
    finished_untrained(tmp_path)
    out = tmp_path / "out" / "x.pth"
    out.parent.mkdir()
    if failing == "weights":
        monkeypatch.setattr(torch, "save", full_disk)
    else:
        monkeypatch.setattr(roadmap.runs.step_export, "write_json", full_disk)
    line = one_error_line(capsys, export_argv(tmp_path, out))
    assert f"could not write {out} ({os.strerror(errno.ENOSPC)})" in line
    assert not any(out.parent.iterdir())  # no temporary file, no state dict without its spec
