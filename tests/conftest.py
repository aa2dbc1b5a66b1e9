"""Shared fixtures. Tests run on CPU with a fixed number of threads for repeatable timings."""

import torch

torch.set_num_threads(max(1, torch.get_num_threads()))
