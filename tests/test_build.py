"""Every network builds and trains; end points equal timm's reference models."""

import pytest
import timm
import torch
from timm_weights import load_timm_weights

import roadmap


def all_rows():
    for name in ("resnet50", "resnet200"):
        for step, spec in roadmap.specs(name):
            yield pytest.param(spec, id=f"{name}-{step}")


@pytest.mark.parametrize("spec", list(all_rows()))
def test_forward_backward_at_64(spec):
    torch.manual_seed(0)
    model = roadmap.build(spec.with_network(num_classes=10)).train()
    images = torch.randn(2, 3, 64, 64)
    logits = model(images)
    assert logits.shape == (2, 10)
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize(
    "roadmap_name, index, timm_name, family, params",
    [
        ("resnet50", 0, "resnet50", "resnet", 25_557_032),
        ("resnet50", -1, "convnext_tiny", "convnext", 28_589_128),
        ("resnet200", 0, "resnet200", "resnet", None),
        ("resnet200", -1, "convnext_base", "convnext", None),
    ],
)
def test_end_points_equal_timm(roadmap_name, index, timm_name, family, params):
    spec = roadmap.specs(roadmap_name)[index][1]
    ours = roadmap.build(spec).eval()
    reference = timm.create_model(timm_name, pretrained=False).eval()
    ours_count = sum(p.numel() for p in ours.parameters())
    assert ours_count == sum(p.numel() for p in reference.parameters())
    if params is not None:
        assert ours_count == params
    load_timm_weights(ours, reference, family)
    torch.manual_seed(0)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        difference = (ours(images) - reference(images)).abs().max().item()
    assert difference <= 1e-5


def test_initialisation_follows_recipe():
    legacy, modern = roadmap.specs("resnet50", upto="recipe")
    torch.manual_seed(0)
    legacy_conv = roadmap.build(legacy[1]).stem.conv.weight
    modern_conv = roadmap.build(modern[1]).stem.conv.weight
    # kaiming fan_out for 7x7x64: std = sqrt(2 / (64*49)) = 0.0253; trunc-normal std 0.02 clipped at +-2.
    assert legacy_conv.std().item() == pytest.approx((2 / (64 * 49)) ** 0.5, rel=0.05)
    assert modern_conv.abs().max().item() <= 2.0 + 1e-6
    assert modern_conv.std().item() == pytest.approx(0.02, rel=0.05)
