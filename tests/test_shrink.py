"""The opt-in pre-shrunk copy of a folder dataset: real JPEG files, built once, checked on every use."""

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli  # the script in a subprocess
from PIL import Image
from test_faults import one_error_line  # in-process CLI: exit 2, one stderr line

from roadmap.data.datasets import DataError, load_datasets
from roadmap.data.shrink import ShrinkError, describe, shrunk_copy
from roadmap.data.source import DataSource
from roadmap.files.atomic import read_json
from roadmap.runs.options import RunOptions
from roadmap.runs.plan import plan_run

ROOT = Path(__file__).resolve().parents[1]


def jpeg_folder(root: Path, sizes=((240, 180), (50, 40), (200, 300)), classes=("a", "b")) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for index, (width, height) in enumerate(sizes):
                pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{index}.jpg", quality=90)
    return root


def test_copy_is_shrunk_once_and_small_files_are_kept_as_they_are(tmp_path):
    data = jpeg_folder(tmp_path / "data")
    copy = shrunk_copy(data, 64, tmp_path / "cache")
    for path in data.rglob("*.jpg"):
        shrunk = copy / path.relative_to(data)
        with Image.open(path) as original, Image.open(shrunk) as small:
            if min(original.size) <= 64:
                assert shrunk.read_bytes() == path.read_bytes()
            else:
                assert min(small.size) == 64
                assert small.size[0] / small.size[1] == pytest.approx(original.size[0] / original.size[1], rel=0.03)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert len(manifest["files"]) == 12 and manifest["shorter_side"] == 64
    stamp = (copy / "manifest.json").stat().st_mtime_ns
    assert shrunk_copy(data, 64, tmp_path / "cache") == copy  # found, not rebuilt
    assert (copy / "manifest.json").stat().st_mtime_ns == stamp
    assert [path.name for path in (tmp_path / "cache").iterdir()] == [copy.name]  # no partial folder left
    with pytest.raises(ShrinkError, match="positive number of pixels"):
        shrunk_copy(data, 0, tmp_path / "cache")


def test_ppm_copy_holds_the_resized_pixels_uncompressed(tmp_path):
    data = jpeg_folder(tmp_path / "data")
    copy = shrunk_copy(data, 64, tmp_path / "cache", storage="ppm")
    assert copy != shrunk_copy(data, 64, tmp_path / "cache")  # another copy than the JPEG one
    for path in data.rglob("*.jpg"):
        with Image.open(path) as original:
            pixels = original.convert("RGB")
        if min(pixels.size) > 64:
            scale = 64 / min(pixels.size)
            shape = (round(pixels.size[0] * scale), round(pixels.size[1] * scale))
            pixels = pixels.resize(shape, Image.BICUBIC)
        stored = copy / f"{path.relative_to(data)}.ppm"
        with Image.open(stored) as small:
            # No re-encoding: exactly the resized original (a small image: its decoded pixels).
            assert small.format == "PPM" and np.array_equal(np.asarray(small), np.asarray(pixels))
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["storage"] == "ppm" and len(manifest["files"]) == 12
    assert all(name.endswith(".jpg.ppm") for name in manifest["files"])
    pair = load_datasets(
        DataSource("folder", str(data), shrink=64, shrink_format="ppm", cache_dir=str(tmp_path / "cache"))
    )
    assert (len(pair.train), len(pair.val)) == (6, 6) and pair.pixels == describe(64, "ppm")
    assert "PPM" in describe(64, "ppm") and describe(64, "ppm") != describe(64)
    with pytest.raises(ShrinkError, match="unknown storage 'png'.*jpeg, ppm"):
        shrunk_copy(data, 64, tmp_path / "cache", storage="png")
    with pytest.raises(DataError, match="unknown storage"):
        load_datasets(
            DataSource("folder", str(data), shrink=64, shrink_format="png", cache_dir=str(tmp_path / "cache"))
        )


@pytest.mark.slow
def test_shrunk_run_records_its_pixels_and_is_another_experiment(tmp_path):
    data = jpeg_folder(tmp_path / "data", sizes=((240, 180),) * 8)
    args = [
        "--upto",
        "resnet50",
        "--preset",
        "tiny",
        "--dataset",
        "folder",
        "--data",
        str(data),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--executor",
        "local",
        "--results",
        str(tmp_path / "results"),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = run_cli(*args, "--shrink", "64")
    assert result.returncode == 0, result.stderr[-2000:]
    record = read_json(tmp_path / "results" / "resnet50-tiny-folder" / "resnet50" / "0" / "result.json")
    assert record["status"] == "done" and record["pixels"] == describe(64) and "64 px" in record["pixels"]
    source = DataSource("folder", str(data), cache_dir=str(tmp_path / "cache"))
    options = RunOptions(
        upto="resnet50",
        preset="tiny",
        data=source,
        results=str(tmp_path / "other"),
        batch_size=8,  # as trained above: the preset's 32 is more than the 16 images (refused at planning)
    )
    original = plan_run(options).tasks[0]
    shrunk = plan_run(replace(options, data=replace(source, shrink=64))).tasks[0]
    uncompressed = plan_run(replace(options, data=replace(source, shrink=64, shrink_format="ppm"))).tasks[0]
    assert len({original.key, shrunk.key, uncompressed.key}) == 3  # three experiments
    assert uncompressed.data.shrink_format == "ppm" and shrunk.data == replace(source, shrink=64)


def one_line_exit_2(result: subprocess.CompletedProcess, expected: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_cached_file_is_one_line_and_nothing_is_trained(tmp_path, damage):
    data = jpeg_folder(tmp_path / "data")
    copy = shrunk_copy(data, 64, tmp_path / "cache")
    victim = copy / "train" / "a" / "0.jpg"
    size = victim.stat().st_size
    victim.write_bytes(victim.read_bytes()[: size // 2] if damage == "truncate" else b"\0" * size)
    result = run_cli(
        "--upto",
        "resnet50",
        "--preset",
        "tiny",
        "--dataset",
        "folder",
        "--data",
        str(data),
        "--shrink",
        "64",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--executor",
        "local",
        "--results",
        str(tmp_path / "results"),
    )
    one_line_exit_2(result, f"cached file {victim} is corrupt")
    assert "delete" in result.stderr and not (tmp_path / "results").exists()


def test_bad_shrink_requests_are_one_line(tmp_path, capsys):
    data = jpeg_folder(tmp_path / "data")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    common = ["--upto", "resnet50", "--preset", "tiny", "--executor", "local", "--results", str(tmp_path / "results")]
    folder = [*common, "--dataset", "folder", "--data", str(data)]
    cases = [
        ([*folder, "--shrink", "0"], "--shrink: must be a positive integer, got 0"),
        ([*folder, "--shrink", "64", "--cache-dir", str(blocker / "cache")], "is not writable"),
        ([*common, "--shrink", "64"], "--shrink applies to --dataset folder"),
        ([*folder, "--shrink-format", "ppm"], "--shrink-format ppm says how --shrink stores its copy"),
    ]
    for argv, expected in cases:  # in-process; the corrupt-file test above runs the script itself
        assert expected in one_error_line(capsys, argv)
    assert not (tmp_path / "results").exists()


def test_device_decoded_evaluation_is_another_experiment(tmp_path):
    data = jpeg_folder(tmp_path / "data")
    # batch 4: the preset's 32 is more than the 6 images (refused at planning)
    common = {"upto": "resnet50", "preset": "tiny", "batch_size": 4}
    source = DataSource("folder", str(data))
    plain = plan_run(RunOptions(**common, data=source, results=str(tmp_path / "plain")))
    decoded_source = replace(source, eval_decode="device")
    decoded = plan_run(RunOptions(**common, data=decoded_source, results=str(tmp_path / "decoded")))
    assert decoded.tasks[0].key != plain.tasks[0].key and decoded.tasks[0].data.eval_decode == "device"
    assert plain.info.pixels == "original files"
    assert (
        decoded.info.pixels
        == "original files; evaluation decoded on the device (torchvision decode_jpeg, torch bicubic resize)"
    )
