"""Datasets: the embedded synthetic default, image folders with real files, and local CIFAR."""

import logging
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from roadmap.data.datasets import DataError, load_datasets
from roadmap.data.source import DataSource
from roadmap.data.synthetic import SyntheticShapes
from roadmap.data.transforms import Transformed, build_transforms
from roadmap.recipes import MODERN
from roadmap.spec import Recipe


def test_synthetic_is_deterministic_and_balanced_enough():
    first, again, other = (
        SyntheticShapes(200, 8, 32, seed=0),
        SyntheticShapes(200, 8, 32, seed=0),
        SyntheticShapes(200, 8, 32, seed=1),
    )
    assert np.array_equal(first.images, again.images) and first.targets == again.targets
    assert not np.array_equal(first.images, other.images)
    counts = np.bincount(first.targets, minlength=8)
    assert counts.min() >= 10 and first.images.shape == (200, 32, 32, 3)
    train, val = (
        load_datasets(DataSource(), {"synthetic_train": 50, "synthetic_val": 20}).train,
        load_datasets(DataSource(), {"synthetic_train": 50, "synthetic_val": 20}).val,
    )
    assert not np.array_equal(train.images[:20], val.images)  # the splits are different images


def write_folder(root, classes=("cat", "dog"), per_class=3, corrupt=None):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(per_class):
                pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{index}.{'png' if index % 2 else 'jpg'}")
    if corrupt:
        (root / "train" / classes[0] / corrupt).write_bytes(b"\xff\xd8\xff not really a jpeg")


def test_image_folder_skips_and_counts_corrupt_files(tmp_path, caplog):
    write_folder(tmp_path, corrupt="broken.jpg")
    with caplog.at_level(logging.WARNING):
        pair = load_datasets(DataSource("folder", str(tmp_path)))
    assert pair.num_classes == 2 and len(pair.train) == 6 and len(pair.val) == 6
    assert pair.train.skipped == [str(tmp_path / "train" / "cat" / "broken.jpg")]
    assert "skipped 1 corrupt image file(s)" in caplog.text
    image, label = pair.train[0]
    assert image.size == (48, 40) and label == 0
    tensor, _ = Transformed(pair.train, build_transforms(MODERN, 32, training=True))[0]
    assert tensor.shape == (3, 32, 32)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_datasets(DataSource("folder", str(tmp_path / "nowhere")))
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    with pytest.raises(DataError, match="no class subfolders"):
        load_datasets(DataSource("folder", str(tmp_path)))
    with pytest.raises(DataError, match="needs --data"):
        load_datasets(DataSource("folder"))
    with pytest.raises(DataError, match="choose one of: synthetic, folder, cifar10, cifar100"):
        load_datasets(DataSource("imagenet22k", str(tmp_path)))


def test_local_cifar10_in_torchvision_format(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for name, count in [(f"data_batch_{index}", 4) for index in range(1, 6)] + [("test_batch", 3)]:
        batch = {
            "data": rng.integers(0, 255, (count, 3072), dtype=np.uint8),
            "labels": list(rng.integers(0, 10, count)),
        }
        with open(base / name, "wb") as handle:
            pickle.dump(batch, handle)
    with open(base / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": [f"class{index}" for index in range(10)]}, handle)
    pair = load_datasets(DataSource("cifar10", str(tmp_path)))
    assert (len(pair.train), len(pair.val), pair.num_classes) == (20, 3, 10)
    image, label = pair.train[0]
    assert image.size == (32, 32) and 0 <= label < 10
    # Channel-major rows become HWC pixels: pixel (0, 0) holds bytes 0, 1024 and 2048 of the row.
    with open(base / "data_batch_1", "rb") as handle:
        row = pickle.load(handle)["data"][0]
    assert tuple(np.asarray(image)[0, 0]) == (row[0], row[1024], row[2048])
    (base / "test_batch").unlink()
    with pytest.raises(DataError, match="lacks test_batch"):
        load_datasets(DataSource("cifar10", str(tmp_path)))


def test_transforms_follow_the_recipe():
    legacy = build_transforms(Recipe(), 32, training=True)
    modern = build_transforms(MODERN, 64, training=True)
    assert "RandAugment" in repr(modern) and "bicubic" in repr(modern).lower()
    assert "RandAugment" not in repr(legacy) and "RandomCrop" in repr(legacy)
    # Random erasing and normalisation run on the device (roadmap.data.loaders); the all-CPU pipeline
    # keeps them in the transform.
    assert "RandomErasing" not in repr(modern) and "Normalize" not in repr(modern)
    on_cpu = build_transforms(MODERN, 64, training=True, on_device=False)
    assert "RandomErasing" in repr(on_cpu) and "Normalize" in repr(on_cpu)
    image = Image.fromarray(np.zeros((48, 48, 3), np.uint8))
    torch.manual_seed(0)
    assert modern(image).shape == (3, 64, 64) and modern(image).dtype == torch.uint8
    assert on_cpu(image).dtype == torch.float32
    assert build_transforms(MODERN, 64, training=False)(image).shape == (3, 64, 64)
