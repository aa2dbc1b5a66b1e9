"""Opt-in evaluation decoded on the device (`--eval-decode device`): when JPEG decoding on the CPU
bounds evaluation, the workers only read the files and the device decodes, resizes and crops.

The geometry is the paper's evaluation (timm's, crop_pct 0.875): the shorter side resized to
floor(224 / 0.875) = 256 with bicubic antialiasing, then the centre 224 x 224. The pixels are close
to, not equal to, the CPU pipeline's: nvJPEG (or libjpeg on the CPU) decodes, and torch's bicubic
resize is not PIL's. So this is opt-in, part of the step's key, and named in results and captions.

On a GPU, torchvision's `decode_jpeg` decodes a whole batch at once with nvJPEG; on the CPU the same
code decodes with libjpeg, which keeps this path testable on a machine without a GPU. A file that is
not a JPEG (PNG, say), or one nvJPEG refuses (CMYK), is decoded on the CPU and moved over.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

EVAL_DECODES = ("cpu", "device")
JPEG_MAGIC = (0xFF, 0xD8)


def pixels_with_eval(pixels: str, eval_decode: str) -> str:
    """The run's pixel description, plus how evaluation's pixels are made when that is opt-in."""
    if eval_decode == "device":
        return f"{pixels}; evaluation decoded on the device (torchvision decode_jpeg, torch bicubic resize)"
    return pixels


class EncodedFiles(Dataset):
    """An image folder's (file bytes, label): the worker's whole job is reading the file."""

    def __init__(self, samples: list[tuple[str, int]]) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        return read_file(path), label


def encoded_collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """((all files' bytes end to end, each file's length), labels): a worker hands over three
    tensors per batch, not one per file (each shared tensor costs a file descriptor)."""
    files = [data for data, _ in batch]
    lengths = torch.tensor([data.numel() for data in files], dtype=torch.int64)
    return (torch.cat(files), lengths), torch.tensor([label for _, label in batch], dtype=torch.int64)


def split_files(packed: tuple[torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
    """The files of a batch that encoded_collate packed."""
    data, lengths = packed
    return list(torch.split(data, lengths.tolist()))


def _is_jpeg(data: torch.Tensor) -> bool:
    return data.numel() > 2 and (int(data[0]), int(data[1])) == JPEG_MAGIC


def decode_batch(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """RGB uint8 CHW images on `device`; JPEGs in one batched call, anything else on the CPU."""
    images: list[torch.Tensor | None] = [None] * len(encoded)
    jpegs = [index for index, data in enumerate(encoded) if _is_jpeg(data)]
    if jpegs:
        try:
            decoded = decode_jpeg([encoded[i] for i in jpegs], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one file the batched decoder refuses: fall back for this batch
            decoded = [None] * len(jpegs)
        for index, image in zip(jpegs, decoded):
            images[index] = image
    for index, image in enumerate(images):
        if image is None:
            images[index] = decode_image(encoded[index], mode=ImageReadMode.RGB).to(device)
    return images  # type: ignore[return-value]


def resize_and_crop(image: torch.Tensor, resolution: int, crop_pct: float) -> torch.Tensor:
    """timm's evaluation geometry: shorter side to floor(resolution / crop_pct), bicubic, centre crop."""
    resized = F.resize(image, [math.floor(resolution / crop_pct)], interpolation=InterpolationMode.BICUBIC)
    return F.center_crop(resized, [resolution, resolution])


class DeviceDecoded:
    """Batches of (uint8 images on `device`, labels) from a loader of encoded files; timm's
    `PrefetchLoader` on top normalises them (its copy to the device is then a no-op)."""

    def __init__(self, loader: DataLoader, device: torch.device, resolution: int, crop_pct: float) -> None:
        self.loader, self.device, self.resolution, self.crop_pct = loader, device, resolution, crop_pct

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for packed, labels in self.loader:
            images = decode_batch(split_files(packed), self.device)
            batch = torch.stack([resize_and_crop(image, self.resolution, self.crop_pct) for image in images])
            yield batch, labels

    def __getattr__(self, name: str):
        return getattr(self.loader, name)  # sampler, dataset, batch_size, ... for PrefetchLoader
