"""Ablation modes: cumulative, leave-one-out, single steps and custom step lists."""

import pytest
import torch

import roadmap
from roadmap.network.roadmaps import RoadmapError, mode_plan, mode_specs
from steps import REGISTRY

RESNET50_MAIN = [
    "recipe",
    "stage_ratio",
    "patchify",
    "depthwise",
    "width",
    "invert",
    "move_up",
    "kernel",
    "gelu",
    "fewer_act",
    "fewer_norm",
    "ln",
    "sep_ds",
]


def names(rows):
    return [name for name, _ in rows]


def test_cumulative_is_the_paper_path():
    for name in ("resnet50", "convnext_v2", "inceptionnext"):
        assert mode_specs(name, "cumulative") == roadmap.specs(name)
    assert mode_specs("resnet50", "cumulative", upto="kernel", branches=False) == roadmap.specs(
        "resnet50", "kernel", False
    )


def test_leave_one_out_rows():
    rows = mode_specs("resnet50", "leave_one_out")
    assert names(rows) == ["final"] + [f"without_{step}" for step in RESNET50_MAIN]
    final = dict(rows)["final"]
    assert final == roadmap.specs("resnet50")[-1][1]
    assert all(spec != final for name, spec in rows[1:])
    # Each row is the path minus one step, in order.
    path = ["resnet50"] + RESNET50_MAIN
    assert dict(rows)["without_invert"] == roadmap.compose([s for s in path if s != "invert"])[-1][1]
    assert dict(rows)["without_gelu"].network.activation == "relu"
    # `upto` moves the final network; a branch row cannot be a final network.
    short = mode_specs("resnet50", "leave_one_out", upto="invert")
    assert names(short) == ["final"] + [f"without_{step}" for step in RESNET50_MAIN[:6]]
    assert dict(short)["final"] == dict(roadmap.specs("resnet50"))["invert"]
    with pytest.raises(RoadmapError, match="branch"):
        mode_specs("resnet50", "leave_one_out", upto="kernel5")


def test_leave_one_out_skips_with_reasons():
    plan = mode_plan("inceptionnext", "leave_one_out")
    skipped = dict(plan.skipped)
    # inception needs a depthwise spatial-first block and separate downsampling ...
    for needed in ("depthwise", "move_up", "sep_ds"):
        assert skipped[f"without_{needed}"].startswith(f"inception needs {needed}: ")
    # ... and overrides the kernel size (3) and the norm (BN): those rows would equal `final`.
    for overridden in ("kernel", "ln"):
        assert "same spec as final" in skipped[f"without_{overridden}"]
    assert sorted(names(plan.rows)[1:] + list(skipped)) == sorted(f"without_{s}" for s in RESNET50_MAIN + ["inception"])
    final = dict(plan.rows)["final"]
    assert final == dict(roadmap.specs("inceptionnext"))["inception"]
    assert all(spec != final for _, spec in plan.rows[1:])
    v2 = mode_plan("convnext_v2", "leave_one_out")
    assert [name for name, _ in v2.skipped] == ["without_invert"] and "grn needs invert" in v2.skipped[0][1]


def test_single_rows():
    plan = mode_plan("resnet50", "single")
    branches = ["kernel5", "kernel9", "kernel11"]
    expected = RESNET50_MAIN[:8] + branches + RESNET50_MAIN[8:]
    assert names(plan.rows) == ["resnet50"] + [f"only_{step}" for step in expected] and not plan.skipped
    baseline = plan.rows[0][1]
    assert all(spec != baseline for _, spec in plan.rows[1:])
    assert dict(plan.rows)["only_gelu"] == baseline.with_network(activation="gelu")
    assert len(mode_specs("resnet50", "single", branches=False)) == 1 + len(RESNET50_MAIN)
    assert names(mode_specs("resnet50", "single", upto="patchify")) == [
        "resnet50",
        "only_recipe",
        "only_stage_ratio",
        "only_patchify",
    ]
    # Steps that need earlier ones cannot apply to ResNet-50 alone: skipped with the reason.
    skipped = dict(mode_plan("inceptionnext", "single").skipped)
    assert set(skipped) == {
        "only_inception",
        "only_k5",
        "only_k3",
        "only_k3_par1_2",
        "only_k3_par3_8",
        "only_k3_par1_4",
        "only_k3_par1_8",
        "only_k3_par1_16",
    }
    assert skipped["only_inception"].startswith("inception cannot apply to resnet50: needs a depthwise")
    assert "invert" in dict(mode_plan("convnext_v2", "single").skipped)["only_grn"]


def test_custom_steps_compose_on_the_origin():
    rows = mode_specs("resnet200", "custom", steps=["gelu", "ln"])
    assert names(rows) == ["resnet200", "gelu", "ln"]
    assert rows == roadmap.compose(["resnet200", "gelu", "ln"])
    assert names(mode_specs("resnet50", "custom", steps=["resnet200", "depthwise"])) == ["resnet200", "depthwise"]
    with pytest.raises(RoadmapError, match="distinct"):
        mode_specs("resnet50", "custom", steps=["gelu", "gelu"])
    with pytest.raises(RoadmapError, match="origin"):
        mode_specs("resnet50", "custom", steps=["gelu", "resnet50"])
    with pytest.raises(RoadmapError, match="non-empty"):
        mode_specs("resnet50", "custom", steps=[])
    with pytest.raises(roadmap.SpecError, match="^grn: needs an inverted"):
        mode_specs("resnet50", "custom", steps=["grn"])


def test_mode_names_are_checked():
    with pytest.raises(RoadmapError, match="unknown mode 'ablate'.*leave_one_out"):
        mode_specs("resnet50", "ablate")
    with pytest.raises(RoadmapError, match="custom"):
        mode_specs("resnet50", "single", steps=["gelu"])
    assert mode_specs("resnet50", "leave-one-out") == mode_specs("resnet50", "leave_one_out")


@pytest.mark.parametrize("roadmap_name", ["resnet50", "resnet200", "convnext_v2", "inceptionnext"])
@pytest.mark.parametrize("mode", ["leave_one_out", "single"])
def test_row_names_are_unique_and_stable(roadmap_name, mode):
    first, again = mode_specs(roadmap_name, mode), mode_specs(roadmap_name, mode)
    assert names(first) == names(again) and len(set(names(first))) == len(first)
    assert [spec.content_hash() for _, spec in first] == [spec.content_hash() for _, spec in again]
    assert len({spec.content_hash() for _, spec in first}) == len(first)  # no two rows train the same thing
    assert all(REGISTRY[name.partition("_")[2]] for name, _ in first[1:])


@pytest.mark.parametrize("mode", ["leave_one_out", "single"])
def test_every_row_builds_and_runs(mode):
    for name, spec in mode_specs("inceptionnext", mode):
        # One block per stage keeps every structural change and builds in a fraction of the time.
        shallow = spec.with_network(depths=(1,) * len(spec.network.depths), num_classes=10)
        model = roadmap.build(shallow).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10), name
