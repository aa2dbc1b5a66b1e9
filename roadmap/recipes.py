"""The two training recipes of the roadmap, as data (papers.md section 3)."""

from dataclasses import replace

from roadmap.spec import Recipe

# torchvision's 90-epoch ResNet recipe: SGD, lr 0.1 per 256 images, step decay every 30 epochs,
# RandomResizedCrop + horizontal flip, kaiming init.
LEGACY = Recipe()

# The paper's Table 5 ImageNet-1K recipe, with EMA off as in the roadmap study (App. A.1).
MODERN = Recipe(
    name="modern",
    epochs=300,
    batch_size=4096,
    reference_batch_size=4096,
    opt="adamw",
    lr=4e-3,
    opt_eps=1e-8,
    opt_betas=(0.9, 0.999),
    weight_decay=0.05,
    no_decay_1d=True,
    sched="cosine",
    warmup_epochs=20,
    warmup_lr=0.0,
    min_lr=1e-6,
    auto_augment="rand-m9-mstd0.5-inc1",
    mixup=0.8,
    cutmix=1.0,
    mixup_prob=1.0,
    mixup_switch_prob=0.5,
    label_smoothing=0.1,
    random_erasing=0.25,
    random_erasing_mode="pixel",
    color_jitter=0.4,
    interpolation="bicubic",
    crop_pct=0.875,
    drop_path_rate=0.1,
    layer_scale_init=1e-6,
    weight_init="trunc_normal",
    ema=False,
    ema_decay=0.9999,
    gradient_clip=None,
)

# ConvNeXt V2's fine-tuning of an FCMAE-pre-trained encoder (papers.md 5.2, the official
# TRAINING.md): batch 1024, lr = base lr x 1024 / 256, layer-wise lr decay, EMA, RandAugment and
# random erasing as in Table 5. One recipe per model size the paper prints: Atto (also used for
# Femto and Pico), Tiny (also Nano) and Base (also Large and Huge).
_V2_FINETUNE = replace(
    MODERN,
    name="v2-finetune",
    batch_size=1024,
    reference_batch_size=1024,
    ema=True,
    layer_decay=0.9,
    layer_decay_kind="single",
    # main_finetune.py's --head_init_scale default: the new classifier starts at 0.001 of its init.
    head_init_scale=0.001,
)
V2_FINETUNE = {
    "atto": replace(
        _V2_FINETUNE,
        name="v2-finetune-atto",
        lr=2e-4 * 4,
        epochs=600,
        warmup_epochs=0,
        weight_decay=0.3,
        drop_path_rate=0.1,
        mixup=0.0,
        cutmix=0.0,
        label_smoothing=0.2,
    ),
    "tiny": replace(
        _V2_FINETUNE,
        name="v2-finetune-tiny",
        lr=8e-4 * 4,
        epochs=300,
        warmup_epochs=40,
        weight_decay=0.05,
        drop_path_rate=0.2,
        label_smoothing=0.1,
    ),
    "base": replace(
        _V2_FINETUNE,
        name="v2-finetune-base",
        lr=6.25e-4 * 4,
        epochs=100,
        warmup_epochs=20,
        weight_decay=0.05,
        drop_path_rate=0.1,
        label_smoothing=0.1,
        layer_decay=0.6,
        layer_decay_kind="group",
    ),
}


def v2_finetune_recipe(stem_width: int) -> Recipe:
    """The fine-tuning recipe of the model size whose first-stage width (C) is `stem_width`."""
    if stem_width <= 64:
        return V2_FINETUNE["atto"]
    return V2_FINETUNE["tiny"] if stem_width <= 96 else V2_FINETUNE["base"]
