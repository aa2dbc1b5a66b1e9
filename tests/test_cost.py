"""Cost per step (measured throughput and memory under named numerics) and the cost study (--plan is
tested in test_plan.py). Every test holds on the CPU and on CUDA: what is device-specific is
asserted for the device it runs on, or pinned to the CPU with device="cpu"."""

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from roadmap import specs
from roadmap.cost.measure import Cost, best_of, measure, measure_settings
from roadmap.cost.numerics import Numerics
from roadmap.cost.settings import COST_SETTINGS, parse_cost_settings, unavailable_settings
from roadmap.report.cost_figures import RATIOS, ratio_markdown, ratio_table
from roadmap.report.cost_study import main as cost_study

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()


def _tiny(step: str = "sep_ds"):
    """A roadmap row at 1/16 of its widths and one block per stage: seconds to build and time."""
    spec = dict(specs("inceptionnext"))[step]
    widths = tuple(width // 16 for width in spec.network.widths)
    return spec.with_network(depths=(1, 1, 1, 1), widths=widths, stem_width=8 if step == "resnet50" else widths[0])


def test_measure_reports_positive_rates_and_its_conditions():
    cost = measure(_tiny("resnet50"), batch=2, resolution=64, warmup=1, iterations=1)
    assert cost.train_images_per_s > 0 and cost.infer_images_per_s > cost.train_images_per_s / 10
    assert cost.peak_memory_mb >= 0 and (cost.batch, cost.resolution, cost.compiled) == (2, 64, False)
    if torch.cuda.is_available():  # the device's defaults: bf16 + channels-last on a GPU
        assert cost.device == torch.cuda.get_device_name() and (cost.precision, cost.dtype) == ("bf16", "bfloat16")
        assert cost.channels_last and cost.memory_format == "channels_last"
    else:  # fp32, NCHW on the CPU
        assert cost.device.startswith("cpu") and (cost.precision, cost.dtype) == ("fp32", "float32")
        assert not cost.channels_last and cost.memory_format == "contiguous"


@pytest.mark.parametrize("precision, channels_last, dtype", [("fp32", False, "float32"), ("bf16", True, "bfloat16")])
def test_measure_honours_the_numerics_on_the_cpu(precision, channels_last, dtype):
    flags = torch.backends.cudnn.benchmark
    cost = measure(
        _tiny(),
        batch=2,
        resolution=32,
        warmup=1,
        iterations=1,
        device="cpu",
        numerics=Numerics(precision=precision, channels_last=channels_last, compile=False),
    )
    assert (cost.precision, cost.dtype, cost.channels_last, cost.compiled) == (precision, dtype, channels_last, False)
    assert cost.memory_format == ("channels_last" if channels_last else "contiguous")
    assert cost.train_images_per_s > 0 and cost.infer_images_per_s > 0 and (cost.warmup, cost.iterations) == (1, 1)
    assert torch.backends.cudnn.benchmark == flags  # a measurement leaves the backend flags as it found them


@pytest.mark.slow
def test_measure_compiles_when_the_numerics_say_so():
    cost = measure(
        _tiny(),
        batch=2,
        resolution=32,
        warmup=0,
        iterations=2,
        device="cpu",
        numerics=Numerics(precision="fp32", channels_last=False, compile=True),
    )
    assert cost.compiled and cost.train_images_per_s > 0 and cost.infer_images_per_s > 0
    assert cost.warmup >= 2 and cost.warmup_s > 0  # compilation happens in untimed warm-up steps


def test_cost_settings_parse_with_one_line_errors():
    assert parse_cost_settings(" paper, bf16_cl,BF16-CL ,bf16-compiled") == ("paper", "bf16-cl", "bf16-compiled")
    for text in ("paper,fp64", "", " , "):
        with pytest.raises(ValueError) as error:
            parse_cost_settings(text)
        message = str(error.value)
        assert "\n" not in message and all(name in message for name in COST_SETTINGS)


def test_settings_resolve_per_device():
    paper = COST_SETTINGS["paper"]
    on_gpu, on_cpu = paper.for_device(torch.device("cuda")), paper.for_device(torch.device("cpu"))
    assert (on_gpu.precision, on_gpu.batch, on_gpu.channels_last) == ("tf32", 128, None)
    assert [numerics.channels_last for numerics in on_gpu.numerics()] == [False, True]  # the better of both
    assert (on_cpu.precision, on_cpu.batch, on_cpu.channels_last) == ("fp32", 32, False)
    assert COST_SETTINGS["bf16-compiled"].numerics()[0].compile
    assert set(unavailable_settings(["paper", "tf32", "tf32-cl", "bf16-cl"], "cpu")) == {"tf32", "tf32-cl"}
    assert unavailable_settings(["paper", "tf32", "bf16-compiled"], "cuda") == {}


def test_best_of_keeps_the_better_figure_of_each_layout():
    nchw = Cost(
        train_images_per_s=100.0,
        infer_images_per_s=500.0,
        peak_memory_mb=10.0,
        device="gpu",
        dtype="float32",
        batch=128,
        resolution=224,
        memory_format="contiguous",
        precision="tf32",
    )
    channels_last = replace(
        nchw,
        train_images_per_s=120.0,
        infer_images_per_s=400.0,
        memory_format="channels_last",
        channels_last=True,
        peak_memory_mb=12.0,
    )
    best = best_of([nchw, channels_last])
    assert (best.train_images_per_s, best.infer_images_per_s, best.peak_memory_mb) == (120.0, 500.0, 12.0)
    assert best.memory_format == "channels_last (train), contiguous (infer)" and best.channels_last


def test_measure_settings_gives_flat_keys_per_setting():
    device = "cuda" if CUDA else "cpu"
    record = measure_settings(
        _tiny(), ["bf16-cl", "tf32", "fp32"], device, batch=2, resolution=32, warmup=1, iterations=1
    )
    assert record["cost_settings"] == ["bf16-cl", "tf32", "fp32"] and record["cost_setting"] == "bf16-cl"
    for key in ("bf16_cl", "tf32", "fp32"):
        for field in (
            "train_images_per_s",
            "infer_images_per_s",
            "peak_memory_mb",
            "precision",
            "channels_last",
            "compiled",
            "batch",
            "skipped",
        ):
            assert f"cost_{key}_{field}" in record
    assert record["cost_bf16_cl_precision"] == "bf16" and record["cost_bf16_cl_channels_last"] is True
    assert record["cost_fp32_precision"] == "fp32" and record["cost_fp32_train_images_per_s"] > 0
    # The plain cost_* keys (the current table's) come from the first measured setting.
    assert record["cost_train_images_per_s"] == record["cost_bf16_cl_train_images_per_s"]
    assert record["cost_dtype"] == "bfloat16" and record["cost_batch"] == 2
    if CUDA:
        assert record["cost_tf32_skipped"] is None and record["cost_tf32_precision"] == "tf32"
    else:  # TF32 needs CUDA: skipped with the reason, no figures
        assert "CUDA" in record["cost_tf32_skipped"] and record["cost_tf32_train_images_per_s"] is None


def _fake_measurements() -> pd.DataFrame:
    rates = {  # row: (train, infer) in setting "a", then in setting "b"
        "resnet50": ((100.0, 400.0), (100.0, 400.0)),
        "sep_ds": ((50.0, 300.0), (120.0, 300.0)),
        "inception": ((80.0, 330.0), (60.0, 290.0)),
        "k3": ((70.0, 400.0), (70.0, 400.0)),
        "k3_par1_2": ((75.0, 412.0), (75.0, 480.0)),
    }
    return pd.DataFrame.from_records(
        [
            {"row": row, "setting": setting, "train_images_per_s": pair[index][0], "infer_images_per_s": pair[index][1]}
            for row, pair in rates.items()
            for index, setting in enumerate(("a", "b"))
        ]
    )


def test_ratio_table_against_hand_computed_values():
    table = ratio_table(_fake_measurements()).set_index(["ratio", "metric", "setting"])
    row = table.loc[("ConvNeXt-T / ResNet-50", "train", "a")]
    assert row.measured == pytest.approx(0.5) and row.paper_A100 == pytest.approx(575 / 969)
    assert row.paper_2080Ti == pytest.approx(177 / 278) and row.claim == "slower" and row.holds
    assert table.loc[("ConvNeXt-T / ResNet-50", "train", "b")].measured == pytest.approx(1.2)
    assert not table.loc[("ConvNeXt-T / ResNet-50", "train", "b")].holds
    inception = table.loc[("InceptionNeXt-T / ConvNeXt-T", "train", "b")]
    assert inception.measured == pytest.approx(0.5) and inception.claim == "faster" and not inception.holds
    assert table.loc[("InceptionNeXt-T / ConvNeXt-T", "infer", "a")].measured == pytest.approx(1.1)
    assert table.loc[("InceptionNeXt-T / ConvNeXt-T", "infer", "a")].paper_A100 == pytest.approx(2900 / 2413)
    half = table.loc[("3x3 on 1/2 / on all channels", "infer", "a")]  # paper 2740 / 2802: about equal
    assert half.claim == "similar" and half.measured == pytest.approx(1.03) and half.holds
    assert math.isnan(half.paper_2080Ti)  # Table 1 has A100 figures only
    assert not table.loc[("3x3 on 1/2 / on all channels", "infer", "b")].holds  # 1.2: not similar
    assert table.loc[("3x3 on 1/2 / on all channels", "train", "a")].claim == "similar"  # 818 / 798
    # Ratios whose rows were not both measured are left out (no k5, no sep_ds for k3 / k7).
    assert set(table.index.get_level_values("ratio")) == {
        "ConvNeXt-T / ResNet-50",
        "InceptionNeXt-T / ConvNeXt-T",
        "dw 3x3 / dw 7x7 (ConvNeXt-T)",
        "3x3 on 1/2 / on all channels",
    }
    assert len(table) == 4 * 2 * 2 and len(RATIOS) == 9
    assert table.loc[("dw 3x3 / dw 7x7 (ConvNeXt-T)", "train", "a")].measured == pytest.approx(1.4)
    text = ratio_markdown(ratio_table(_fake_measurements()), "conditions here")
    assert (
        text.startswith("conditions here")
        and "| ConvNeXt-T / ResNet-50 | train | Table 4 | 0.59 | 0.64 | slower | 0.50 (holds) | 1.20 (fails) |" in text
    )


def test_cost_study_on_the_cpu_writes_its_files(tmp_path, capsys):
    status = cost_study(
        [
            "--device",
            "cpu",
            "--rows",
            "resnet50,sep_ds",
            "--settings",
            "fp32",
            "--resolution",
            "32",
            "--batch",
            "2",
            "--warmup",
            "0",
            "--iterations",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert status == 0
    out, err = capsys.readouterr()
    assert "[2/2] sep_ds under fp32" in err and "ConvNeXt-T / ResNet-50" in out
    measured = pd.read_csv(tmp_path / "cost.csv")
    assert list(measured.row) == ["resnet50", "sep_ds"] and (measured.train_images_per_s > 0).all()
    assert (measured.batch == 2).all() and (measured.resolution == 32).all() and (measured.precision == "fp32").all()
    assert measured.gflops.between(0.05, 0.2).all()  # full-size networks at 32 px: 4.1-4.5 G x (32/224)^2
    assert "fp32" in (tmp_path / "cost_ratios.md").read_text()
    assert len(pd.read_csv(tmp_path / "cost_ratios.csv")) == 2  # ConvNeXt-T / ResNet-50, train and infer
    assert (tmp_path / "cost_speed.png").stat().st_size > 0 and (tmp_path / "cost_speed.pdf").exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--rows", "nope"], "unknown row 'nope'"),
        (["--settings", "fp64"], "unknown cost setting 'fp64'"),
        (["--device", "cpu", "--settings", "tf32"], "tf32 needs a CUDA device"),
        (["--batch", "0"], "positive integer"),
        (["--device", "tpu"], "choose cuda or cpu"),
    ],
)
def test_cost_study_refuses_bad_input_in_one_line(argv, words, capsys):
    assert cost_study(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("run_roadmap.py cost: error: ") and words in err and err.count("\n") == 1
