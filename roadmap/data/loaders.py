"""Input pipelines that keep a GPU fed: workers decode and augment, the device does the float work.

Workers run the PIL part of the recipe (RandomResizedCrop, flip, RandAugment) and ship uint8
tensors, collated into the batch timm's `fast_collate` makes (`uint8_collate`); timm's
`PrefetchLoader` copies the next batch to the device on a side stream while the current one
computes, then normalises it and applies random erasing there. Mixup/CutMix follow on the device
in the trainer. The pixels are the paper pipeline's: only where the float work happens changes
(tests/test_loaders.py checks equality).

Workers persist across epochs (no fork per epoch or per evaluation). Each epoch's augmentation
seed travels with the sample keys (`EpochSeeded`), so persistent workers still augment every
image from (seed, epoch, index), and a resumed run sees exactly the images of an uninterrupted one.
"""

from __future__ import annotations

import logging
from typing import Iterator

import numpy as np
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.data.loader import PrefetchLoader, fast_collate
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, default_collate

from roadmap.cost.processes import usable_workers
from roadmap.data.device_decode import DeviceDecoded, EncodedFiles, encoded_collate
from roadmap.spec import Recipe

log = logging.getLogger("roadmap.data")
_CAPS_SAID: set[int] = set()  # worker counts whose cap this process has said


class EpochSeeded(Sampler):
    """The keys (epoch seed, index[, resolution]) in the order of a DistributedSampler, for
    `transforms.Transformed`."""

    def __init__(self, sampler: DistributedSampler) -> None:
        self.sampler = sampler
        self.seed = 0
        self.resolution: int | None = None

    def set_epoch(self, epoch: int, seed: int, resolution: int | None = None) -> None:
        """The epoch's shuffle, augmentation seed and (progressive resizing) training resolution."""
        self.sampler.set_epoch(epoch)
        self.seed, self.resolution = seed, resolution

    def __iter__(self) -> Iterator[tuple]:
        # Read once per pass: the loader builds its iterator when an epoch starts.
        seed, resolution = self.seed, self.resolution
        if resolution is None:
            return ((seed, index) for index in self.sampler)
        return ((seed, index, resolution) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def seed_worker(worker_id: int) -> None:
    # torch seeds each worker's torch and `random`; numpy (used by RandAugment) needs it too.
    np.random.seed(torch.initial_seed() % 2**32)


def uint8_collate(batch: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's `fast_collate` (uint8 images, int64 class indices), with the images copied by numpy.

    A worker's image is timm's `pil_to_tensor` output: a CHW view of PIL's HWC bytes. Copying that
    strided view into the batch takes torch twice as long as numpy (0.1 against 0.05 ms per 224 px
    image on one core), so numpy fills the batch; the bytes are the same. Other samples (a tuple
    of views, float tensors) go to timm's own `fast_collate`."""
    first = batch[0][0]
    if not isinstance(first, torch.Tensor) or first.dtype != torch.uint8:
        return fast_collate(batch)
    images = np.empty((len(batch), *first.shape), dtype=np.uint8)
    for row, (image, _) in zip(images, batch):
        row[...] = image.numpy()
    targets = default_collate([target for _, target in batch])
    return torch.from_numpy(images), targets.long() if targets.ndim == 1 else targets


def _data_loader(
    dataset: Dataset, batch: int, workers: int, device: torch.device, collate=uint8_collate, **options
) -> DataLoader:
    if usable_workers(workers) < workers:
        if workers not in _CAPS_SAID:  # said once: a step builds a loader per split and resolution
            _CAPS_SAID.add(workers)
            log.warning("--workers %d capped at the %d CPUs available here", workers, usable_workers(workers))
        workers = usable_workers(workers)
    return DataLoader(
        dataset,
        batch_size=batch,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
        **options,
    )


class EarlyStart:
    """A DataLoader whose next pass can be started ahead of time: `start()` makes the pass's
    iterator now, so persistent workers decode the next epoch's first batches while the device
    still evaluates the last one; the following `iter()` hands that pass over. Sits under timm's
    `PrefetchLoader`, whose own `__iter__` builds the DataLoader's iterator only at the first batch.
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.started: Iterator | None = None

    def start(self) -> None:
        if self.started is None:
            self.started = iter(self.loader)

    def batches_ahead(self) -> int:
        """Batches a pass keeps asked of its workers beyond the ones consumed (0 without workers):
        once only this many are left, the pass has handed its last batch to a worker."""
        return self.loader.num_workers * (self.loader.prefetch_factor or 0)

    def __iter__(self) -> Iterator:
        started, self.started = self.started, None
        return started if started is not None else iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)  # sampler, dataset, batch_size, ... for PrefetchLoader


def train_loader(
    dataset: Dataset,
    sampler: EpochSeeded,
    batch: int,
    workers: int,
    device: torch.device,
    recipe: Recipe,
    generator: torch.Generator,
) -> PrefetchLoader:
    """Training batches on `device`: normalised float32, random erasing as the recipe says."""
    loader = _data_loader(dataset, batch, workers, device, sampler=sampler, drop_last=True, generator=generator)
    return PrefetchLoader(
        EarlyStart(loader),
        IMAGENET_DEFAULT_MEAN,
        IMAGENET_DEFAULT_STD,
        device=device,
        re_prob=recipe.random_erasing or 0.0,
        re_mode=recipe.random_erasing_mode or "const",
        re_count=1,
    )


def eval_loader(dataset: Dataset, batch: int, workers: int, device: torch.device) -> PrefetchLoader:
    """Evaluation batches on `device`, normalised; built once and reused every epoch, its passes
    startable ahead of time like training's (the trainer starts one during training's last batches).

    Its own generator: a DataLoader draws each pass's worker base seed from its generator, which
    would otherwise be the global one that the next training epoch, already seeded, goes on to use."""
    return PrefetchLoader(
        EarlyStart(_data_loader(dataset, batch, workers, device, shuffle=False, generator=torch.Generator())),
        IMAGENET_DEFAULT_MEAN,
        IMAGENET_DEFAULT_STD,
        device=device,
    )


def device_decoded_eval_loader(
    files: EncodedFiles, batch: int, workers: int, device: torch.device, resolution: int, crop_pct: float
) -> PrefetchLoader:
    """`--eval-decode device`: workers read the files, the device decodes, resizes and crops
    (roadmap.data.device_decode), timm's PrefetchLoader normalises; built once, like eval_loader."""
    loader = EarlyStart(
        _data_loader(files, batch, workers, device, encoded_collate, shuffle=False, generator=torch.Generator())
    )
    return PrefetchLoader(
        DeviceDecoded(loader, device, resolution, crop_pct), IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, device=device
    )
