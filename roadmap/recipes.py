"""The two training recipes of the roadmap, as data (papers.md section 3)."""

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
