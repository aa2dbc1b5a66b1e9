"""The embedded default dataset: procedurally drawn shapes, generated from a seed, nothing downloaded.

A class is a shape; colours, size, position, rotation, background texture and distractors are
random per image, so the network has to learn shape, and a short CPU schedule does not saturate it.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

# What the network sees, as results and captions write it (roadmap.data.shrink.describe says it for
# datasets read from files): there are no files, and nothing is decoded.
PIXELS = "synthetic images rendered in memory"
SHAPES = (
    "disc",
    "ring",
    "square",
    "frame",
    "triangle",
    "cross",
    "diamond",
    "star",
    "bars",
    "stripes",
    "checker",
    "wedge",
    "arrow",
    "hexagon",
    "ellipse",
    "dots",
)


def _polygon(count: int, radius: float, phase: float, centre: tuple[float, float], inner: float | None = None) -> list:
    points = []
    steps = count * 2 if inner is not None else count
    for index in range(steps):
        angle = phase + 2 * math.pi * index / steps
        length = radius if inner is None or index % 2 == 0 else radius * inner
        points.append((centre[0] + length * math.cos(angle), centre[1] + length * math.sin(angle)))
    return points


def _parallel_lines(
    draw: ImageDraw.ImageDraw,
    centre: tuple[float, float],
    radius: float,
    angle: float,
    offsets: tuple[float, ...],
    colour: tuple[int, int, int],
    width: int,
) -> None:
    """Lines of length 2 x radius along `angle`, shifted sideways by each offset (x radius)."""
    x, y = centre
    for offset in offsets:
        dx, dy = radius * math.cos(angle), radius * math.sin(angle)
        ox, oy = offset * radius * -math.sin(angle), offset * radius * math.cos(angle)
        draw.line((x - dx + ox, y - dy + oy, x + dx + ox, y + dy + oy), fill=colour, width=width)


def draw_shape(
    draw: ImageDraw.ImageDraw,
    shape: str,
    centre: tuple[float, float],
    radius: float,
    angle: float,
    colour: tuple[int, int, int],
    width: int,
) -> None:
    """Draw one shape of the synthetic dataset (all coordinates in pixels of the canvas)."""
    x, y = centre
    box = (x - radius, y - radius, x + radius, y + radius)
    if shape == "disc":
        draw.ellipse(box, fill=colour)
    elif shape == "ring":
        draw.ellipse(box, outline=colour, width=width)
    elif shape == "square":
        draw.polygon(_polygon(4, radius * 1.2, angle, centre), fill=colour)
    elif shape == "frame":
        draw.polygon(_polygon(4, radius * 1.2, angle, centre), outline=colour, width=width)
    elif shape == "triangle":
        draw.polygon(_polygon(3, radius * 1.2, angle, centre), fill=colour)
    elif shape == "cross":
        for offset in (0.0, math.pi / 2):
            dx, dy = radius * math.cos(angle + offset), radius * math.sin(angle + offset)
            draw.line((x - dx, y - dy, x + dx, y + dy), fill=colour, width=width + 1)
    elif shape == "diamond":
        points = _polygon(4, radius, angle, centre)
        points = [(x + (px - x) * 0.55, py) if index % 2 else (px, py) for index, (px, py) in enumerate(points)]
        draw.polygon(points, fill=colour)
    elif shape == "star":
        draw.polygon(_polygon(5, radius * 1.2, angle, centre, inner=0.45), fill=colour)
    elif shape == "bars":
        _parallel_lines(draw, centre, radius, angle, (-0.5, 0.5), colour, width)
    elif shape == "stripes":
        _parallel_lines(draw, centre, radius, angle, (-0.7, 0.0, 0.7), colour, max(1, width - 1))
    elif shape == "checker":
        half = radius / 2
        for cx, cy in ((-1, -1), (1, 1)):
            draw.rectangle(
                (x + cx * half - half, y + cy * half - half, x + cx * half + half, y + cy * half + half), fill=colour
            )
    elif shape == "wedge":
        degrees = math.degrees(angle)
        draw.pieslice(box, degrees + 35, degrees + 325, fill=colour)
    elif shape == "arrow":
        tip = _polygon(3, radius * 0.8, angle, (x + 0.3 * radius * math.cos(angle), y + 0.3 * radius * math.sin(angle)))
        draw.polygon(tip, fill=colour)
        draw.line((x, y, x - radius * math.cos(angle), y - radius * math.sin(angle)), fill=colour, width=width)
    elif shape == "hexagon":
        draw.polygon(_polygon(6, radius * 1.1, angle, centre), outline=colour, width=width)
    elif shape == "ellipse":
        draw.ellipse((x - radius, y - radius * 0.45, x + radius, y + radius * 0.45), fill=colour)
    elif shape == "dots":
        for point in _polygon(3, radius * 0.8, angle, centre):
            draw.ellipse((point[0] - width, point[1] - width, point[0] + width, point[1] + width), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def render_synthetic(seed: int, split: int, index: int, classes: int, size: int) -> tuple[np.ndarray, int]:
    """Image `index` of a split, fully determined by (seed, split, index)."""
    rng = np.random.default_rng([seed, split, index])
    label = int(rng.integers(classes))
    scale = 2  # draw at twice the size and downsample: anti-aliased edges at small sizes
    canvas_size = size * scale
    low, high = rng.uniform(0, 110, size=3), rng.uniform(0, 110, size=3)
    gradient = np.linspace(0, 1, canvas_size)[:, None, None]
    background = (low + (high - low) * gradient).repeat(canvas_size, axis=1)
    image = Image.fromarray(background.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    # Distractors: small random shapes from any class, dimmer than the object.
    for _ in range(int(rng.integers(0, 3))):
        draw_shape(
            draw,
            SHAPES[int(rng.integers(len(SHAPES)))],
            tuple(rng.uniform(0, canvas_size, 2)),
            canvas_size * rng.uniform(0.06, 0.12),
            rng.uniform(0, 2 * math.pi),
            tuple(int(v) for v in rng.integers(40, 150, 3)),
            scale,
        )
    radius = canvas_size * rng.uniform(0.2, 0.34)
    centre = tuple(rng.uniform(radius * 0.8, canvas_size - radius * 0.8, 2))
    colour = tuple(int(v) for v in rng.integers(120, 256, 3))
    draw_shape(
        draw, SHAPES[label], centre, radius, rng.uniform(0, 2 * math.pi), colour, int(rng.integers(2, 4)) * scale
    )
    image = image.resize((size, size), Image.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, (size, size, 3))
    return pixels.clip(0, 255).astype(np.uint8), label


class SyntheticShapes(Dataset):
    """`length` images of `classes` shape classes, generated once from `seed` (split 0 = train)."""

    def __init__(self, length: int, classes: int = 16, size: int = 32, seed: int = 0, split: int = 0) -> None:
        if not 2 <= classes <= len(SHAPES):
            raise ValueError(f"the synthetic dataset has 2 to {len(SHAPES)} classes, got {classes}")
        rendered = [render_synthetic(seed, split, index, classes, size) for index in range(length)]
        self.images = np.stack([pixels for pixels, _ in rendered])
        self.targets = [label for _, label in rendered]
        self.classes = list(SHAPES[:classes])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[index]), self.targets[index]
