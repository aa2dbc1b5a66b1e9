"""Training presets: how big a network, how many epochs and how much data a run trains with.

`paper` trains the full-size networks at 224 px with the paper's schedules. The CPU presets train
proxies: every network of the roadmap is scaled by the same rule (widths divided, depths divided
and rounded, never below one block per stage), which keeps each step's structural change (stem,
stage ratio, grouping, inversion, kernel, norms, activations, downsampling) while shrinking its
cost. Schedules are scaled by one factor, so the legacy / modern ratio of epochs (90 / 300),
warm-up and decay points keep their proportions. Tables always report the full-size network's
complexity at 224 px; the proxy's own complexity is recorded beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from roadmap.errors import UserError
from roadmap.spec import Network, Pretrain, Recipe, Spec, SpecError
from roadmap.train.optimisation import paper_updates


class PresetError(UserError, ValueError):
    """An unknown preset or an impossible training setting."""


@dataclass(frozen=True)
class TrainingPreset:
    name: str
    description: str
    width_divisor: int
    depth_divisor: int
    resolution: int
    # Proxy epochs = round(recipe epochs x epoch_scale), at least 1.
    epoch_scale: float
    # Images per device per optimizer step; None: the recipe's batch spread over the devices.
    batch_size: int | None
    workers: int
    # Scale the learning rate linearly with the effective batch (the paper's rule). The proxies
    # keep the recipe's learning rate at their small batch instead: linear scaling from 4096 down
    # to 128 would leave AdamW with lr 1.25e-4, far too little for a schedule of a few epochs.
    scale_lr: bool
    # torch.compile by default where the device supports it (roadmap.cost.numerics: with CUDA). The
    # proxies train for seconds per epoch, so there compilation would cost more than it saves.
    compile_by_default: bool = False
    # Progressive resizing (FFCV's rule): train at `start_resolution` until `ramp_end` of the epochs,
    # then at `resolution`; None: always at `resolution`. Evaluation at `eval_resolution` (None: the
    # training resolution), with the recipe's crop_pct (224 from 256).
    start_resolution: int | None = None
    ramp_end: float = 0.85
    eval_resolution: int | None = None
    synthetic_train: int = 4000
    synthetic_val: int = 1000
    synthetic_classes: int = 16
    synthetic_seed: int = 0


PRESETS: dict[str, TrainingPreset] = {
    preset.name: preset
    for preset in (
        TrainingPreset(
            name="cpu",
            description="CPU proxy: widths / 4, depths / 3, 32 px, epochs x 1/25 (legacy 4, modern 12)",
            width_divisor=4,
            depth_divisor=3,
            resolution=32,
            epoch_scale=1 / 25,
            batch_size=128,
            workers=1,
            scale_lr=False,
        ),
        TrainingPreset(
            name="tiny",
            description="test-sized proxy: widths / 8, depths / 3, 32 px, 1-2 epochs, 256 images",
            width_divisor=8,
            depth_divisor=3,
            resolution=32,
            epoch_scale=1 / 150,
            batch_size=32,
            workers=0,
            scale_lr=False,
            synthetic_train=256,
            synthetic_val=128,
            synthetic_classes=8,
        ),
        TrainingPreset(
            name="paper",
            description="the paper: full-size networks, 224 px, 300 epochs, effective batch 4096, linear lr scaling",
            width_divisor=1,
            depth_divisor=1,
            resolution=224,
            epoch_scale=1.0,
            batch_size=128,
            workers=8,
            scale_lr=True,
            compile_by_default=True,
        ),
        # A proxy of the paper for one 8-GPU node: the 13-row ablation with 3 seeds in about a day
        # (README, "--preset fast"). Full-size networks; timm's A3 recipe (100 epochs at 160 px)
        # ranks ResNet-family models like its 600-epoch A1 (Kendall tau 0.944), and FFCV reaches
        # 73.8% (16 epochs) to 78.4% (88 epochs) on ResNet-50 with 160->192 px and 224/256 testing.
        TrainingPreset(
            name="fast",
            description="one-node ImageNet proxy: full-size networks, 160 px then 192 px from 85% of the epochs, "
            "tested at 224 from 256, epochs x 1/10 (legacy 9, modern 30), effective batch 4096, "
            "linear lr scaling",
            width_divisor=1,
            depth_divisor=1,
            resolution=192,
            epoch_scale=1 / 10,
            batch_size=128,
            workers=8,
            scale_lr=True,
            compile_by_default=True,
            start_resolution=160,
            eval_resolution=224,
        ),
    )
}


def resolution_schedule(preset: TrainingPreset, epochs: int) -> tuple[tuple[int, int], ...]:
    """(first epoch, training resolution) pairs of a step trained for `epochs` epochs."""
    if preset.start_resolution is None or preset.start_resolution == preset.resolution:
        return ((0, preset.resolution),)
    switch = min(epochs - 1, math.ceil(preset.ramp_end * epochs))
    if switch <= 0:
        return ((0, preset.resolution),)
    return ((0, preset.start_resolution), (switch, preset.resolution))


def describe_resolution(preset: TrainingPreset) -> str:
    """The resolutions of a preset as a caption states them, e.g. '160->192 px, tested at 224'."""
    trained = f"{preset.start_resolution}->{preset.resolution}" if preset.start_resolution else str(preset.resolution)
    tested = preset.eval_resolution
    return f"{trained} px" + (f", tested at {tested}" if tested and tested != preset.resolution else "")


def get_preset(name: str) -> TrainingPreset:
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def proxy_network(network: Network, preset: TrainingPreset, num_classes: int) -> Network:
    """The network scaled down by the preset (unchanged for divisors of 1), with the dataset's classes."""

    def width(value: int) -> int:
        # Multiples of 8 keep grouped and partial convolutions meaningful (InceptionNeXt splits
        # channels in eighths); never below 8.
        if preset.width_divisor == 1:
            return value
        return max(8, 8 * round(value / preset.width_divisor / 8))

    def depth(value: int) -> int:
        return max(1, round(value / preset.depth_divisor))

    return replace(
        network,
        stem_width=width(network.stem_width),
        widths=tuple(width(value) for value in network.widths),
        depths=tuple(depth(value) for value in network.depths),
        num_classes=num_classes,
    )


def _scaled_schedule(epochs: int, warmup_epochs: int, scale: float) -> tuple[int, int]:
    """Epochs and warm-up epochs scaled by one factor (half up, at least one epoch, warm-up shorter)."""
    new_epochs = max(1, math.floor(epochs * scale + 0.5))  # half up: 90 / 20 -> 5
    return new_epochs, min(new_epochs - 1, math.ceil(warmup_epochs * scale)) if warmup_epochs else 0


def proxy_recipe(recipe: Recipe, preset: TrainingPreset, epochs: int | None = None) -> Recipe:
    """The recipe with its schedule scaled by the preset (or set to `epochs` with the same proportions)."""
    scale = preset.epoch_scale if epochs is None else epochs / recipe.epochs
    if epochs is not None and epochs < 1:
        raise PresetError(f"epochs must be a positive integer, got {epochs}")
    new_epochs, warmup_epochs = _scaled_schedule(recipe.epochs, recipe.warmup_epochs, scale)
    # The step decays stay at the same fractions of the epochs actually trained (torchvision's 30
    # and 60 of 90 become 4/3 and 8/3 of 4), not of the rounded scale: 90 / 25 -> 4 epochs with a
    # decay every 1.2 would decay three times.
    decay_epochs = recipe.decay_epochs * new_epochs / recipe.epochs
    # The EMA's horizon is the paper's share of the paper's updates (roadmap.train.optimisation).
    reference = recipe.ema_reference_updates
    if recipe.ema and reference is None:
        reference = paper_updates(recipe)
    return replace(
        recipe,
        epochs=new_epochs,
        warmup_epochs=warmup_epochs,
        decay_epochs=decay_epochs,
        ema_reference_updates=reference,
    )


def proxy_pretrain(pretrain: Pretrain, recipe: Recipe, preset: TrainingPreset, epochs: int | None = None) -> Pretrain:
    """Pre-training scaled like the recipe it precedes, so pre-training / fine-tuning keep their ratio."""
    scale = preset.epoch_scale if epochs is None else epochs / recipe.epochs
    new_epochs, warmup_epochs = _scaled_schedule(pretrain.epochs, pretrain.warmup_epochs, scale)
    return replace(pretrain, epochs=new_epochs, warmup_epochs=warmup_epochs)


def resolve(spec: Spec, preset: TrainingPreset, num_classes: int, epochs: int | None = None) -> Spec:
    """The spec a run of this preset actually trains."""
    try:
        pretrain = proxy_pretrain(spec.pretrain, spec.recipe, preset, epochs) if spec.pretrain else None
        return Spec(
            proxy_network(spec.network, preset, num_classes), proxy_recipe(spec.recipe, preset, epochs), pretrain
        )
    except SpecError as error:
        raise PresetError(f"preset {preset.name}: {error}") from None


@dataclass(frozen=True)
class BatchPlan:
    """How the recipe's batch is made: per-device batch x devices x gradient accumulation."""

    per_device: int
    devices: int
    accumulation: int
    lr: float

    @property
    def effective(self) -> int:
        return self.per_device * self.devices * self.accumulation

    def describe(self, recipe: Recipe) -> str:
        rule = (
            f"lr {recipe.lr:g} x {self.effective}/{recipe.reference_batch_size} = {self.lr:.3g} (linear scaling)"
            if self.lr != recipe.lr
            else f"lr {self.lr:.3g} (not scaled)"
        )
        return (
            f"effective batch {self.effective} = {self.per_device} per device x {self.devices} device(s) "
            f"x {self.accumulation} accumulation step(s); {rule}"
        )


def batch_plan(
    recipe: Recipe,
    preset: TrainingPreset,
    devices: int = 1,
    per_device: int | None = None,
    accumulation: int | None = None,
) -> BatchPlan:
    """Split the batch over devices and accumulation steps, and scale the learning rate."""
    for what, value in (("devices", devices), ("batch size", per_device), ("accumulation", accumulation)):
        if value is not None and value < 1:
            raise PresetError(f"{what} must be a positive integer, got {value}")
    per_device = per_device or preset.batch_size or max(1, recipe.batch_size // devices)
    if accumulation is None:
        # The paper preset reaches the recipe's batch by accumulating; proxies train at their batch.
        wanted = recipe.batch_size if preset.scale_lr else per_device * devices
        accumulation = max(1, round(wanted / (per_device * devices)))
    effective = per_device * devices * accumulation
    lr = recipe.lr * effective / recipe.reference_batch_size if preset.scale_lr else recipe.lr
    return BatchPlan(per_device, devices, accumulation, lr)
