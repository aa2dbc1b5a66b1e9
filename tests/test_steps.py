"""Steps are pure, compose in other orders, and refuse what cannot mean anything."""

import dataclasses

import pytest

import roadmap
from roadmap import Spec, SpecError, compose
from steps import REGISTRY, STEPS


def test_registry_names_labels_and_order():
    expected = ["resnet50", "recipe", "stage_ratio", "patchify", "depthwise", "width", "invert", "move_up",
                "kernel", "kernel5", "kernel9", "kernel11", "gelu", "fewer_act", "fewer_norm", "ln", "sep_ds"]
    assert [step for step, _ in roadmap.specs("resnet50")] == expected
    for step in STEPS:
        assert step.label and step.description and step.function.__module__.startswith("steps.")
        assert step.function.__doc__


def test_steps_are_pure():
    base = roadmap.specs("resnet50", upto="invert")[-1][1]
    before = base.to_json()
    for name in ("move_up", "kernel", "gelu", "fewer_act", "fewer_norm", "ln", "sep_ds"):
        REGISTRY[name].apply(base)
    assert base.to_json() == before


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
    assert rows["kernel11"] == dataclasses.replace(rows["kernel"], network=dataclasses.replace(rows["kernel"].network, kernel_size=11))
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
    for name in ("recipe", "stage_ratio", "patchify", "depthwise", "width", "move_up", "kernel", "gelu",
                 "fewer_act", "fewer_norm", "ln", "sep_ds"):
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
