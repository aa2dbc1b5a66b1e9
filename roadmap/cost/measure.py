"""Cost per step: measured throughput and peak memory of a spec's full-size network on this machine.

FLOPs are not speed: depthwise convolutions and large kernels have few FLOPs and low arithmetic
intensity. This module times what a step costs where it runs: untimed warm-up steps (long enough
for cuDNN autotuning and for `torch.compile` to compile), then timed train steps (forward, loss,
backward, AdamW) and inference batches, under the numerics of `roadmap.cost.numerics` (precision,
memory format, compilation), recording every condition with the figures.

Cost settings are data (`COST_SETTINGS`): named numerics for the cost study, e.g. `paper` (the
InceptionNeXt protocol) or `bf16-compiled`. `measure_settings` measures a network under several of
them and returns flat `cost_<setting>_*` keys for result.json. A setting the device cannot run
(TF32 on the CPU) is skipped with its reason recorded (`cost_<setting>_skipped`), never an error
after a run has trained; `unavailable_settings` lets a command refuse it up front instead.
"""

from __future__ import annotations

import contextlib
import gc
import resource
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from roadmap.cost.numerics import AUTOCAST_DTYPES, Numerics, NumericsError, describe_device
from roadmap.cost.settings import COST_SETTINGS, DEFAULT_BATCH, setting_key
from roadmap.network.build import build
from roadmap.spec import Spec

# Untimed warm-up and timed steps per phase. On a GPU the warm-up covers cuDNN autotuning (first
# call of each shape) and compilation (first train step and first inference batch each compile).
CUDA_STEPS = (10, 20)
CPU_STEPS = (2, 5)
# A compiled network compiles on its first step and may settle on the second: never time those.
MIN_COMPILED_WARMUP = 2


@dataclass(frozen=True, kw_only=True)  # built from named fields only: fourteen in a row are misread
class Cost:
    train_images_per_s: float
    infer_images_per_s: float
    peak_memory_mb: float  # CUDA: max allocated; CPU: growth of the process's peak resident size
    device: str
    dtype: str  # compute dtype of the autocast region: bfloat16, float16 or float32
    batch: int
    resolution: int
    memory_format: str  # channels_last or contiguous
    precision: str = "fp32"  # roadmap.cost.numerics name: bf16, fp16, tf32 or fp32
    channels_last: bool = False
    compiled: bool = False
    warmup: int = 0
    iterations: int = 0
    warmup_s: float = 0.0  # untimed warm-up seconds, train + inference (compilation included)

    def to_dict(self) -> dict:
        return asdict(self)


def synchronise(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): timings must not end early."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_resident_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@contextlib.contextmanager
def _restored_backend_flags() -> Iterator[None]:
    """`Numerics.apply` sets process-wide flags; a measurement must leave the caller's as they were."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
        ) = saved[:4]
        torch.use_deterministic_algorithms(saved[4], warn_only=saved[5])


def default_steps(device: torch.device) -> tuple[int, int]:
    """(warm-up, timed) steps per phase on `device`."""
    return CUDA_STEPS if device.type == "cuda" else CPU_STEPS


def train_step(
    model: nn.Module, numerics: Numerics, device: torch.device, images: torch.Tensor, labels: torch.Tensor
) -> Callable[[], None]:
    """One train step as a closure: forward under autocast, cross-entropy, backward, AdamW update."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = numerics.grad_scaler(device)
    loss_function = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with numerics.autocast(device):
            loss = loss_function(model(images), labels)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return step


def infer_step(model: nn.Module, numerics: Numerics, device: torch.device, images: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad(), numerics.autocast(device):
            model(images)

    return step


def timed(step: Callable[[], None], warmup: int, iterations: int, device: torch.device) -> tuple[float, float]:
    """(seconds of `warmup` untimed calls, seconds of `iterations` timed calls), synchronised."""
    started = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronise(device)
    warm = time.perf_counter()
    for _ in range(iterations):
        step()
    synchronise(device)
    return warm - started, time.perf_counter() - warm


def prepare(model: nn.Module, numerics: Numerics, device: torch.device) -> nn.Module:
    """The model on `device` in the numerics' memory format, compiled when they say so."""
    model = model.to(device, memory_format=numerics.memory_format)
    return torch.compile(model) if numerics.compile else model


def _resolve(numerics: Numerics | None, device: torch.device) -> Numerics:
    # None keeps what measure always did: the device's precision and memory format, eager.
    return (numerics or Numerics(compile=False)).for_device(device)


def _train_and_infer_rates(
    spec: Spec, batch: int, resolution: int, warmup: int, iterations: int, device: torch.device, numerics: Numerics
) -> tuple[list[float], float]:
    """Images/s of a train step and of an inference step of `spec`'s network (random input), and
    the seconds both warm-ups took."""
    model = prepare(build(spec), numerics, device)
    shape = (batch, spec.network.in_channels, resolution, resolution)
    images = torch.randn(shape, device=device).contiguous(memory_format=numerics.memory_format)
    labels = torch.randint(0, spec.network.num_classes, (batch,), device=device)
    rates, warm_seconds = [], 0.0
    for training, step in (
        (True, train_step(model, numerics, device, images, labels)),
        (False, infer_step(model, numerics, device, images)),
    ):
        model.train(training)
        warm, seconds = timed(step, warmup, iterations, device)
        rates.append(iterations * batch / seconds)
        warm_seconds += warm
    return rates, warm_seconds


def measure(
    spec: Spec,
    batch: int = 32,
    resolution: int = 224,
    warmup: int | None = None,
    iterations: int | None = None,
    device: str | torch.device | None = None,
    numerics: Numerics | None = None,
) -> Cost:
    """Time train and inference steps of `spec`'s network under `numerics` on `device`.

    `numerics` None: the device's default precision and memory format (bf16 + channels-last on a
    GPU, fp32 + NCHW on the CPU), eager. Warm-up and timed steps default per device (`default_steps`);
    a compiled network gets at least `MIN_COMPILED_WARMUP` warm-up steps. Backend flags set for the
    measurement (TF32, cuDNN autotuning) are restored afterwards.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    numerics = _resolve(numerics, device)
    default_warmup, default_iterations = default_steps(device)
    warmup = default_warmup if warmup is None else warmup
    iterations = default_iterations if iterations is None else iterations
    if numerics.compile:
        warmup = max(warmup, MIN_COMPILED_WARMUP)
        torch.compiler.reset()  # fresh caches: no recompilation budget used up by earlier networks
    cuda = device.type == "cuda"
    with _restored_backend_flags():
        # From the library defaults (a deterministic training run may have switched them on), then the numerics'.
        torch.use_deterministic_algorithms(False)
        numerics.apply(device)
        baseline = _peak_resident_mb()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        rates, warm_seconds = _train_and_infer_rates(spec, batch, resolution, warmup, iterations, device, numerics)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else _peak_resident_mb() - baseline
    if numerics.compile:
        torch.compiler.reset()
    dtype = AUTOCAST_DTYPES.get(numerics.precision, torch.float32)
    return Cost(
        train_images_per_s=rates[0],
        infer_images_per_s=rates[1],
        peak_memory_mb=peak,
        device=describe_device(device),
        dtype=str(dtype).removeprefix("torch."),
        batch=batch,
        resolution=resolution,
        memory_format="channels_last" if numerics.channels_last else "contiguous",
        precision=numerics.precision,
        channels_last=bool(numerics.channels_last),
        compiled=bool(numerics.compile),
        warmup=warmup,
        iterations=iterations,
        warmup_s=warm_seconds,
    )


def _fitting(spec: Spec, batch: int, numerics: Numerics, device: torch.device, **options: Any) -> Cost:
    """`measure`, halving the batch on CUDA out-of-memory as InceptionNeXt did ("reduced if OOM")."""
    while True:
        try:
            return measure(spec, batch, device=device, numerics=numerics, **options)
        except torch.OutOfMemoryError:
            if device.type != "cuda" or batch == 1:
                raise
        # Outside the handler: the failed attempt's tensors are unreachable once its traceback is gone.
        torch.compiler.reset()
        gc.collect()
        torch.cuda.empty_cache()
        batch //= 2


def best_of(costs: Sequence[Cost]) -> Cost:
    """The best train and the best inference figure of several layouts, with the conditions of each."""
    train = max(costs, key=lambda cost: cost.train_images_per_s)
    infer = max(costs, key=lambda cost: cost.infer_images_per_s)
    layout = train.memory_format if train is infer else f"{train.memory_format} (train), {infer.memory_format} (infer)"
    return replace(
        train,
        infer_images_per_s=infer.infer_images_per_s,
        memory_format=layout,
        peak_memory_mb=max(cost.peak_memory_mb for cost in costs),
        warmup_s=sum(cost.warmup_s for cost in costs),
    )


def measure_setting(
    spec: Spec,
    name: str,
    device: torch.device | str,
    batch: int | None = None,
    resolution: int = 224,
    warmup: int | None = None,
    iterations: int | None = None,
) -> Cost:
    """Measure `spec` under the named setting; `batch` overrides the setting's own. NumericsError
    when the device cannot run the setting."""
    device = torch.device(device)
    setting = COST_SETTINGS[name].for_device(device)
    batch = batch or setting.batch or DEFAULT_BATCH["cuda" if device.type == "cuda" else "cpu"]
    costs = [
        _fitting(spec, batch, numerics, device, resolution=resolution, warmup=warmup, iterations=iterations)
        for numerics in setting.numerics()
    ]
    return best_of(costs) if len(costs) > 1 else costs[0]


def measure_settings(
    spec: Spec,
    settings: Sequence[str],
    device: torch.device | str,
    batch: int | None = None,
    resolution: int = 224,
    warmup: int | None = None,
    iterations: int | None = None,
) -> dict:
    """Flat result.json keys of `spec`'s cost under each setting.

    Per setting s (key `setting_key(s)`): `cost_<s>_<field>` for every `Cost` field (train and
    inference images/s, peak memory, batch, precision, channels_last, compiled, ...) and
    `cost_<s>_skipped` (None, or why the device cannot run s; its figures are then None). The first
    measured setting also fills the plain `cost_<field>` keys and `cost_setting`; `cost_settings`
    lists the settings asked for.
    """
    record: dict[str, Any] = {"cost_settings": list(settings), "cost_setting": None}
    for name in settings:
        key = setting_key(name)
        try:
            cost = measure_setting(spec, name, device, batch, resolution, warmup, iterations)
        except NumericsError as error:
            record.update({f"cost_{key}_{field}": None for field in Cost.__dataclass_fields__})
            record[f"cost_{key}_skipped"] = f"setting {name}: {error}"
            continue
        record.update({f"cost_{key}_{field}": value for field, value in cost.to_dict().items()})
        record[f"cost_{key}_skipped"] = None
        if record["cost_setting"] is None:
            record["cost_setting"] = name
            record.update({f"cost_{field}": value for field, value in cost.to_dict().items()})
    return record


def median_cost(costs: Sequence[Cost]) -> Cost:
    """Median figures of repeated measurements under the same conditions (the first one's)."""
    return replace(
        costs[0],
        **{
            field: statistics.median(getattr(cost, field) for cost in costs)
            for field in ("train_images_per_s", "infer_images_per_s", "peak_memory_mb")
        },
    )
