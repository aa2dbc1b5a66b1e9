"""Checkpoints in and out: `eval` scores a finished step's saved weights again and gets result.json's
figures to the last digit, `export` writes a state dict that timm loads into the step's network,
and `--init` starts every step of a run from a file's weights (in the step's key, run.json, the task
and the caption), refusing a file that does not fit in one line before anything is written.

Steps are planned through the command line's own parsing and trained for real on the tiny preset."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

import roadmap
from roadmap.cli import main, run_options
from roadmap.cli_arguments import build_parser
from roadmap.init_weights import load_init, plan_init
from roadmap.job import run_step
from roadmap.results import aggregate, collect, load_run, table_caption
from roadmap.runs import plan_run, write_plan
from roadmap.spec import Spec
from roadmap.step_weights import checkpoint_weights
from roadmap.timm_models import timm_name
from roadmap.train import Trainer

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
    return torch.load(task.paths.checkpoint, map_location="cpu", weights_only=False)


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
    assert Spec.from_dict(json.loads((tmp_path / "x.spec.json").read_text())) == Spec.from_dict(task.spec)
    # The printed line, run as it is, builds the step's network with the exported weights.
    namespace: dict = {}
    exec(printed[1], namespace)
    loaded = namespace["model"].eval()
    ours = roadmap.build(Spec.from_dict(task.spec)).eval()
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
    spec = Spec.from_dict(planned(tmp_path / "plan").tasks[0].spec)
    state = roadmap.build(spec).state_dict()
    change(state)
    path = tmp_path / "weights.pth"
    torch.save(state, path)
    return path


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"not a torch file")
    return path


BAD_FILES = {
    "missing": (lambda tmp_path: tmp_path / "absent.pth", "absent.pth: no such file"),
    "garbage": (_garbage, "not a state dict or checkpoint torch can read"),
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
    tests use (roadmap.timm_names); the network it starts computes what timm's does."""
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
