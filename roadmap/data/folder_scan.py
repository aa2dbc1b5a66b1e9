"""The scan of an image folder, done the way the loader will read it.

A file the loader cannot read fails a step after an epoch, on every row and every rerun; so the
scan decides up front, per file, what the loader would meet: only regular files (a FIFO would block
`open` for ever), no dot-folders (`.ipynb_checkpoints` is not a class), and a real decode (JPEG's
`verify()` reads only the header, so a truncated JPEG passed it). JPEG is decoded at 1/8 scale
(`Image.draft`): the entropy decoder still reads every byte, so truncation shows, at a fraction of
a full decode. Images above PIL's pixel limit (decompression bombs) are skipped, not decoded every
epoch.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image, UnidentifiedImageError
from torchvision import datasets as tv_datasets
from tqdm import tqdm

from roadmap.files.atomic import write_json
from roadmap.files.layout import read_json_object

# What a damaged or foreign file can raise while PIL opens and decodes it.
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def hidden(name: str) -> bool:
    """Dot-names are tools' bookkeeping (.ipynb_checkpoints, .DS_Store, .git), never data."""
    return name.startswith(".")


def class_names(root: Path) -> list[str]:
    """The class subfolders of a split: directories (or links to one) whose name is not hidden."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not hidden(entry.name))


def unreadable_reason(path: str) -> str | None:
    """Why the loader could not use `path` (None when it can): not a regular file, too many pixels,
    or not decodable."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    try:
        with warnings.catch_warnings():
            # Between PIL's limit and twice it, PIL only warns and decodes: refused the same way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format == "JPEG":
                    image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"above PIL's pixel limit of {Image.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)"
    except DECODE_ERRORS as error:
        return f"corrupt ({' '.join(str(error).split())[:80] or type(error).__name__})"
    return None


def walk_files(folder: str) -> Iterator[str]:
    """The files below `folder` in sorted order, following symlinked folders but entering each
    folder once (os.walk(followlinks=True) loops for ever on a link to a parent, and counts a folder
    linked twice twice); dot-folders are left out."""
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        try:
            identity = os.stat(current)
            entries = sorted(os.scandir(current), key=lambda entry: entry.name)
        except OSError:  # unreadable or vanished: nothing the loader could read either
            continue
        if (identity.st_dev, identity.st_ino) in seen:
            continue
        seen.add((identity.st_dev, identity.st_ino))
        subfolders = []
        for entry in entries:
            if hidden(entry.name):
                continue
            if entry.is_dir():  # follows links
                subfolders.append(entry.path)
            else:
                yield entry.path
        pending.extend(reversed(subfolders))  # depth first, in name order


class ScannedFolder(tv_datasets.ImageFolder):
    """ImageFolder whose classes leave out dot-folders (torchvision takes every subfolder) and whose
    walk enters each folder once."""

    def find_classes(self, directory: str | os.PathLike) -> tuple[list[str], dict[str, int]]:
        classes = class_names(Path(directory))
        if not classes:
            raise FileNotFoundError(f"no class subfolder in {directory}")
        return classes, {name: index for index, name in enumerate(classes)}

    @staticmethod
    def make_dataset(
        directory: str | os.PathLike,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        valid = is_valid_file or (lambda path: path.lower().endswith(extensions or ()))
        samples = [
            (path, index)
            for name, index in sorted(class_to_idx.items())
            for path in walk_files(os.path.join(directory, name))
            if valid(path)
        ]
        used = {index for _, index in samples}
        empty = sorted(name for name, index in class_to_idx.items() if index not in used)
        if empty and not allow_empty:
            raise FileNotFoundError(f"found no readable image for the classes {', '.join(empty)}")
        return samples


# Below this many files a scan takes under a second or so: no cache file is written for it.
SCAN_CACHE_MIN_FILES = 1000
SCAN_RULES = 1  # bump when unreadable_reason decides differently


def scan(
    root: Path, paths: list[str], cache_folder: Path | None, min_cached: int = SCAN_CACHE_MIN_FILES
) -> dict[str, str]:
    """{path: why the loader cannot read it} over `paths`. Decoding costs about half a millisecond a
    file (ten minutes for ImageNet's 1.28M), and every job of a run loads its data: the answer is kept
    in `cache_folder`, keyed by every file's path, size and modification time, so a changed, added or
    removed file means a new scan."""
    # The rules are part of the key too: a later rule or another pixel limit means a new scan.
    listing = hashlib.sha256(f"{SCAN_RULES} {Image.MAX_IMAGE_PIXELS} {root.resolve()}".encode())
    for path in paths:
        try:
            status = os.stat(path)
            listing.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_mode}\n".encode())
        except OSError:
            listing.update(f"{path}\0gone\n".encode())
    cache = cache_folder / f"{listing.hexdigest()}.json" if cache_folder and len(paths) >= min_cached else None
    if cache is not None and cache.is_file():
        found = read_json_object(cache)
        if found is not None and isinstance(found.get("unreadable"), dict):
            return found["unreadable"]
    unreadable = {}
    for path in tqdm(paths, desc=f"scanning {root}", unit="file", disable=None if len(paths) >= min_cached else True):
        reason = unreadable_reason(path)
        if reason is not None:
            unreadable[path] = reason
    if cache is not None:
        try:
            write_json(cache, {"root": str(root), "files": len(paths), "unreadable": unreadable})
        except OSError:  # a cache: a folder that cannot hold it only costs the next scan
            pass
    return unreadable


def in_hidden_folder(root: Path, path: str) -> bool:
    """A file below a dot-folder inside a class (e.g. cat/.ipynb_checkpoints/x.jpg) is not data."""
    return any(hidden(part) for part in Path(path).relative_to(root).parts)
