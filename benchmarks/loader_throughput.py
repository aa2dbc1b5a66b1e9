"""Input pipeline throughput: this project's loader against the one a user writes by hand.

    python benchmarks/loader_throughput.py [--data DIR] [--images 256] [--workers 1] [--rounds 3]

In the spirit of FFCV's loader benchmark. On a folder of real JPEG files (generated once, ImageNet-
like: 350-500 px, about 60 KB each, unless --data names one), for the legacy and the modern
training transforms of the paper's recipe and for its evaluation transforms (256 then 224 centre crop):

- reference: torchvision `ImageFolder` + timm `create_transform` with the same recipe (normalisation
  and random erasing on the CPU) + a plain DataLoader with float32 default collate;
- ours: the trainer's pipeline (roadmap.data.loaders: uint8 out of the workers, timm's fast collate,
  normalisation and erasing on the device);
- ours + shrink: the same over the opt-in pre-shrunk copy (roadmap.data.shrink, shorter side 256), stored
  as JPEG q95 and as uncompressed PPM;
- pixel work only (ceiling), for the originals and each copy: decoding and timm's PIL transforms and
  nothing else (no tensor, no collate). Every pipeline that gives these pixels does this work, so
  its ratio to the reference bounds what any such pipeline can reach.

Per worker = images/s of one worker's work (load, decode, augment, collate a batch), timed inside
one DataLoader worker process (as in training: a worker's own random streams, one thread), with
nothing else running: what each extra worker adds. With --workers W the whole DataLoader is timed
too (W workers, batches consumed by the main process on --device). Rounds alternate between the
pipelines and the median is kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.transforms import MaybePILToTensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate
from torchvision import transforms
from torchvision.datasets import ImageFolder

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roadmap.data.datasets import DataError, image_folder  # noqa: E402
from roadmap.data.loaders import EpochSeeded, train_loader, uint8_collate  # noqa: E402
from roadmap.data.shrink import ShrinkError, shrunk_copy  # noqa: E402
from roadmap.data.transforms import Transformed, build_transforms  # noqa: E402
from roadmap.recipes import LEGACY, MODERN  # noqa: E402


def generate_folder(root: Path, images: int, classes: int = 4, seed: int = 0) -> Path:
    """ImageNet-like JPEGs: smooth colour fields plus grain, 350-500 x 300-450 px, quality 85."""
    if (root / "done").exists():
        return root
    rng = np.random.default_rng(seed)
    for index in range(images):
        folder = root / "train" / f"c{index % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        width, height = int(rng.integers(350, 501)), int(rng.integers(300, 451))
        coarse = rng.uniform(0, 255, (height // 16 + 2, width // 16 + 2, 3)).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), dtype=np.float32)
        pixels = (smooth + rng.normal(0, 18, (height, width, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index:05d}.jpg", quality=85)
    (root / "val").mkdir(exist_ok=True)
    (root / "done").write_text("")
    return root


def reference_dataset(root: Path, recipe, resolution: int, training: bool = True):
    if not training:  # the paper's evaluation: resize to 256, centre crop 224 (crop_pct 0.875)
        transform = create_transform(
            resolution, is_training=False, interpolation=recipe.interpolation, crop_pct=recipe.crop_pct
        )
        return ImageFolder(str(root / "train"), transform=transform)
    transform = create_transform(
        resolution,
        is_training=True,
        color_jitter=recipe.color_jitter or 0.0,
        auto_augment=recipe.auto_augment,
        interpolation=recipe.interpolation,
        re_prob=recipe.random_erasing,
        re_mode=recipe.random_erasing_mode,
        re_count=1,
    )
    return ImageFolder(str(root / "train"), transform=transform)


def our_dataset(root: Path, recipe, resolution: int, training: bool = True):
    return Transformed(image_folder(root / "train"), build_transforms(recipe, resolution, training))


def pixel_work_dataset(root: Path, recipe, resolution: int, training: bool = True):
    """Only the work that makes the paper's pixels: decoding and timm's PIL transforms, without
    getting the pixels out of PIL or collating them. Any pipeline that gives the same pixels does
    at least this much, so its rate over the reference's is the ceiling of the ratio."""
    pipeline = build_transforms(recipe, resolution, training)
    *pixel_work, to_tensor = pipeline.transforms
    assert isinstance(to_tensor, MaybePILToTensor), pipeline  # the pipeline's last, tensor-making step
    return Transformed(image_folder(root / "train"), transforms.Compose(pixel_work))


def discard(batch: list) -> None:
    return None


class WorkerJob(Dataset):
    """Its one item is a timed pass of a worker's whole job (items and collate), so that the pass
    runs where it runs in training: in a DataLoader worker process."""

    def __init__(self, dataset, keys, collate, batch: int) -> None:
        self.dataset, self.keys, self.collate, self.batch = dataset, keys, collate, batch

    def __len__(self) -> int:
        return 1

    def __getitem__(self, _) -> float:
        started = time.perf_counter()
        for first in range(0, len(self.keys) - self.batch + 1, self.batch):
            self.collate([self.dataset[key] for key in self.keys[first : first + self.batch]])
        return (len(self.keys) // self.batch * self.batch) / (time.perf_counter() - started)


def per_worker_rate(dataset, keys, collate, batch: int) -> float:
    """Images/s of a worker's whole job, timed in one worker process."""
    loader = DataLoader(WorkerJob(dataset, keys, collate, batch), batch_size=None, num_workers=1)
    return float(next(iter(loader)))


def loader_rate(kind: str, dataset, batch: int, workers: int, device: torch.device, recipe) -> float:
    """Images/s of the whole DataLoader with `workers` workers, batches consumed on `device`."""
    if kind == "reference":
        loader = DataLoader(
            dataset,
            batch_size=batch,
            num_workers=workers,
            shuffle=True,
            drop_last=True,
            pin_memory=device.type == "cuda",
        )
    else:
        sampler = EpochSeeded(DistributedSampler(dataset, 1, 0, shuffle=True, seed=0, drop_last=True))
        loader = train_loader(dataset, sampler, batch, workers, device, recipe, torch.Generator())
    started, count = time.perf_counter(), 0
    for images, _ in loader:
        images = images.to(device, non_blocking=True)
        count += images.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return count / (time.perf_counter() - started)


def pipelines_for(root: Path, copies: dict[str, Path], recipe, resolution: int, training: bool) -> dict[str, tuple]:
    """name -> (dataset, collate) of every pipeline compared for one set of transforms."""
    pipelines = {
        "reference": (reference_dataset(root, recipe, resolution, training), default_collate),
        "ours": (our_dataset(root, recipe, resolution, training), uint8_collate),
    }
    for name, copy in copies.items():
        pipelines[f"ours + {name}"] = (our_dataset(copy, recipe, resolution, training), uint8_collate)
    for name, source in {"originals": root, **copies}.items():
        pipelines[f"pixel work only, {name} (ceiling)"] = (
            pixel_work_dataset(source, recipe, resolution, training),
            discard,
        )
    return pipelines


def median_rates(pipelines: dict[str, tuple], transforms_name: str, arguments) -> dict[str, float]:
    """Per-worker images/s of each pipeline: rounds alternate between the pipelines, median kept."""
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    for round_index in range(arguments.rounds):
        for name, (dataset, collate) in pipelines.items():
            torch.manual_seed(round_index)
            keys = (
                list(range(len(dataset)))
                if name == "reference"
                else [(round_index, index) for index in range(len(dataset))]
            )
            rates[name].append(per_worker_rate(dataset, keys, collate, arguments.batch))
            print(
                f"  {transforms_name} {name} round {round_index + 1}: {rates[name][-1]:.1f} images/s",
                file=sys.stderr,
                flush=True,
            )
    return {name: statistics.median(values) for name, values in rates.items()}


def measure(arguments) -> list[dict]:
    # One generated folder per image count: a folder (and its shrunk copies) is reused as it is.
    generated = Path(arguments.generated or f"/tmp/roadmap-loader-bench-{arguments.images}")
    root = Path(arguments.data) if arguments.data else generate_folder(generated, arguments.images)
    image_folder(root / "train")  # a folder that is no dataset fails here, naming it, before any copy
    copies = {}
    for storage in ("jpeg", "ppm") if arguments.shrink else ():
        copies[f"shrink {arguments.shrink} {storage}"] = shrunk_copy(
            root, arguments.shrink, Path(arguments.cache_dir), storage=storage
        )
    device = torch.device(arguments.device)
    rows = []
    # Evaluation's transforms are the same for both recipes (bicubic, crop_pct 0.875): one row.
    for recipe, training in ((LEGACY, True), (MODERN, True), (MODERN, False)):
        transforms_name = recipe.name if training else "evaluation"
        pipelines = pipelines_for(root, copies, recipe, arguments.resolution, training)
        rates = median_rates(pipelines, transforms_name, arguments)
        for name, (dataset, _) in pipelines.items():
            row = {
                "transforms": transforms_name,
                "pipeline": name,
                "per_worker_images_per_s": round(rates[name], 1),
                "vs_reference": round(rates[name] / rates["reference"], 2),
            }
            if arguments.workers and training and not name.startswith("pixel work"):
                kind = "reference" if name == "reference" else "ours"
                row[f"loader_{arguments.workers}_workers_images_per_s"] = round(
                    loader_rate(kind, dataset, arguments.batch, arguments.workers, device, recipe), 1
                )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="an ImageNet-style folder (train/<class>/*); default: generated")
    parser.add_argument(
        "--generated", default=None, help="where the generated folder goes (default /tmp/roadmap-loader-bench-IMAGES)"
    )
    parser.add_argument("--images", type=int, default=256, help="images to generate")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="also time the whole DataLoader with this many workers")
    parser.add_argument("--shrink", type=int, default=256, help="shorter side of the opt-in copy (0: leave it out)")
    parser.add_argument("--cache-dir", default="/tmp/roadmap-loader-bench-cache")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    arguments = parser.parse_args()
    if (
        min(arguments.images, arguments.batch, arguments.rounds, arguments.resolution) < 1
        or arguments.images < arguments.batch
    ):
        parser.exit(
            2,
            "loader_throughput: --images, --batch, --rounds and --resolution must be positive, "
            "and --images at least --batch\n",
        )
    torch.set_num_threads(1)  # one worker's worth of compute
    try:
        rows = measure(arguments)
    except (DataError, ShrinkError) as error:
        parser.exit(2, f"loader_throughput: {error}\n")
    for row in rows:
        print("  ".join(f"{key}={value}" for key, value in row.items()))
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
