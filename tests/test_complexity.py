"""Golden GFLOPs of every row of Tables 10 and 11, and the paper's two misprints."""

import pytest

import roadmap
from roadmap.network.paper_values import paper_table

# Paper-convention GFLOPs at 224 (conv + linear multiply-adds), held as golden values.
GOLDEN = {
    "resnet50": {
        "resnet50": 4.089,
        "recipe": 4.089,
        "stage_ratio": 4.526,
        "patchify": 4.418,
        "depthwise": 2.350,
        "width": 5.268,
        "invert": 4.644,
        "move_up": 4.065,
        "kernel": 4.146,
        "kernel5": 4.097,
        "kernel9": 4.210,
        "kernel11": 4.291,
        "gelu": 4.146,
        "fewer_act": 4.146,
        "fewer_norm": 4.146,
        "ln": 4.146,
        "sep_ds": 4.456,
    },
    "resnet200": {
        "resnet200": 15.007,
        "recipe": 15.007,
        "stage_ratio": 14.518,
        "patchify": 14.376,
        "depthwise": 7.234,
        "width": 16.764,
        "invert": 15.679,
        "move_up": 14.627,
        "kernel": 14.807,
        "kernel5": 14.699,
        "kernel9": 14.950,
        "kernel11": 15.130,
        "gelu": 14.807,
        "fewer_act": 14.807,
        "fewer_norm": 14.807,
        "ln": 14.807,
        "sep_ds": 15.355,
    },
}
# Table 10 rows the paper got wrong (papers.md section 7, items 1-2).
MISPRINTS = {("resnet50", "ln"), ("resnet50", "sep_ds")}


@pytest.mark.parametrize("name", ["resnet50", "resnet200"])
def test_every_row_matches_golden_and_paper(name):
    rows = roadmap.specs(name)
    assert [step for step, _ in rows] == list(GOLDEN[name])
    paper = paper_table(name)
    for step, spec in rows:
        counted = roadmap.complexity(spec).gflops
        assert counted == pytest.approx(GOLDEN[name][step], abs=5e-4), step
        if (name, step) in MISPRINTS:
            assert abs(counted - paper.at[step, "paper_gflops"]) > 0.005, step
            assert paper.at[step, "note"], step
        else:
            assert counted == pytest.approx(paper.at[step, "paper_gflops"], abs=0.005), step


def test_fvcore_total_and_params_are_reported():
    counts = roadmap.complexity(roadmap.specs("resnet50")[0][1])
    assert counts.params == 25_557_032
    # fvcore's default total also counts BatchNorm and pooling: 4.112 vs 4.089 (papers.md section 8).
    assert counts.gflops_fvcore_total == pytest.approx(4.112, abs=1e-3)
    assert counts.activations_m > 10


def test_resolution_scales_flops():
    spec = roadmap.specs("resnet50")[-1][1]
    at_224, at_384 = roadmap.complexity(spec, 224).gflops, roadmap.complexity(spec, 384).gflops
    assert at_384 == pytest.approx(13.09, abs=0.01)  # ConvNeXt-T at 384 (papers.md 4.2)
    assert at_384 > at_224 * 2.5
