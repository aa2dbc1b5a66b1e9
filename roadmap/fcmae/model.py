"""FCMAE's pre-training model (papers.md 5.2).

`FcmaeModel` is what the training loop trains in the pre-training phase (roadmap.fcmae.trainer):
masked encoder + decoder, returning the masked-patch loss. Its optimizer and schedule are the
official pre-training's (AdamW (0.9, 0.95), weight decay 0.05 with GRN decayed, lr = 1.5e-4 x
batch / 256, cosine to 0 after a linear warm-up), built by roadmap.train.optimisation from the phase's
recipe like every other step's.
"""

from __future__ import annotations

import torch
from torch import nn

from roadmap.fcmae.decoder import FcmaeDecoder, reconstruction_loss
from roadmap.fcmae.masking import MaskedEncoder, MaskGenerator


class FcmaeModel(nn.Module):
    """Encoder and decoder as one module: `model(images, masked)` is the reconstruction loss."""

    def __init__(self, encoder: MaskedEncoder, decoder: FcmaeDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, images: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        predictions = self.decoder(self.encoder(images, masked), masked)
        return reconstruction_loss(predictions, images, masked, self.encoder.patch_size)


def pretrain_step(
    model: FcmaeModel, images: torch.Tensor, mask_generator: MaskGenerator, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One pre-training forward: draw masks, encode the visible patches, decode, masked MSE."""
    masked = mask_generator(images.shape[0], images.shape[2], images.shape[3], generator, images.device)
    return model(images, masked)
