"""The command line: complexity table, machine-readable output, one-line errors with exit code 2."""

import io
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import timm
from conftest import ROOT, run_cli  # the script in a subprocess
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap.cli.commands import main
from roadmap.network.roadmaps import ROADMAPS, specs
from steps import REGISTRY


def test_flops_only_upto_ln_table():
    result = run_cli("--upto", "ln", "--flops-only", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    body = [
        line
        for line in lines[1:]
        if line.split()
        and line.split()[0]
        in {
            "resnet50",
            "recipe",
            "stage_ratio",
            "patchify",
            "depthwise",
            "width",
            "invert",
            "move_up",
            "kernel",
            "kernel5",
            "kernel9",
            "kernel11",
            "gelu",
            "fewer_act",
            "fewer_norm",
            "ln",
        }
    ]
    assert len(body) == 16
    assert "4.146*" in result.stdout and "copy error" in result.stdout
    assert "conv and linear" in result.stdout  # the convention is stated in the caption


def cli_output(capsys, *args: str) -> str:
    """The CLI in process (its complexity cache is then shared with the other tests): exit 0, stdout."""
    code = main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("output_format", ["csv", "json"])
def test_machine_readable_outputs(capsys, output_format):
    out = cli_output(capsys, "--roadmap", "resnet200", "--upto", "move-up", "--flops-only", "--format", output_format)
    frame = pd.read_csv(io.StringIO(out)) if output_format == "csv" else pd.DataFrame(json.loads(out))
    assert list(frame.step) == [
        "resnet200",
        "recipe",
        "stage_ratio",
        "patchify",
        "depthwise",
        "width",
        "invert",
        "move_up",
    ]
    assert frame.loc[frame.step == "width", "gflops"].item() == pytest.approx(16.764, abs=1e-3)
    assert frame.loc[frame.step == "width", "paper_gflops"].item() == pytest.approx(16.76)


@pytest.mark.parametrize("output_format", ["csv", "json"])
def test_list_shows_every_registered_step_with_its_roadmaps(capsys, output_format):
    out = cli_output(capsys, "--list", "--format", output_format)
    frame = (
        pd.read_csv(io.StringIO(out), keep_default_na=False)
        if output_format == "csv"
        else pd.DataFrame(json.loads(out))
    )
    assert sorted(frame.step) == sorted(REGISTRY)  # GRN, InceptionNeXt, co-design and fcmae rows too
    roadmaps = dict(zip(frame.step, frame.roadmaps.str.split()))
    for name, record in ROADMAPS.items():
        for entry in record.entries:
            assert (name in roadmaps[entry.step]) != entry.hidden, (name, entry.step)
    assert roadmaps["kernel11"] == ["resnet50", "resnet200", "convnext_v2", "inceptionnext"]
    assert roadmaps["grn"] == ["convnext_v2"] and roadmaps["inception"] == ["inceptionnext"]
    assert roadmaps["v2_fcmae"] == ["convnext_v2_codesign"] and roadmaps["fcmae"] == []  # on no roadmap
    # Each listed timm name creates that row's network, one name per roadmap.
    models = dict(zip(frame.step, frame.timm_models.str.split()))
    assert models["kernel11"] == [f"roadmap_{name}_kernel11" for name in roadmaps["kernel11"]]
    assert models["grn"] == ["roadmap_convnext_v2_grn"] and models["fcmae"] == []
    assert timm.create_model(models["grn"][0]).spec == dict(specs("convnext_v2"))["grn"]
    # The same listing whatever --roadmap says (it names that roadmap's row count in the table's caption).
    assert cli_output(capsys, "--roadmap", "inceptionnext", "--list", "--format", output_format) == out


def test_list_table_names_the_roadmaps(capsys):
    listed = cli_output(capsys, "--roadmap", "resnet200", "--list")
    assert listed.splitlines()[0].split()[:6] == [
        "step",
        "label",
        "branch_of",
        "roadmaps",
        "timm_models",
        "description",
    ]
    assert f"{len(REGISTRY)} registered steps" in listed and "Roadmap resnet200: 17 rows." in listed


@pytest.mark.parametrize("cluster", [False, True], ids=["no-slurm", "slurm-answers"])
@pytest.mark.parametrize(
    "args", [["--upto", "bogus"], ["--preset", "bogus"], ["--steps", "gelu,nope"], ["--seeds", "0"]], ids=str
)
def test_bad_input_prints_exactly_one_line(tmp_path, args, cluster):
    # Checked before the executor is chosen: no line about SLURM, even where a controller answers
    # (a stand-in `scontrol` on PATH), and none about its absence.
    environment = dict(os.environ)
    if cluster:
        fake = tmp_path / "bin" / "scontrol"
        fake.parent.mkdir()
        fake.write_text("#!/bin/sh\necho 'Slurmctld(primary) at localhost is UP'\n")
        fake.chmod(0o755)
        environment["PATH"] = f"{fake.parent}{os.pathsep}{environment['PATH']}"
    finished = subprocess.run(
        [sys.executable, "run_roadmap.py", *args, "--results", str(tmp_path / "results")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert finished.returncode == 2
    lines = (finished.stdout + finished.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_roadmap.py: error: "), lines
    assert not (tmp_path / "results").exists()


def test_resolution(capsys):
    at_256 = cli_output(capsys, "--upto", "resnet50", "--flops-only", "--resolution", "256", "--format", "json")
    assert json.loads(at_256)[0]["gflops"] == pytest.approx(4.089 * (256 / 224) ** 2, rel=0.02)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--upto", "nosuchstep", "--flops-only"], "choose one of: resnet50, recipe"),
        (["--roadmap", "resnet18", "--flops-only"], "choose one of: resnet50, resnet200"),
        (["--resolution", "100", "--flops-only"], "positive multiple of 32"),
        (["--resolution", "-32", "--flops-only"], "positive multiple of 32"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, args, expected):
    # In process: the script's own exit code and stderr are covered by test_flops_only_upto_ln_table
    # and the subprocess runs of test_train and test_faults.
    assert expected in one_error_line(capsys, args)
