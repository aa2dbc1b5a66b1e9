"""The input pipeline: uint8 batches from the workers, float work on the device, seeds per epoch."""

import dataclasses
import random

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from timm.data import IMAGENET_DEFAULT_STD, create_transform
from timm.data.loader import fast_collate
from torch.utils.data import DistributedSampler

from roadmap.data.device_decode import EncodedFiles
from roadmap.data.loaders import EpochSeeded, device_decoded_eval_loader, eval_loader, train_loader, uint8_collate
from roadmap.data.transforms import Transformed, build_transforms
from roadmap.recipes import LEGACY, MODERN

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
ONE_LEVEL = 1 / 255 / min(IMAGENET_DEFAULT_STD)  # one grey level, after normalisation, at its largest


class Photos(torch.utils.data.Dataset):
    """A few real JPEG files of different sizes, decoded by PIL as a folder dataset would."""

    def __init__(self, folder, count=8, scale=1, smooth=False):
        rng = np.random.default_rng(0)
        self.paths = []
        for index in range(count):
            height, width = (90 + 7 * index) * scale, (120 - 5 * index) * scale
            if smooth:  # colour that varies over tens of pixels, as in a photo, not from pixel to pixel
                coarse = rng.integers(0, 255, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
                image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
            else:
                image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            path = folder / f"{index}.jpg"
            image.save(path, quality=90)
            self.paths.append(path)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        return Image.open(self.paths[index]), index % 3


def cpu_pipeline_images(photos, recipe, resolution, seed, order):
    """The all-CPU timm pipeline (ToTensor, Normalize, erasing in the transform) for the same keys."""
    dataset = Transformed(photos, build_transforms(recipe, resolution, True, on_device=False))
    return torch.stack([dataset[(seed, index)][0] for index in order])


def device_batches(photos, recipe, resolution, workers, epochs, batch=4, start_ahead=False):
    dataset = Transformed(photos, build_transforms(recipe, resolution, True))
    sampler = EpochSeeded(DistributedSampler(dataset, 1, 0, shuffle=True, seed=0, drop_last=True))
    loader = train_loader(dataset, sampler, batch, workers, DEVICE, recipe, torch.Generator())
    seen = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch, seed=1000 + epoch)
        order = [index for _, index in sampler]
        if start_ahead:  # as the trainer does before evaluating: the workers begin this pass now
            loader.loader.start()
            started = loader.loader.started
            sampler.set_epoch(epoch + 7, seed=7)  # too late: the started pass read its keys already
            assert started is not None and iter(loader.loader) is started and loader.loader.started is None
            loader.loader.started = started
        torch.manual_seed(epoch)
        random.seed(epoch)  # timm's device-side erasing draws its boxes from `random`
        seen.append((order, [images.cpu() for images, _ in loader]))
    return seen


@pytest.mark.parametrize("recipe", [LEGACY, dataclasses.replace(MODERN, random_erasing=0.0)], ids=["legacy", "modern"])
def test_device_normalisation_gives_the_cpu_pipelines_tensors(tmp_path, recipe):
    photos = Photos(tmp_path)
    ((order, batches),) = device_batches(photos, recipe, 64, workers=0, epochs=1, batch=8)
    reference = cpu_pipeline_images(photos, recipe, 64, seed=1000, order=order)
    assert batches[0].dtype == torch.float32 and batches[0].shape == (8, 3, 64, 64)
    assert torch.allclose(batches[0], reference, atol=1e-6, rtol=0)
    # The workers' output itself is uint8: a quarter of the bytes of float32.
    sample, _ = Transformed(photos, build_transforms(recipe, 64, True))[(1000, 0)]
    assert sample.dtype == torch.uint8


def test_device_erasing_erases_as_the_recipe_says(tmp_path):
    photos = Photos(tmp_path)
    always = dataclasses.replace(MODERN, random_erasing=1.0)
    never = dataclasses.replace(MODERN, random_erasing=0.0)
    ((_, erased),) = device_batches(photos, always, 64, workers=0, epochs=1, batch=8)
    ((_, plain),) = device_batches(photos, never, 64, workers=0, epochs=1, batch=8)
    changed = (erased[0] != plain[0]).any(dim=1)  # per pixel: did erasing touch it?
    for mask in changed:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        assert len(rows) > 0
        # One rectangle (re_count 1) of 2% to 1/3 of the image (timm's defaults), filled with
        # per-pixel normal noise ("pixel" mode).
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 0.02 * 64 * 64 * 0.9 <= height * width <= 64 * 64 / 3 * 1.1
    noise = erased[0][changed.unsqueeze(1).expand_as(erased[0])]
    assert abs(noise.mean().item()) < 0.1 and abs(noise.std().item() - 1) < 0.1


def test_persistent_workers_keep_the_per_epoch_seeds(tmp_path):
    photos = Photos(tmp_path)
    in_process = device_batches(photos, LEGACY, 48, workers=0, epochs=2)
    persistent = device_batches(photos, LEGACY, 48, workers=2, epochs=2)
    for (order, batches), (order_again, batches_again) in zip(in_process, persistent):
        assert order == order_again
        for first, again in zip(batches, batches_again):
            assert torch.equal(first, again)
    # Each epoch gets new augmentations, also from workers that live through both epochs.
    assert not torch.equal(persistent[0][1][0], persistent[1][1][0])


def test_a_pass_started_ahead_gives_the_batches_of_one_started_on_time(tmp_path):
    photos = Photos(tmp_path)
    on_time = device_batches(photos, MODERN, 48, workers=2, epochs=2)
    ahead = device_batches(photos, MODERN, 48, workers=2, epochs=2, start_ahead=True)
    for (order, batches), (order_ahead, batches_ahead) in zip(on_time, ahead):
        assert order == order_ahead and len(batches) == len(batches_ahead) == 2
        for first, again in zip(batches, batches_ahead):
            assert torch.equal(first, again)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_small_presets_resize_large_images_and_leave_small_ones_alone(tmp_path, training):
    """At <= 32 px a folder's large images are resized before the crop; CIFAR-sized images pass
    through unchanged, so the CIFAR proxy's pixels are those of a crop without the resize."""
    photos = Photos(tmp_path, count=2)  # 90-127 px
    transform = build_transforms(LEGACY, 32, training)
    assert transform(photos[0][0].convert("RGB")).shape == (3, 32, 32)
    small = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    bare = [step for step in transform.transforms if type(step).__name__ not in ("Resize", "CenterCrop")]
    torch.manual_seed(0)
    expected = torchvision.transforms.Compose(bare)(small)
    torch.manual_seed(0)
    assert torch.equal(transform(small), expected)


def test_evaluation_loader_normalises_on_the_device(tmp_path):
    photos = Photos(tmp_path)
    recipe = MODERN
    dataset = Transformed(photos, build_transforms(recipe, 64, False))
    reference = Transformed(photos, build_transforms(recipe, 64, False, on_device=False))
    loader = eval_loader(dataset, 3, 0, DEVICE)
    images = torch.cat([batch.cpu() for batch, _ in loader])
    assert images.shape == (8, 3, 64, 64)
    expected = torch.stack([reference[index][0] for index in range(len(photos))])
    assert torch.allclose(images, expected, atol=1e-6, rtol=0)
    assert torch.equal(torch.cat([batch.cpu() for batch, _ in loader]), images)  # reusable, same order


@pytest.mark.parametrize("recipe", [LEGACY, MODERN], ids=["legacy", "modern"])
def test_workers_give_timms_own_uint8_pixels_at_224(tmp_path, recipe):
    # The worker side of the paper's pipeline at its resolution, from photos larger and smaller
    # than 224 px (RandomResizedCrop both shrinks and enlarges), against timm's create_transform
    # as the recipe gives it: the trimmed pipeline (no ColorJitter(0, 0, 0) when the recipe has no
    # jitter) must give the same bytes for the same keys.
    photos = Photos(tmp_path, scale=3)
    timms = create_transform(
        224,
        is_training=True,
        scale=recipe.crop_scale,
        color_jitter=recipe.color_jitter or 0.0,
        auto_augment=recipe.auto_augment,
        interpolation=recipe.interpolation,
        re_prob=recipe.random_erasing,
        re_mode=recipe.random_erasing_mode,
        re_count=1,
        use_prefetcher=True,
    )
    ours = Transformed(photos, build_transforms(recipe, 224, True))
    reference = Transformed(photos, timms)
    assert ("ColorJitter" in repr(ours.transforms[None])) == bool(recipe.color_jitter and not recipe.auto_augment)
    for seed in (3, 4):
        for index in range(len(photos)):
            image, label = ours[(seed, index)]
            expected, expected_label = reference[(seed, index)]
            assert image.dtype == torch.uint8 and image.shape == (3, 224, 224)
            assert torch.equal(image, expected) and label == expected_label


def test_collate_gives_the_bytes_of_timms_fast_collate(tmp_path):
    photos = Photos(tmp_path)
    dataset = Transformed(photos, build_transforms(MODERN, 64, True))
    samples = [dataset[(7, index)] for index in range(len(photos))]
    images, targets = uint8_collate(samples)
    expected_images, expected_targets = fast_collate(samples)
    assert images.dtype == torch.uint8 and images.is_contiguous() and torch.equal(images, expected_images)
    assert targets.dtype == torch.int64 and torch.equal(targets, expected_targets)
    # Other samples (here float images) are timm's fast_collate's business, unchanged.
    floats = [(image.float(), label) for image, label in samples]
    assert torch.equal(uint8_collate(floats)[0], fast_collate(floats)[0])


def decoded_pixels_bound() -> tuple[float, float]:
    """(mean, largest) difference allowed between `--eval-decode device`'s pixels and PIL's, in grey
    levels. libjpeg (the CPU) decodes as PIL does and only the resize differs: measured 0.003 mean,
    2 at most. nvJPEG (CUDA) also rounds its inverse DCT and fills in the subsampled colour its own
    way: measured on an H200, 1.2 mean (the PNG test's pair 1.4) and 12 at most, hence the wider bound."""
    return (0.1, 3.0) if DEVICE.type == "cpu" else (2.0, 16.0)


def test_evaluation_decoded_on_the_device_is_the_paper_crop_within_a_level(tmp_path):
    """`--eval-decode device` (libjpeg on the CPU, nvJPEG on a GPU; torch's bicubic resize) against
    the paper's PIL pipeline: same crop geometry, labels and order; pixels within a level or so."""
    photos = Photos(tmp_path, count=6, scale=3, smooth=True)  # 270-381 px: resized to 256, then cropped
    samples = [(str(path), index % 3) for index, path in enumerate(photos.paths)]
    reference = eval_loader(Transformed(photos, build_transforms(MODERN, 224, False)), 4, 0, DEVICE)
    decoded = device_decoded_eval_loader(EncodedFiles(samples), 4, 2, DEVICE, 224, MODERN.crop_pct)
    expected, labels = zip(*[(images.cpu(), targets.cpu()) for images, targets in reference])
    ours, our_labels = zip(*[(images.cpu(), targets.cpu()) for images, targets in decoded])
    assert torch.equal(torch.cat(our_labels), torch.cat(labels))
    difference = (torch.cat(ours) - torch.cat(expected)).abs()
    assert torch.cat(ours).shape == (6, 3, 224, 224)
    mean, largest = decoded_pixels_bound()
    assert difference.mean() < mean * ONE_LEVEL and difference.max() <= largest * ONE_LEVEL + 1e-6


def test_device_decoding_takes_other_formats_through_the_cpu(tmp_path):
    photos = Photos(tmp_path, count=2, scale=3, smooth=True)
    png = tmp_path / "2.png"
    Image.open(photos.paths[0]).save(png)
    samples = [(str(photos.paths[0]), 0), (str(png), 1), (str(photos.paths[1]), 2)]
    images, labels = next(iter(device_decoded_eval_loader(EncodedFiles(samples), 3, 0, DEVICE, 224, 0.875)))
    assert images.shape == (3, 3, 224, 224) and labels.tolist() == [0, 1, 2]
    # The PNG holds the first JPEG's pixels as PIL decodes them.
    assert (images[0] - images[1]).abs().mean() < decoded_pixels_bound()[0] * ONE_LEVEL
