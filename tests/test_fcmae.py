"""FCMAE core (ConvNeXt V2, papers.md 5.2): masks, the masked encoder, the decoder and its loss."""

from dataclasses import replace

import pytest
import torch
from torch import nn

import roadmap
from roadmap.fcmae.decoder import build_decoder, normalised_patches, patchify, reconstruction_loss
from roadmap.fcmae.masking import MaskedEncoder, MaskGenerator, encoder_state_dict, load_pretrained, visible_map
from roadmap.fcmae.model import FcmaeModel, pretrain_step
from roadmap.fcmae.trainer import pretrain_recipe
from roadmap.network.build import RoadmapNet
from roadmap.spec import Pretrain, Recipe, Spec
from roadmap.train.optimisation import create_lr_scheduler, create_optimizer
from roadmap.train.presets import get_preset, proxy_network
from steps.fcmae import FcmaeError

# The test-sized proxies of the presets (widths / 8, depths / 3), as the `tiny` training preset builds them.
PROXIES = ("convnext_tiny", "convnextv2_tiny", "convnext_isotropic_small")


def proxy_spec(name: str) -> Spec:
    spec = roadmap.model(name)
    network = proxy_network(spec.network, get_preset("tiny"), num_classes=8)
    # LayerScale 1 (not 1e-6) so the blocks' branches, not just the shortcuts, reach the output.
    return Spec(network, spec.recipe).with_recipe(drop_path_rate=0.0, layer_scale_init=1.0)


def proxy_encoder(name: str, seed: int = 0) -> MaskedEncoder:
    torch.manual_seed(seed)
    network = roadmap.build(proxy_spec(name))
    # Biases, norm shifts and GRN's gamma/beta start at zero, which keeps masked positions at zero
    # by luck; random values make every leak (conv bias, LayerNorm shift, GRN statistics) visible.
    with torch.no_grad():
        for parameter in network.parameters():
            if parameter.ndim == 1:
                parameter.add_(torch.randn_like(parameter) * 0.5)
    return MaskedEncoder(network).eval()


def masks(encoder: MaskedEncoder, batch: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return MaskGenerator(patch_size=encoder.patch_size)(batch, size, size, generator)


def reference_features(network: RoadmapNet, images: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """The sparse network written out: zero masked input, mask around every spatial conv, GRN on visible."""

    def mask(x: torch.Tensor) -> torch.Tensor:
        return x * visible_map(masked, x.shape[2], x.shape[3], x.dtype)

    x = mask(network.stem.conv(mask(images)))
    x = network.stem.norm(x) if hasattr(network.stem, "norm") else x
    for stage in network.stages:
        if isinstance(stage.downsample, nn.Sequential):
            x = mask(stage.downsample.conv(mask(stage.downsample.norm(x))))
        for block in stage.blocks:
            y = mask(block.spatial(mask(x))).permute(0, 2, 3, 1)
            y = block.pointwise1_act(block.pointwise1(block.spatial_norm(y)))
            if block.grn.__class__.__name__ == "GlobalResponseNorm":
                visible = visible_map(masked, y.shape[1], y.shape[2], y.dtype).permute(0, 2, 3, 1)
                energy = (y * visible).norm(p=2, dim=(1, 2), keepdim=True)
                y = y + block.grn.bias + block.grn.weight * y * (energy / (energy.mean(-1, keepdim=True) + 1e-6))
            y = block.pointwise2(y).permute(0, 3, 1, 2)
            x = x + block.layer_scale(y)
    return mask(x)


@pytest.mark.parametrize("name", PROXIES)
def test_masked_encoder_equals_the_sparse_reference(name):
    encoder = proxy_encoder(name)
    images = torch.randn(3, 3, 64, 64)
    masked = masks(encoder, 3, 64)
    with torch.no_grad():
        features = encoder(images, masked)
        expected = reference_features(encoder.network, images, masked)
        # Control: the plain network on zeroed input differs, so the reference tests something.
        naive = encoder.network.forward_features(images * visible_map(masked, 64, 64, images.dtype))
        naive = naive * visible_map(masked, features.shape[2], features.shape[3], naive.dtype)
    assert features.shape == (3, encoder.width, *masked.shape[1:])
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)
    assert (features.abs().sum(1) > 0).equal(~masked)
    assert (naive - expected).abs().max() > 1e-3


def test_masked_encoder_at_224_matches_the_reference():
    encoder = proxy_encoder("convnextv2_tiny")
    images = torch.randn(1, 3, 224, 224)
    masked = masks(encoder, 1, 224)
    with torch.no_grad():
        features = encoder(images, masked)
        expected = reference_features(encoder.network, images, masked)
    assert features.shape[2:] == (7, 7)
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", PROXIES[:2])
def test_masked_positions_never_reach_visible_outputs(name):
    encoder = proxy_encoder(name)
    images = torch.randn(2, 3, 96, 96, requires_grad=True)
    masked = masks(encoder, 2, 96)
    stage_outputs = []
    # Also through the network's inside: the first stage's output carries values at masked positions.
    handle = encoder.network.stages[0].register_forward_hook(
        lambda module, args, output: stage_outputs.append(output) or output.retain_grad()
    )
    features = encoder(images, masked)
    handle.remove()
    (features * torch.randn_like(features)).sum().backward()
    pixels_visible = visible_map(masked, 96, 96, images.dtype).expand_as(images)
    assert images.grad[pixels_visible == 0].abs().max() == 0
    assert images.grad[pixels_visible == 1].abs().max() > 0
    stage_grad = stage_outputs[0].grad
    stage_visible = visible_map(masked, *stage_grad.shape[2:], stage_grad.dtype).expand_as(stage_grad)
    assert stage_grad[stage_visible == 0].abs().max() == 0


@pytest.mark.parametrize(
    "size, grid, masked_per_sample", [(224, (7, 7), 30), (64, (2, 2), 3), (96, (3, 3), 6), (128, (4, 4), 10)]
)
def test_mask_geometry(size, grid, masked_per_sample):
    generator = torch.Generator().manual_seed(1)
    masked = MaskGenerator(0.6)(16, size, size, generator)
    assert masked.dtype == torch.bool and masked.shape == (16, *grid)
    assert masked.flatten(1).sum(1).eq(masked_per_sample).all()
    assert (~masked).flatten(1).any(1).all()  # at least one visible patch per sample
    # Per-sample masks, and the same seed gives the same masks.
    assert len({tuple(row.tolist()) for row in masked.flatten(1)}) > 1 or grid == (2, 2)
    assert masked.equal(MaskGenerator(0.6)(16, size, size, torch.Generator().manual_seed(1)))
    # Upsampled to every stage resolution, each 32 px patch is constant and agrees with the grid.
    for stride in (1, 4, 8, 16, 32):
        visible = visible_map(masked, size // stride, size // stride, torch.float32)
        patch = 32 // stride
        blocks = visible.reshape(16, grid[0], patch, grid[1], patch)
        assert blocks.amin(dim=(2, 4)).equal(blocks.amax(dim=(2, 4)))
        assert blocks.amax(dim=(2, 4)).bool().equal(~masked)


def test_mask_ratio_over_many_draws_at_224():
    masked = MaskGenerator(0.6)(256, 224, 224, torch.Generator().manual_seed(0))
    assert masked.float().mean().item() == pytest.approx(30 / 49)
    # Every patch position is masked about equally often (uniform random masking).
    assert masked.float().mean(0).sub(30 / 49).abs().max() < 0.15


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MaskGenerator(0.0), "mask ratio must be in (0, 1), got 0.0"),
        (lambda: MaskGenerator(1.2), "mask ratio must be in (0, 1), got 1.2"),
        (lambda: MaskGenerator(1.0), "mask ratio must be in (0, 1)"),
        (lambda: MaskGenerator()(2, 32, 32), "has 1 patch of 32 px; masking needs at least 2"),
        (lambda: MaskGenerator()(2, 100, 100), "not a multiple of the 32 px patch"),
        (
            lambda: MaskedEncoder(
                roadmap.build(Spec(proxy_network(roadmap.model("resnet50").network, get_preset("tiny"), 8)))
            ),
            "fcmae: needs a ConvNeXt-style network",
        ),
        (lambda: MaskedEncoder(roadmap.build(proxy_spec("inception_next_atto"))), "batchnorm"),
    ],
)
def test_bad_input_gives_one_line_errors(make, message):
    with pytest.raises(FcmaeError) as error:
        make()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_encoder_weights_load_exactly_into_the_plain_network():
    encoder = proxy_encoder("convnextv2_tiny", seed=1)
    images = torch.randn(2, 3, 64, 64)
    # One optimiser step so the weights differ from any fresh initialisation.
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1)
    encoder.train()
    encoder(images, masks(encoder, 2, 64)).square().mean().backward()
    optimizer.step()
    state = encoder_state_dict(encoder)
    torch.manual_seed(7)
    plain = roadmap.build(proxy_spec("convnextv2_tiny")).eval()
    load_pretrained(plain, state)
    for name, value in plain.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, state[name]), name
    released = encoder.eval().release()
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in released.modules())
    with torch.no_grad():
        assert torch.equal(plain.forward_features(images), released.forward_features(images))
    with pytest.raises(FcmaeError, match="does not match"):
        load_pretrained(roadmap.build(proxy_spec("convnext_tiny")), {"stem.conv.weight": torch.zeros(1)})


def test_unmasked_encoder_is_the_plain_network():
    encoder = proxy_encoder("convnext_tiny")
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(encoder(images), encoder.network.forward_features(images))


def test_decoder_shapes_and_loss_on_masked_patches_only():
    encoder = proxy_encoder("convnextv2_tiny")
    decoder = build_decoder(encoder, width=64)
    images = torch.randn(2, 3, 64, 64)
    masked = masks(encoder, 2, 64)
    predictions = decoder(encoder(images, masked), masked)
    assert predictions.shape == (2, 4, 32 * 32 * 3)
    loss = reconstruction_loss(predictions, images, masked, 32)
    changed = predictions.detach().clone()
    changed[~masked.flatten(1)] = 1e3  # wild predictions at visible patches only
    assert reconstruction_loss(changed, images, masked, 32).item() == pytest.approx(loss.item(), rel=1e-6)
    changed[masked.flatten(1)] += 1.0
    assert reconstruction_loss(changed, images, masked, 32).item() != pytest.approx(loss.item(), rel=1e-3)
    loss.backward()
    assert decoder.mask_token.grad.abs().sum() > 0
    assert encoder.network.stem.conv.weight.grad.abs().sum() > 0


def test_default_decoder_is_one_v2_block_of_width_512():
    decoder = build_decoder(proxy_encoder("convnext_tiny"))
    assert decoder.project.out_channels == 512 and decoder.predict.out_channels == 32 * 32 * 3
    assert decoder.block.grn.__class__.__name__ == "GlobalResponseNorm"
    assert decoder.block.pointwise1.out_features == 2048


def test_targets_are_normalised_per_patch():
    images = torch.rand(2, 3, 64, 64) * 5 + 3
    target = normalised_patches(images, 32)
    assert target.shape == (2, 4, 3072)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(target.std(-1), torch.ones(2, 4), atol=1e-3, rtol=0)
    # Patch (row 0, column 1) holds pixels [:, 0:32, 32:64] as (row, column, channel).
    assert torch.equal(patchify(images, 32)[0, 1].reshape(32, 32, 3), images[0, :, :32, 32:].permute(1, 2, 0))


def test_pretrain_step_optimizer_and_schedule():
    """The phase's recipe through the trainer's factories: AdamW (0.9, 0.95), GRN decayed (the official
    sparse encoder's (1, C) tensors), cosine to 0 after a warm-up that ends at the peak."""
    encoder = proxy_encoder("convnextv2_tiny")
    decoder = build_decoder(encoder, width=64)
    model = FcmaeModel(encoder, decoder)
    phase = pretrain_recipe(Spec(encoder.network.spec.network, Recipe(), Pretrain()))
    recipe = replace(phase, epochs=10, warmup_epochs=2)
    optimizer = create_optimizer(model, recipe, lr=Pretrain().lr, decay_grn=True)  # the 4096-image batch of the paper
    assert optimizer.defaults["lr"] == pytest.approx(1.5e-4 * 16)
    assert optimizer.defaults["betas"] == (0.9, 0.95)
    assert {group["weight_decay"] for group in optimizer.param_groups} == {0.0, 0.05}
    grn_gamma = encoder.network.stages[0].blocks[0].grn.weight
    assert any(grn_gamma is p for g in optimizer.param_groups if g["weight_decay"] == 0.05 for p in g["params"])
    scheduler = create_lr_scheduler(optimizer, recipe, updates_per_epoch=5)
    scheduler.step_update(0)
    assert optimizer.param_groups[0]["lr"] == 0.0
    scheduler.step_update(10)  # end of warm-up: the peak lr
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.5e-4 * 16)
    scheduler.step_update(30)  # half-way through the cosine after the warm-up
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.5e-4 * 16 / 2)
    encoder.train()
    loss = pretrain_step(model, torch.randn(2, 3, 64, 64), MaskGenerator(), torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
