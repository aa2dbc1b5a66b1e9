"""Datasets and transforms: the embedded synthetic default (roadmap.data.synthetic), ImageNet-style folders
and local CIFAR.

Every dataset yields (PIL image, class index) so that one transform pipeline, built by timm's
`create_transform` from the recipe, serves all of them. Bad input raises `DataError` with a
message that says what is wrong and what to do.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from roadmap.data.folder_scan import ScannedFolder, class_names, scan
from roadmap.data.shrink import ShrinkError, default_cache_dir, shrunk_copy
from roadmap.data.shrink import describe as describe_pixels
from roadmap.data.source import DataSource
from roadmap.data.synthetic import PIXELS as SYNTHETIC_PIXELS
from roadmap.data.synthetic import SHAPES, SyntheticShapes
from roadmap.errors import UserError

log = logging.getLogger("roadmap.data")

# The datasets of --dataset: name -> what it is (the CLI's help is made from it).
DATASETS = {
    "synthetic": "embedded synthetic shapes, no download (default)",
    "folder": "an image folder with train/ and val/ class subfolders at --data PATH (ImageNet's layout)",
    "cifar10": "CIFAR-10's python pickles at --data PATH",
    "cifar100": "CIFAR-100's python pickles at --data PATH",
}


class DataError(UserError, ValueError):
    """A dataset that cannot be used as asked (missing path, no classes, nothing readable)."""


@dataclass(frozen=True)
class DatasetPair:
    train: Dataset
    val: Dataset
    num_classes: int
    name: str
    description: str
    # What the images are: original files, a pre-shrunk copy, or rendered in memory (synthetic).
    pixels: str = describe_pixels(None)


# ---------------------------------------------------------------------------------------------
# ImageNet-style folders and local CIFAR.
# ---------------------------------------------------------------------------------------------


def load_rgb(path: str) -> Image.Image:
    """The decoded image in RGB. torchvision's loader always calls convert("RGB"), which copies an
    image that is RGB already; the pixels are the same without that copy (a tenth of decode time)."""
    with open(path, "rb") as handle:
        image = Image.open(handle)
        image.load()
    return image if image.mode == "RGB" else image.convert("RGB")


def image_folder(
    root: Path, corrupt_hint: str | None = None, cache_folder: Path | None = None
) -> tv_datasets.ImageFolder:
    """An ImageFolder whose files are checked as the loader will read them (roadmap.data.folder_scan):
    what it cannot read is skipped and counted (in the log), never fatal mid-run.

    With `corrupt_hint` (a copy the project wrote itself, e.g. a pre-shrunk cache), a corrupt file is
    an error instead: DataError naming the file, followed by the hint."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; --data must contain train/ and val/ with one subfolder per class")
    if not class_names(root):
        raise DataError(f"{root} has no class subfolders; put each class's images in {root}/<class name>/")

    def image_name(path: str) -> bool:  # dot-folders are left out by ScannedFolder's walk already
        return path.lower().endswith(tv_datasets.folder.IMG_EXTENSIONS)

    try:
        folder = ScannedFolder(str(root), loader=load_rgb, is_valid_file=image_name)
    except FileNotFoundError as error:
        raise DataError(f"{root}: no readable image in any class subfolder ({error})") from None
    unreadable = scan(root, [path for path, _ in folder.samples], cache_folder)
    if unreadable and corrupt_hint:
        path, reason = next(iter(unreadable.items()))
        raise DataError(f"cached file {path} is {reason}; {corrupt_hint}")
    if unreadable:
        kept = [(path, label) for path, label in folder.samples if path not in unreadable]
        empty = sorted(set(folder.classes) - {folder.classes[label] for _, label in kept})
        if empty:
            raise DataError(f"{root}: no readable image in the class subfolder(s) {', '.join(empty[:5])}")
        folder.samples = folder.imgs = kept
        folder.targets = [label for _, label in kept]
        reasons = Counter(reason.split(" (")[0] for reason in unreadable.values())  # by kind
        counts = ", ".join(f"{count} {reason}" for reason, count in reasons.items())
        first = next(iter(unreadable))
        log.warning("%s: skipped %d corrupt image file(s) (%s), first: %s", root, len(unreadable), counts, first)
    folder.skipped = list(unreadable)  # type: ignore[attr-defined]
    return folder


class LocalCIFAR(Dataset):
    """CIFAR-10/100 read from a local copy in torchvision's python format (no download)."""

    LAYOUT = {
        "cifar10": (
            "cifar-10-batches-py",
            [f"data_batch_{index}" for index in range(1, 6)],
            "test_batch",
            "batches.meta",
            "label_names",
            "labels",
        ),
        "cifar100": ("cifar-100-python", ["train"], "test", "meta", "fine_label_names", "fine_labels"),
    }

    def __init__(self, root: Path, name: str, train: bool) -> None:
        folder, train_files, test_file, meta_file, names_key, labels_key = self.LAYOUT[name]
        base = root / folder if (root / folder).is_dir() else root
        files = train_files if train else [test_file]
        missing = [file for file in files + [meta_file] if not (base / file).is_file()]
        if missing:
            raise DataError(
                f"{name}: {base} lacks {', '.join(missing)}; point --data at the extracted "
                f"'{folder}' folder of the official python release"
            )
        images, labels = [], []
        for file in files:
            batch = self._load(base / file, name, folder)
            try:
                data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                batch_labels = [int(label) for label in batch[labels_key]]
                if len(batch_labels) != len(data):
                    raise ValueError(f"{len(data)} images but {len(batch_labels)} labels")
            except (KeyError, TypeError, ValueError) as error:
                raise self._not_cifar(base / file, name, folder, error) from None
            images.append(data)
            labels.extend(batch_labels)
        meta = self._load(base / meta_file, name, folder)
        try:
            self.classes = [str(label) for label in meta[names_key]]
        except (KeyError, TypeError) as error:
            raise self._not_cifar(base / meta_file, name, folder, error) from None
        self.images = np.concatenate(images)
        self.targets = labels

    @classmethod
    def _load(cls, path: Path, name: str, folder: str) -> dict:
        """One pickle of the python release; anything else (cut short, another format) is a DataError."""
        try:
            with open(path, "rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
        except Exception as error:  # noqa: BLE001 - garbage can fail inside pickle in many ways
            raise cls._not_cifar(path, name, folder, error) from None
        if not isinstance(batch, dict):
            raise cls._not_cifar(path, name, folder, TypeError(f"holds a {type(batch).__name__}, not a dict"))
        return batch

    @staticmethod
    def _not_cifar(path: Path, name: str, folder: str, error: BaseException) -> DataError:
        detail = " ".join(str(error).split())[:120] or type(error).__name__
        return DataError(
            f"{name}: {path} is not a readable CIFAR pickle ({type(error).__name__}: {detail}); "
            f"replace it with the file from the official '{folder}' python release"
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), self.targets[index]


@functools.lru_cache(maxsize=1)
def _synthetic_sets(train: int, val: int, classes: int, size: int, seed: int) -> tuple[Dataset, Dataset]:
    """Rendered once per process (nothing changes them afterwards): `--plan` loads a run's data
    once to plan it and once per recipe to time its loader, three renders that took 9 s at 224 px."""
    return SyntheticShapes(train, classes, size, seed, split=0), SyntheticShapes(val, classes, size, seed, split=1)


# The embedded set's sizes and data seed where a preset gives none (roadmap.train.presets gives them).
SYNTHETIC_SIZES = {
    "synthetic_train": 4000,
    "synthetic_val": 1000,
    "synthetic_classes": 16,
    "synthetic_size": 32,
    "seed": 0,
}


def load_datasets(source: DataSource, synthetic: Mapping[str, int] | None = None) -> DatasetPair:
    """The train and validation sets `source` names (its dataset one of DATASETS); with `shrink`, a
    folder dataset is read from its pre-shrunk copy (roadmap.data.shrink) stored as `shrink_format`,
    built on first use; with `classes`, a folder dataset keeps that many of its classes
    (`class_subset`). `synthetic`: the embedded set's sizes and seed (keys of SYNTHETIC_SIZES)."""
    name, shrink, classes = source.dataset, source.shrink, source.classes
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if shrink is not None and name != "folder":
        raise DataError(f"--shrink applies to --dataset folder (JPEG files to decode), not to {name}")
    if classes is not None and name != "folder":
        raise DataError(f"--classes applies to --dataset folder (a class subset of an image folder), not to {name}")
    if classes is not None and classes < 1:
        raise DataError(f"--classes must be a positive number of classes, got {classes}")
    if name == "synthetic":
        return _synthetic_pair({**SYNTHETIC_SIZES, **(synthetic or {})})
    if source.data_path is None:
        raise DataError(f"--dataset {name} needs --data PATH (the folder that holds it)")
    root = Path(source.data_path).expanduser()
    if not root.exists():
        raise DataError(f"--data {root} does not exist; give the folder that holds the {name} dataset")
    if name == "folder":
        return _folder_pair(root, shrink, source.cache_dir, classes, source.shrink_format)
    train, val = LocalCIFAR(root, name, True), LocalCIFAR(root, name, False)
    return DatasetPair(train, val, len(train.classes), name, f"{name} from {root} ({len(train)}/{len(val)} images)")


def _synthetic_pair(sizes: Mapping[str, int]) -> DatasetPair:
    """The embedded shapes of `sizes` (keys of SYNTHETIC_SIZES)."""
    train_images, val_images, classes, size = (sizes[name] for name in list(SYNTHETIC_SIZES)[:4])
    if not 2 <= classes <= len(SHAPES):
        raise DataError(f"the synthetic dataset has 2 to {len(SHAPES)} classes, got {classes}")
    # The data seed is fixed by the preset, not by the training seed: every seed and every step
    # sees the same images.
    train, val = _synthetic_sets(train_images, val_images, classes, size, sizes["seed"])
    description = (
        f"synthetic shapes ({classes} classes, {size}px, {train_images}/{val_images} images, seed {sizes['seed']})"
    )
    return DatasetPair(train, val, classes, "synthetic", description, SYNTHETIC_PIXELS)


# The class subset (`--classes N`) is drawn with this seed, whatever the training seed: every row
# and seed of a run, and every run with the same N, sees the same classes.
CLASS_SUBSET_SEED = 0


def class_subset(classes: list[str], count: int) -> list[str]:
    """`count` of `classes`, drawn with CLASS_SUBSET_SEED and sorted (ImageNet-100 style)."""
    if count > len(classes):
        raise DataError(f"--classes {count} asks for more classes than the dataset has ({len(classes)})")
    return sorted(random.Random(CLASS_SUBSET_SEED).sample(sorted(classes), count))


def keep_classes(folder: tv_datasets.ImageFolder, kept: list[str]) -> tv_datasets.ImageFolder:
    """The folder with only the images of `kept` classes, their labels renumbered 0..len(kept)-1."""
    new_index = {folder.class_to_idx[name]: position for position, name in enumerate(kept)}
    folder.samples = [(path, new_index[label]) for path, label in folder.samples if label in new_index]
    folder.imgs, folder.targets = folder.samples, [label for _, label in folder.samples]
    folder.classes, folder.class_to_idx = list(kept), {name: position for position, name in enumerate(kept)}
    return folder


def _folder_pair(
    root: Path,
    shrink: int | None,
    cache_dir: str | os.PathLike | None,
    classes: int | None = None,
    shrink_format: str = "jpeg",
) -> DatasetPair:
    source = root
    if shrink is not None:
        # Check the original first: its errors name the folder the user gave, not the cache.
        for split in ("train", "val"):
            if not (root / split).is_dir():
                raise DataError(
                    f"{root / split} is not a folder; --data must contain train/ and val/ with one subfolder per class"
                )
        try:
            source = shrunk_copy(root, shrink, Path(cache_dir) if cache_dir else None, storage=shrink_format)
        except ShrinkError as error:
            raise DataError(str(error)) from None
    hint = f"delete {source} to rebuild the copy" if source != root else None
    # The scan's answers are kept beside the pre-shrunk copies (--cache-dir, else the user's cache).
    scans = (Path(cache_dir) if cache_dir else default_cache_dir().parent) / "scans"
    train, val = image_folder(source / "train", hint, scans), image_folder(source / "val", hint, scans)
    if train.classes != val.classes:
        only = [
            f"{name}/ only in {split}/"
            for split, mine, other in (("train", train, val), ("val", val, train))
            for name in sorted(set(mine.classes) - set(other.classes))
        ]
        raise DataError(
            f"{root}: train/ and val/ have different class subfolders ({', '.join(only[:3])}); "
            f"they must match: add or remove those folders"
        )
    subset = ""
    if classes is not None:
        available = len(train.classes)
        kept = class_subset(train.classes, classes)
        train, val = keep_classes(train, kept), keep_classes(val, kept)
        subset = f", {classes} of {available} classes drawn with seed {CLASS_SUBSET_SEED}: {', '.join(kept)}"
    return DatasetPair(
        train,
        val,
        len(train.classes),
        "folder",
        f"image folder {root} ({len(train.classes)} classes, {len(train)}/{len(val)} images{subset})",
        describe_pixels(shrink, shrink_format),
    )
