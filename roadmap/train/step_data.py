"""The data side of one training process for a task: its datasets, the seeded sampler, both loaders."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.data.loader import PrefetchLoader
from torch.utils.data import Dataset, DistributedSampler, Subset

from roadmap.data.datasets import load_datasets
from roadmap.data.device_decode import DeviceDecoded, EncodedFiles, pixels_with_eval
from roadmap.data.loaders import EarlyStart, EpochSeeded, device_decoded_eval_loader, eval_loader, train_loader
from roadmap.data.transforms import Transformed, build_transforms
from roadmap.train.task import StepTask


@dataclass
class StepData:
    """The data side of one training process: datasets, the seeded sampler and both loaders."""

    train_set: Transformed
    val_set: Dataset
    sampler: EpochSeeded
    generator: torch.Generator  # seeds the loader's workers; reseeded every epoch
    loader: PrefetchLoader
    val_loader: PrefetchLoader
    num_classes: int
    pixels: str

    @property
    def train_pass(self) -> EarlyStart:
        """The training DataLoader's handle for starting its next pass ahead of time."""
        return self.loader.loader

    @property
    def val_pass(self) -> EarlyStart:
        """The same for evaluation (under `DeviceDecoded` with `--eval-decode device`)."""
        inner = self.val_loader.loader
        return inner.loader if isinstance(inner, DeviceDecoded) else inner


def step_data(task: StepTask, device: torch.device, rank: int = 0, world_size: int = 1) -> StepData:
    """What the trainer reads for `task` (also what `--plan` times the loader with)."""
    recipe = task.spec.recipe
    data = load_datasets(task.data, task.synthetic)
    train_set = Transformed(
        data.train, {resolution: build_transforms(recipe, resolution, True) for resolution in task.train_resolutions}
    )
    eval_size, eval_batch = task.eval_resolution or task.resolution, task.per_device_batch * 2
    val_part: Dataset
    if task.data.eval_decode == "device":
        # At <= 32 px the CPU path resizes straight to the resolution (transforms.build_transforms).
        crop_pct = recipe.crop_pct if eval_size > 32 else 1.0
        val_part = EncodedFiles(data.val.samples[rank::world_size])  # a folder dataset (checked at planning)
        val_loader = device_decoded_eval_loader(val_part, eval_batch, task.workers, device, eval_size, crop_pct)
    else:
        val_set = Transformed(data.val, build_transforms(recipe, eval_size, False))
        val_part = Subset(val_set, range(rank, len(val_set), world_size))
        val_loader = eval_loader(val_part, eval_batch, task.workers, device)
    # One shuffle for any number of ranks: rank r takes positions r, r + R, ... of the same
    # permutation, so a global batch of R ranks holds exactly the images of the single-process
    # batch of the same size (the equivalence the DDP test checks).
    sampler = EpochSeeded(DistributedSampler(train_set, world_size, rank, shuffle=True, seed=task.seed, drop_last=True))
    generator = torch.Generator()
    return StepData(
        train_set,
        val_part,
        sampler,
        generator,
        train_loader(train_set, sampler, task.per_device_batch, task.workers, device, recipe, generator),
        val_loader,
        data.num_classes,
        pixels_with_eval(data.pixels, task.data.eval_decode),
    )
