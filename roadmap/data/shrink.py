"""Opt-in faster decoding: a one-time pre-shrunk copy of a folder dataset (`--shrink N`).

Decoding a full-size ImageNet JPEG dominates the CPU side of the paper's pipeline. Like FFCV,
which stores ImageNet at a longest side of 256-512 px, this writes each image whose shorter side
exceeds N pixels once, resized (bicubic, antialiased) to a shorter side of N and re-encoded as
JPEG (quality 95); smaller images are copied byte for byte. Every later run decodes the smaller
files. The network then sees different pixels than the paper's pipeline (small random crops come
from fewer source pixels, and JPEG re-encoding adds its own loss), so this is opt-in, part of the
step's key and written to every result and caption.

N = 256 is the size to start from: the paper's evaluation resizes the shorter side to 256 before
its 224 centre crop, so evaluation sees nearly the same pixels (only re-encoding differs), and a
typical ImageNet image (500 x 375) has about half its pixels left to decode.

The copy is built in a temporary folder and renamed into place with a manifest (relative path,
size, CRC-32 of each file) written last, so an interrupted build is never mistaken for a copy;
every use checks the files' sizes against the manifest.

Storage (chosen per run, part of the recorded pixels): "jpeg" (the default, above) or "ppm", which
writes the same resized pixels uncompressed (PPM, 3 bytes a pixel: about 5x the disk of the q95
copy, some 330 GB for ImageNet-1k's training set at N = 256). Reading a PPM file is a copy, not a
decode, and it has no re-encoding loss: its pixels are the resized original's exactly (smaller
images: the original's decoded pixels).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zlib
from multiprocessing import Pool
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision.datasets.folder import IMG_EXTENSIONS
from tqdm import tqdm

from roadmap.data.folder_scan import in_hidden_folder, unreadable_reason
from roadmap.errors import UserError

SPLITS = ("train", "val")
JPEG_QUALITY = 95
STORAGES = ("jpeg", "ppm")
# Bump when the way files are written changes: old copies then stop matching.
FORMAT_VERSION = 1


class ShrinkError(UserError, ValueError):
    """A shrink request or cached copy that cannot be used (bad size, unwritable or corrupt cache)."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "roadmap" / "shrunk"


def describe(size: int | None, storage: str = "jpeg") -> str:
    """The pixels a run reads from files, as written to results and captions: the original files,
    or the pre-shrunk copy of `size`. (The embedded synthetic set has no files: roadmap.data.synthetic.PIXELS.)"""
    if size is None:
        return "original files"
    if storage == "ppm":
        return f"pre-shrunk copy: shorter side <= {size} px (bicubic), uncompressed PPM"
    return f"pre-shrunk copy: shorter side <= {size} px (bicubic), JPEG q{JPEG_QUALITY}"


def _image_files(root: Path) -> list[str]:
    """Relative paths of the image files of train/ and val/ (the extensions ImageFolder reads)."""
    found = []
    for split in SPLITS:
        for path in sorted((root / split).rglob("*")):
            hidden_part = in_hidden_folder(root / split, str(path))
            if path.is_file() and path.name.lower().endswith(IMG_EXTENSIONS) and not hidden_part:
                found.append(str(path.relative_to(root)))
    return found


def _shrink_one(job: tuple[str, str, str, int, str]) -> tuple[str, int, int] | None:
    """Write one file of the copy; None for an unreadable source (skipped, as the loader would)."""
    source_root, target_root, relative, size, storage = job
    # A PPM copy keeps the source's name with ".ppm" added (ImageFolder reads it; "a.jpg" and
    # "a.png" stay apart).
    written = relative + ".ppm" if storage == "ppm" else relative
    source, target = Path(source_root) / relative, Path(target_root) / written
    # Checked as the loader reads it: a small file is copied byte for byte, so a truncated JPEG
    # would otherwise land in the copy and be refused there as a corrupt cache; a bomb is not opened.
    if unreadable_reason(str(source)) is not None:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with Image.open(source) as image:
            width, height = image.size
            if min(width, height) <= size and storage == "jpeg":
                shutil.copyfile(source, target)
            else:
                image = image.convert("RGB")
                if min(width, height) > size:
                    scale = size / min(width, height)
                    shape = (max(1, round(width * scale)), max(1, round(height * scale)))
                    image = image.resize(shape, Image.BICUBIC)
                options = {"format": "PPM"} if storage == "ppm" else {"format": "JPEG", "quality": JPEG_QUALITY}
                image.save(target, **options)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        target.unlink(missing_ok=True)
        return None
    data = target.read_bytes()
    return written, len(data), zlib.crc32(data)


def _writable_folder(cache_dir: Path) -> Path:
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        probe = cache_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ShrinkError(
            f"cache folder {cache_dir} is not writable ({error.strerror or error}); "
            f"pass --cache-dir a folder you can write to"
        ) from None
    return cache_dir


def _build(root: Path, target: Path, size: int, workers: int, storage: str) -> None:
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    files = _image_files(root)
    jobs = [(str(root), str(partial), relative, size, storage) for relative in files]
    manifest = {
        "source": str(root),
        "shorter_side": size,
        "jpeg_quality": JPEG_QUALITY,
        "storage": storage,
        "format_version": FORMAT_VERSION,
        "files": {},
    }
    try:
        partial.mkdir(parents=True)  # also when there is no image to write
        with Pool(max(1, workers)) as pool:
            written = pool.imap_unordered(_shrink_one, jobs, chunksize=64)
            for entry in tqdm(
                written, total=len(jobs), desc=f"shrinking {root.name} to {size} px", unit="img", disable=None
            ):
                if entry is not None:
                    relative, length, crc = entry
                    manifest["files"][relative] = [length, crc]
        (partial / "manifest.json").write_text(json.dumps(manifest))
        os.replace(partial, target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _check(target: Path) -> None:
    """Sizes against the manifest: a truncated, replaced or missing file is caught before training."""
    manifest = json.loads((target / "manifest.json").read_text())
    for relative, (length, _crc) in manifest["files"].items():
        path = target / relative
        actual = path.stat().st_size if path.is_file() else None
        if actual != length:
            state = "missing" if actual is None else f"{actual} bytes, expected {length}"
            raise ShrinkError(f"cached file {path} is corrupt ({state}); delete {target} to rebuild the copy")


def shrunk_copy(
    root: Path, size: int, cache_dir: Path | None = None, workers: int | None = None, storage: str = "jpeg"
) -> Path:
    """The folder of `root`'s pre-shrunk copy at `size` in `storage` (STORAGES), built first when
    there is none."""
    if size < 1:
        raise ShrinkError(f"--shrink must be a positive number of pixels (e.g. 256), got {size}")
    if storage not in STORAGES:
        raise ShrinkError(f"unknown storage {storage!r} for the pre-shrunk copy; choose one of: {', '.join(STORAGES)}")
    root = Path(root).resolve()
    cache_dir = _writable_folder(Path(cache_dir) if cache_dir else default_cache_dir())
    # The JPEG copy keeps the key and name it always had, so existing copies stay found.
    tag = "" if storage == "jpeg" else f"|{storage}"
    key = hashlib.sha256(f"{root}|{size}|{FORMAT_VERSION}{tag}".encode()).hexdigest()[:12]
    target = cache_dir / f"{root.name}-short{size}{tag.replace('|', '-')}-{key}"
    if target.exists() and not (target / "manifest.json").is_file():
        raise ShrinkError(f"{target} is not a complete copy (no manifest.json); delete it to rebuild the copy")
    if not target.exists():
        _build(root, target, size, workers or len(os.sched_getaffinity(0)), storage)
    _check(target)
    return target
