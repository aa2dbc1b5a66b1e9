"""Where a run's images come from and how they are read: one record, `DataSource`, that the run's
options carry, every task of the run carries, and the datasets are loaded from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSource:
    """The dataset and the way its files are read, as `--dataset`, `--data`, `--shrink`,
    `--shrink-format`, `--cache-dir`, `--eval-decode` and `--classes` give them."""

    dataset: str = "synthetic"  # one of roadmap.data.datasets.DATASETS
    data_path: str | None = None  # the folder that holds a dataset with files (None: the embedded one)
    # Opt-in pre-shrunk copy of a folder dataset (shorter side in px), how it is stored
    # (roadmap.data.shrink.STORAGES) and where it is kept (None: the user cache, roadmap.data.shrink.default_cache_dir).
    shrink: int | None = None
    shrink_format: str = "jpeg"
    cache_dir: str | None = None
    eval_decode: str = "cpu"  # where evaluation's JPEGs are decoded (roadmap.data.device_decode.EVAL_DECODES)
    classes: int | None = None  # a seeded class subset of a folder dataset (roadmap.data.datasets.class_subset)
