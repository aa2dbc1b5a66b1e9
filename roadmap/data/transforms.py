"""What the network sees: the recipe's transforms (timm's pipelines) and the dataset view that applies
them, seeded per image so that any worker, rank or resumed process produces the same pixels."""

from __future__ import annotations

import random
from typing import Callable, Mapping

import numpy as np
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, create_transform
from timm.data.transforms import MaybePILToTensor, str_to_interp_mode
from torch.utils.data import Dataset, get_worker_info
from torchvision import transforms

from roadmap.spec import Recipe


def build_transforms(recipe: Recipe, resolution: int, training: bool, on_device: bool = True) -> Callable:
    """timm's transform pipeline for the recipe; at <= 32 px a padded random crop replaces the
    RandomResizedCrop and evaluation uses the image as is, like CIFAR training in pycls. Larger
    images (a folder dataset on a small preset) are first resized to the resolution (shorter side)
    and centre-cropped; an image already at the resolution passes through both unchanged.

    on_device (the default): the pipeline ends in a uint8 tensor, and normalisation and random
    erasing are left to the device (timm's prefetch loader, roadmap.data.loaders): a worker then ships a
    quarter of the bytes and does none of the float work. False: timm's all-CPU pipeline, which
    ends in a normalised (and, when training, erased) float tensor; the two give the same pixels.
    """
    small = resolution <= 32
    to_size = [
        transforms.Resize(resolution, str_to_interp_mode(recipe.interpolation)),
        transforms.CenterCrop(resolution),
    ]
    if not training:
        if small:
            final = (
                [MaybePILToTensor()]
                if on_device
                else [transforms.ToTensor(), transforms.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)]
            )
            return transforms.Compose(to_size + final)
        return create_transform(
            resolution,
            is_training=False,
            interpolation=recipe.interpolation,
            crop_pct=recipe.crop_pct,
            use_prefetcher=on_device,
        )
    # With no colour jitter timm still appends ColorJitter(0, 0, 0): it changes no pixel but draws
    # a permutation (3-4% of a legacy worker's time). On the device path nothing random follows it in
    # the worker, so leaving it out keeps every pixel; the all-CPU pipeline keeps timm's as it is.
    pipeline = create_transform(
        resolution,
        is_training=True,
        scale=recipe.crop_scale,
        color_jitter=recipe.color_jitter or (None if on_device else 0.0),
        auto_augment=recipe.auto_augment,
        interpolation=recipe.interpolation,
        re_prob=recipe.random_erasing,
        re_mode=recipe.random_erasing_mode,
        re_count=1,
        use_prefetcher=on_device,
    )
    if small:
        pipeline.transforms[0:1] = [*to_size, transforms.RandomCrop(resolution, padding=4)]
    return pipeline


def as_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")  # convert() copies even when RGB


class Transformed(Dataset):
    """A dataset view with a transform applied (the base stays shared between train and eval).

    A key is an index, or (seed, index[, resolution]) from roadmap.data.loaders.EpochSeeded: then the random
    augmentation of the image is seeded from (seed, index), so an image gets the same augmentation
    whichever worker, rank or resumed process loads it, and a run split over devices or restarted
    from a checkpoint sees exactly the images an uninterrupted single-process run sees. The seed
    travels with the key (not as an attribute) so that workers that persist across epochs get
    each epoch's seed.
    """

    def __init__(self, base: Dataset, transform: Callable | Mapping[int, Callable]) -> None:
        # A mapping: one transform per training resolution (progressive resizing); the key's third
        # element picks one, so workers that persist across epochs follow the schedule.
        self.base = base
        self.transforms = dict(transform) if isinstance(transform, Mapping) else {None: transform}

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def _seeded(self, transform: Callable, image, sample_seed: int):
        random.seed(sample_seed)
        np.random.seed(sample_seed)
        # The CPU generator only: torch.manual_seed also queues a seed for every lazy device
        # backend, recording a stack trace each time (60% of the loading time at 32 px).
        torch.default_generator.manual_seed(sample_seed)
        return transform(as_rgb(image))

    def __getitem__(self, key: int | tuple):
        seed, index, resolution = (*key, None)[:3] if isinstance(key, tuple) else (None, key, None)
        transform = next(iter(self.transforms.values())) if resolution is None else self.transforms[resolution]
        image, label = self.base[index]
        if seed is None:
            return transform(as_rgb(image)), label
        sample_seed = (seed * 1_000_003 + index) % 2**32
        if get_worker_info() is not None:
            # A loader worker's own streams steer nothing else: reseed them in place.
            return self._seeded(transform, image, sample_seed), label
        # timm's transforms draw from all three generators (RandAugment uses numpy and random);
        # in the main process (no workers) the caller's streams are restored so that loading
        # does not steer Mixup or stochastic depth.
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            sample = self._seeded(transform, image, sample_seed)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        return sample, label
