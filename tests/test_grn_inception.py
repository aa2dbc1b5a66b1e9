"""The ConvNeXt V2 (GRN) and InceptionNeXt steps, their roadmaps, and InceptionNeXt's Table 1 rows."""

import pytest
import torch
from timm.layers.grn import GlobalResponseNorm

import roadmap
from roadmap import SpecError, compose
from roadmap.network.blocks import BatchPooledGRN, InceptionMixer, PartialConv, grn_layer
from roadmap.train.optimisation import create_optimizer
from steps import REGISTRY

NEW_ROWS = ("grn", "inception", "k5", "k3", "k3_par1_2", "k3_par3_8", "k3_par1_4", "k3_par1_8", "k3_par1_16")
TABLE1 = NEW_ROWS[2:]


def rows():
    return {**dict(roadmap.specs("convnext_v2")), **dict(roadmap.specs("inceptionnext"))}


def test_roadmaps_extend_the_resnet50_path():
    resnet50 = [step for step, _ in roadmap.specs("resnet50")]
    assert [step for step, _ in roadmap.specs("convnext-v2")] == resnet50 + ["grn"]
    assert [step for step, _ in roadmap.specs("inceptionnext")] == resnet50 + list(NEW_ROWS[1:])
    main_path = [step for step, _ in roadmap.specs("resnet50", branches=False)]
    assert [step for step, _ in roadmap.specs("inceptionnext", branches=False)] == main_path + ["inception"]
    convnext_t = roadmap.specs("resnet50")[-1][1]
    # Table 1 rows are ConvNeXt-T variants: they branch from inception's parent, ConvNeXt-T.
    for name in TABLE1:
        assert REGISTRY[name].branch_of == "inception"
        assert rows()[name].network.mixer == "conv" and rows()[name].network.norm == "layernorm"
    assert rows()["k5"] == convnext_t.with_network(kernel_size=5)
    assert rows()["k3_par1_4"] == convnext_t.with_network(kernel_size=3, conv_ratio=0.25)


@pytest.mark.parametrize("name", NEW_ROWS)
def test_forward_backward_at_64(name):
    torch.manual_seed(0)
    model = roadmap.build(rows()[name].with_network(num_classes=10)).train()
    logits = model(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 10)
    logits.logsumexp(1).mean().backward()
    grads = [parameter.grad for parameter in model.parameters()]
    assert all(grad is not None and torch.isfinite(grad).all() for grad in grads)


def test_grn_block_and_weight_decay():
    spec = rows()["grn"]
    assert spec.network.grn and not spec.network.layer_scale
    model = roadmap.build(spec)
    block = model.stages[0].blocks[0]
    assert isinstance(block.grn, GlobalResponseNorm) and block.grn.weight.shape == (384,)
    assert isinstance(block.layer_scale, torch.nn.Identity)
    # Supervised training exempts GRN's gamma/beta (1-D) from weight decay, as V2's fine-tuning does.
    optimizer = create_optimizer(model, spec.recipe, 1e-3, spec.network.depths)
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    grn_parameters = [p for name, p in model.named_parameters() if ".grn." in name]
    assert len(grn_parameters) == 2 * 18
    assert all(decay_of[id(p)] == 0.0 for p in grn_parameters)
    assert decay_of[id(block.pointwise1.weight)] == 0.05


def test_grn_pools_per_sample_by_default_and_over_the_batch_as_an_option():
    """`sample`: timm's GRN (the paper's equation). `batch`: the norm over every position of the batch,
    as the official sparse FCMAE encoder computes it; the two agree for a batch of one."""
    spec = rows()["grn"]
    assert spec.network.grn_pooling == "sample"
    per_sample = grn_layer(spec.network, 384, channels_last=False)
    pooled = grn_layer(spec.with_network(grn_pooling="batch").network, 384, channels_last=False)
    assert isinstance(roadmap.build(spec.with_network(grn_pooling="batch")).stages[0].blocks[0].grn, BatchPooledGRN)
    assert type(per_sample) is GlobalResponseNorm and isinstance(pooled, BatchPooledGRN)
    with torch.no_grad():
        for grn in (per_sample, pooled):
            grn.weight.fill_(0.5)
            grn.bias.fill_(0.1)
    x = torch.randn(2, 384, 5, 5)
    # By hand: G = L2 norm over (batch, H, W) per channel, N = G / (mean over channels + 1e-6).
    norm = x.pow(2).sum(dim=(0, 2, 3), keepdim=True).sqrt()
    expected = x + 0.5 * (x * norm / (norm.mean(dim=1, keepdim=True) + 1e-6)) + 0.1
    torch.testing.assert_close(pooled(x), expected)
    torch.testing.assert_close(pooled(x[:1]), per_sample(x[:1]))
    assert not torch.allclose(pooled(x)[:1], per_sample(x)[:1])
    with pytest.raises(SpecError, match="grn_pooling"):
        spec.with_network(grn_pooling="channel")


def test_inception_block():
    spec = rows()["inception"]
    network = spec.network
    assert network.expansions == (4.0, 4.0, 4.0, 3.0) and network.head == "mlp" and network.norm == "batchnorm"
    model = roadmap.build(spec)
    mixer = model.stages[3].blocks[0].spatial
    assert isinstance(mixer, InceptionMixer) and mixer.split == (480, 96, 96, 96)
    assert mixer.band_width.kernel_size == (1, 11) and mixer.band_height.kernel_size == (11, 1)
    assert model.stages[3].blocks[0].pointwise1.out_channels == 3 * 768
    assert isinstance(model.stages[1].downsample.norm, torch.nn.BatchNorm2d)
    partial = roadmap.build(rows()["k3_par1_8"]).stages[0].blocks[0].spatial
    assert isinstance(partial, PartialConv) and partial.split == (84, 12)


# papers.md 6.2 (InceptionNeXt Table 1): params (M) and MACs (G) as printed, and the [computed] MACs.
TABLE1_PAPER = {
    "k5": ("28.4", "4.4", 4.404),
    "k3": ("28.3", "4.4", 4.370),
    "k3_par1_2": ("28.3", "4.4", 4.360),
    "k3_par3_8": ("28.3", "4.4", None),
    "k3_par1_4": ("28.3", "4.4", None),
    "k3_par1_8": ("28.3", "4.4", None),
    "k3_par1_16": ("28.3", "4.4", 4.352),
}


def test_complexity_matches_the_papers():
    table = rows()
    for name, (params, macs, computed) in TABLE1_PAPER.items():
        counts = roadmap.complexity(table[name])
        assert f"{counts.params / 1e6:.1f}" == params and f"{counts.gflops:.1f}" == macs, name
        if computed is not None:
            assert counts.gflops == pytest.approx(computed, abs=5e-4), name
    # ConvNeXt-T row of Table 1: 28.6M, 4.5G; InceptionNeXt-T: 28.1M, 4.2G (Table 3).
    inception = roadmap.complexity(table["inception"])
    assert f"{inception.params / 1e6:.1f}" == "28.1" and f"{inception.gflops:.1f}" == "4.2"
    # ConvNeXt V2-T: 28.6M; 4.47 GFLOPs = fvcore's total (LN counted), 4.456 conv + linear.
    v2 = roadmap.complexity(table["grn"])
    assert f"{v2.params / 1e6:.1f}" == "28.6" and f"{v2.gflops_fvcore_total:.2f}" == "4.47"
    assert v2.gflops == pytest.approx(4.456, abs=5e-4)


def test_steps_refuse_what_cannot_mean_anything():
    start = roadmap.specs("resnet50")[0][1]
    with pytest.raises(SpecError, match="grn: needs an inverted bottleneck"):
        compose(["grn"], start=start)
    with pytest.raises(SpecError, match="inception: needs a depthwise, spatial-first block"):
        compose(["inception"], start=start)
    before_sep_ds = dict(roadmap.specs("resnet50"))["ln"]
    with pytest.raises(SpecError, match="inception: needs separate downsampling"):
        compose(["inception"], start=before_sep_ds)
    with pytest.raises(SpecError, match="k3_par1_2: partial_conv: a partial conv cannot stride"):
        compose(["k3_par1_2"], start=before_sep_ds)
    with pytest.raises(SpecError, match="k3: partial_conv: needs the depthwise conv"):
        compose(["k3"], start=rows()["inception"])
    with pytest.raises(SpecError, match="inception: three branches"):
        compose([roadmap.Entry("inception", {"branch_ratio": 0.5})], start=roadmap.specs("resnet50")[-1][1])


def test_new_steps_are_pure_and_idempotent():
    convnext_t = roadmap.specs("resnet50")[-1][1]
    before = convnext_t.to_json()
    for name in NEW_ROWS:
        once = REGISTRY[name].apply(convnext_t)
        assert REGISTRY[name].apply(once) == once, name
        assert once != convnext_t, name
    assert convnext_t.to_json() == before
