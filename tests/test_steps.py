"""Steps are pure, compose in other orders, and refuse what cannot mean anything."""

import dataclasses
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import roadmap
from roadmap import Spec, SpecError, compose
from steps import REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def test_registry_names_labels_and_order():
    expected = [
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
        "sep_ds",
    ]
    assert [step for step, _ in roadmap.specs("resnet50")] == expected
    for step in REGISTRY.values():
        assert step.label and step.description and step.function.__module__.startswith("steps.")
        assert step.function.__doc__


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_step_is_pure(name):
    """Applied to the networks of the paper's path, a step never changes its input."""
    for _, base in roadmap.specs("resnet50", branches=False)[::4]:
        before = base.to_json()
        try:
            REGISTRY[name].apply(base)
        except SpecError:
            continue  # a step that needs another one first refuses, which is fine here
        assert base.to_json() == before


def test_a_new_step_is_one_new_module(tmp_path):
    """A module dropped into the steps package is a step: the CLI composes it, nothing else changes."""
    shutil.copytree(ROOT / "steps", tmp_path / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "steps" / "double_width.py").write_text(
        textwrap.dedent('''
        """Row "double width": twice the channels in every stage (not a paper row)."""

        from roadmap.spec import Spec
        from steps.registry import Step


        def double_width(spec: Spec) -> Spec:
            """Double the stem and every stage's width."""
            network = spec.network
            return spec.with_network(stem_width=2 * network.stem_width, widths=tuple(2 * w for w in network.widths))


        STEPS = (Step("double_width", double_width, "double width", "twice the channels of every stage"),)
    ''')
    )
    command = "import sys; from roadmap.cli.commands import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", command, "--steps", "resnet50,double-width", "--flops-only", "--format", "csv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        # The new module's folder first; whatever path the project itself came from stays behind it.
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(",")[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == {"resnet50", "double_width"} and "double width" in rows["double_width"]


def test_json_round_trip_and_hash():
    for _, spec in roadmap.specs("resnet200"):
        again = Spec.from_json(spec.to_json())
        assert again == spec and again.content_hash() == spec.content_hash()
    hashes = {spec.content_hash() for _, spec in roadmap.specs("resnet50")}
    assert len(hashes) == 17  # every row differs (gelu vs kernel differ in activation, etc.)
    assert Spec().content_hash(extra={"seed": 1}) != Spec().content_hash(extra={"seed": 2})


def test_branch_rows_share_the_kernel_parent():
    rows = dict(roadmap.specs("resnet50"))
    assert rows["kernel5"].network.kernel_size == 5
    assert rows["kernel11"] == dataclasses.replace(
        rows["kernel"], network=dataclasses.replace(rows["kernel"].network, kernel_size=11)
    )
    assert rows["gelu"].network.kernel_size == 7


def test_ln_without_fewer_norm_and_gelu_alone():
    ln_only = compose(["resnet50", "ln"])[-1][1]
    model = roadmap.build(ln_only)
    assert not any(type(m).__name__.startswith("BatchNorm") for m in model.modules())
    gelu_only = compose(["resnet50", "gelu"])[-1][1]
    assert gelu_only.network.activation == "gelu" and gelu_only.network.depths == (3, 4, 6, 3)
    assert roadmap.complexity(gelu_only).gflops == pytest.approx(4.089, abs=1e-3)


def test_steps_commute_where_the_order_is_arbitrary():
    path = ["resnet50", "recipe", "stage_ratio", "patchify", "depthwise", "width", "invert"]
    paper_order = compose(path + ["move_up", "kernel", "gelu", "fewer_act", "fewer_norm", "ln", "sep_ds"])[-1][1]
    other_order = compose(path + ["ln", "fewer_norm", "sep_ds", "fewer_act", "gelu", "kernel", "move_up"])[-1][1]
    assert paper_order == other_order


def test_applying_twice_is_idempotent_or_an_error():
    start = roadmap.specs("resnet50", upto="width")[-1][1]
    for name in (
        "recipe",
        "stage_ratio",
        "patchify",
        "depthwise",
        "width",
        "move_up",
        "kernel",
        "gelu",
        "fewer_act",
        "fewer_norm",
        "ln",
        "sep_ds",
    ):
        once = REGISTRY[name].apply(start)
        assert REGISTRY[name].apply(once) == once, name
    with pytest.raises(SpecError, match="invert"):
        compose(["invert"], start=compose(["invert"], start=start)[-1][1])


def test_meaningless_compositions_name_the_step():
    with pytest.raises(SpecError, match="stage_ratio"):
        compose([roadmap.Entry("stage_ratio", {"depths": (3, 3, 9)})])
    with pytest.raises(SpecError, match="kernel"):
        compose([roadmap.Entry("kernel", {"size": 4})])
    with pytest.raises(ValueError, match="unknown step"):
        compose(["resnet50", "nosuchstep"])
