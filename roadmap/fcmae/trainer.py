"""The pre-training phase of an FCMAE row, trained by the same loop as every other row.

A row whose spec has `pretrain` (the `fcmae` step) trains in two phases inside one job
(roadmap.launch.job): pre-training here, in the row's `pretrain/` folder with its own checkpoints,
metrics and result, then fine-tuning by the ordinary `Trainer`, which starts from the encoder
this phase leaves in `pretrain/encoder.pt`. Each phase resumes from its own checkpoint, and a
finished pre-training is never run again for the same key.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from roadmap.cost.numerics import describe_device
from roadmap.fcmae.decoder import FcmaeDecoder
from roadmap.fcmae.masking import MaskedEncoder, MaskGenerator, encoder_state_dict, load_pretrained
from roadmap.fcmae.model import FcmaeModel
from roadmap.files.atomic import write_atomic, write_json
from roadmap.files.records import PhaseResult
from roadmap.network.build import build
from roadmap.spec import Recipe, Spec
from roadmap.train.task import StepTask
from roadmap.train.trainer import Trainer

PHASE = "pretrain"
# Masks of the validation loss: the same for every epoch and every row, so the figure compares.
VALIDATION_MASK_SEED = 0


def pretrain_task(task: StepTask) -> StepTask:
    """The pre-training phase of `task` as a task of its own: its data recipe, batch, lr and folder.

    Its recipe carries what the loop reads: FCMAE's augmentation (RandomResizedCrop 0.2-1, flip,
    nothing else), epochs and warm-up; the network is the row's, trained at the row's resolution.
    """
    spec = task.spec
    assert spec.pretrain is not None, f"{task.step} has no pre-training"
    batch = task.pretrain_batch
    return replace(
        task,
        spec=Spec(spec.network, pretrain_recipe(spec), spec.pretrain),
        key=f"{task.key}-{PHASE}",
        phase=PHASE,
        per_device_batch=batch["per_device"],
        accumulation=batch["accumulation"],
        lr=batch["lr"],
        resolution_schedule=(),
        eval_resolution=None,
        cost_spec=None,
        cost_settings=(),
    )


def pretrain_recipe(spec: Spec) -> Recipe:
    """The recipe the pre-training phase of `spec` trains with (its loop reads nothing else)."""
    pretrain = spec.pretrain
    assert pretrain is not None, "no pre-training"
    return Recipe(
        name=pretrain.name,
        epochs=pretrain.epochs,
        warmup_epochs=pretrain.warmup_epochs,
        batch_size=pretrain.batch_size,
        reference_batch_size=pretrain.reference_batch_size,
        opt="adamw",
        lr=pretrain.lr,
        opt_betas=pretrain.opt_betas,
        weight_decay=pretrain.weight_decay,
        no_decay_1d=True,
        sched="cosine",
        interpolation=pretrain.interpolation,
        crop_scale=pretrain.crop_scale,
        crop_pct=spec.recipe.crop_pct,
        layer_scale_init=spec.recipe.layer_scale_init,
        weight_init=spec.recipe.weight_init,
    )


class PretrainTrainer(Trainer):
    """The loop of `Trainer` on the masked autoencoder: masks in, masked-patch MSE out."""

    # The official pre-training decays GRN's gamma and beta (roadmap.train.optimisation).
    decay_grn = True
    evaluated_figures = ("val_loss",)  # the reconstruction loss: no classes to score

    def _build_model(self) -> None:
        pretrain = self.spec.pretrain
        memory_format = self.numerics.memory_format
        encoder = MaskedEncoder(build(self.spec).to(self.device, memory_format=memory_format))
        decoder = FcmaeDecoder(encoder.width, encoder.patch_size, pretrain.decoder_width)
        self.model: nn.Module = FcmaeModel(encoder, decoder.to(self.device, memory_format=memory_format))
        self.masks = MaskGenerator(pretrain.mask_ratio, encoder.patch_size)
        # Masks are drawn on the CPU from a generator reseeded every epoch (seed_epoch).
        self.mask_generator = torch.Generator()
        self.ema = None
        self.train_model = self.eval_model = self._compiled(self.model)
        self._wrap_for_data_parallel()

    def seed_epoch(self, seed: int) -> None:
        super().seed_epoch(seed)
        self.mask_generator.manual_seed(seed * 1_000 + self.distributed.rank)

    def _masked(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.masks(images.shape[0], images.shape[2], images.shape[3], generator, images.device)

    def batch_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        masked = self._masked(images, self.mask_generator)
        with self.autocast:
            return self.train_model(images, masked)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """The reconstruction loss on the validation images, with fixed masks; one host sync."""
        self.eval_model.eval()
        generator = torch.Generator().manual_seed(VALIDATION_MASK_SEED + self.distributed.rank)
        totals = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss x images, images
        for images, _ in self.val_loader:
            images = images.contiguous(memory_format=self.numerics.memory_format)
            with self.autocast:
                loss = self.eval_model(images, self._masked(images, generator)).float()
            totals += torch.stack([loss.double() * images.shape[0], totals.new_tensor(images.shape[0])])
        loss_sum, count = self.distributed.summed(totals).tolist()
        return {"val_loss": loss_sum / max(count, 1.0)}

    def result(self, status: str) -> dict[str, Any]:
        """Write the encoder (for fine-tuning), then result.json, which marks the phase finished."""
        history = self.history
        last = history[-1] if history else {}
        result = PhaseResult(
            status=status,
            phase=PHASE,
            step=self.task.step,
            seed=self.task.seed,
            key=self.task.key,
            epochs=self.epoch,
            train_loss=last.get("train_loss"),
            val_loss=last.get("val_loss"),
            mask_ratio=self.spec.pretrain.mask_ratio,
            resolution=self.task.resolution,
            train_images_per_s=float(np.median([r["images_per_s"] for r in history])) if history else None,
            wall_time_s=self.wall_time,
            device=describe_device(self.device),
            encoder=str(self.paths.encoder.relative_to(self.paths.run_dir)),
        ).to_json()
        if self.distributed.main:
            if status == "done":
                encoder = self.model.encoder
                write_atomic(
                    self.paths.encoder, lambda handle: torch.save(encoder_state_dict(encoder), handle), binary=True
                )
            write_json(self.paths.result, result)
            self.paths.progress.unlink(missing_ok=True)
        return result


class FineTuner(Trainer):
    """The row itself after its pre-training: the ordinary loop, started from the pre-trained encoder."""

    def load_starting_weights(self) -> None:
        encoder = torch.load(self.task.paths.phase(PHASE).encoder, map_location=self.device)
        load_pretrained(self.model, encoder)
