"""Roadmap networks as timm models: the registry, features, classifier reset, checkpointing, parameter
groups, layer decay and pretrained loading, pinned on a few rows with hand-derived figures."""

import subprocess
import sys

import pytest
import timm
import torch
from timm.optim import create_optimizer_v2

import roadmap
from roadmap.network.build import RoadmapNet
from roadmap.network.families import MODELS
from roadmap.network.roadmaps import ROADMAPS
from roadmap.network.timm_registry import timm_name
from roadmap.train.optimisation import layer_decay_groups

SMALL = (2, 3, 64, 64)  # every network here downsamples 64 px to 2x2 at its last stage


def images(shape=SMALL, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


# `import steps` loads no torch, so when it comes first the rows are registered by the first import of
# roadmap.network (any network use: roadmap.specs, roadmap.build, ...), not by `import roadmap`.
@pytest.mark.parametrize("imports", ["roadmap, timm", "timm, roadmap", "steps, roadmap.network, timm"])
def test_registered_from_a_fresh_interpreter(imports):
    code = (
        f"import {imports}\n"
        "model = timm.create_model('roadmap_resnet50_ln', pretrained=False)\n"
        "print(type(model).__name__, len(timm.list_models('roadmap_*')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "RoadmapNet"
    # Every model family member and every row of the five roadmaps.
    rows = {timm_name(name, row) for name in ROADMAPS for row, _ in roadmap.specs(name)}
    assert int(out[1]) == len(MODELS) + len(rows) == len(timm.list_models("roadmap_*")) == 24 + 81


def test_every_row_has_its_name_on_every_roadmap():
    for name in ROADMAPS:
        for row, spec in roadmap.specs(name):
            model_name = timm_name(name, row)
            assert model_name == f"roadmap_{name}_{row}" and timm.is_model(model_name), model_name
            assert timm.models.get_pretrained_cfg(model_name).num_classes == spec.network.num_classes
    # A row two roadmaps share is the same network under both names.
    with torch.device("meta"):
        shared = timm.create_model("roadmap_convnext_v2_ln"), timm.create_model("roadmap_resnet50_ln")
    assert shared[0].spec == shared[1].spec


def test_timm_keyword_arguments():
    # timm's train.py passes drop_rate=0.0 always; a head dropout the spec cannot describe is refused.
    with torch.device("meta"):
        assert isinstance(timm.create_model("roadmap_resnet50_ln", drop_rate=0.0), RoadmapNet)
    with pytest.raises(ValueError, match="drop_rate must be 0"):
        timm.create_model("roadmap_resnet50_ln", drop_rate=0.1)
    # A classifier made at creation (global_pool) is initialised as the recipe says: ConvNeXt's
    # truncated normal with zero bias, not torch's default uniform.
    model = timm.create_model("roadmap_resnet50_ln", global_pool="max", num_classes=10)
    assert model.head.pool.pool_type == "max" and torch.count_nonzero(model.head.fc.bias) == 0
    assert model.head.fc.weight.std().item() == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize(
    "name, channels, reductions",
    [
        ("roadmap_resnet50_resnet50", [256, 512, 1024, 2048], [4, 8, 16, 32]),  # conv/2 + max-pool/2 stem
        ("roadmap_resnet50_ln", [96, 192, 384, 768], [4, 8, 16, 32]),  # 4x4/4 patchify stem
        ("roadmap_convnext_isotropic_small", [384], [16]),  # 16x16/16 stem, one stage
    ],
)
def test_features_only_gives_each_stage_at_its_stride(name, channels, reductions):
    torch.manual_seed(0)
    features = timm.create_model(name, features_only=True).eval()
    assert features.feature_info.channels() == channels
    assert features.feature_info.reduction() == reductions
    with torch.no_grad():
        maps = features(images())
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // r, 64 // r) for c, r in zip(channels, reductions)]
    torch.manual_seed(0)  # the same weights as the feature extractor's
    model = timm.create_model(name).eval()
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(images())
        assert all(torch.equal(a, b) for a, b in zip(intermediates, maps))
        assert torch.equal(final, model.forward_features(images()))


def test_forward_intermediates_and_pruning_on_resnet50():
    model = timm.create_model("roadmap_resnet50_resnet50").eval()
    with torch.no_grad():
        last_two = model.forward_intermediates(images(), indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last_two] == [1024, 2048]
        early = model.forward_intermediates(images(), indices=[0, 1], stop_early=True, intermediates_only=True)
        assert model.prune_intermediate_layers([0, 1]) == [0, 1]
        assert len(model.stages) == 2 and model.num_features == 512
        pruned = model.forward_intermediates(images(), intermediates_only=True)
        assert all(torch.equal(a, b) for a, b in zip(early, pruned))
        assert model(images()).shape == (2, 512, 8, 8)  # no head left: the last kept stage's map
    model.reset_classifier(10, "avg")  # a new head for the kept width
    with torch.no_grad():
        assert model(images()).shape == (2, 10)


@pytest.mark.parametrize(
    "name, features, hidden", [("roadmap_resnet50_ln", 768, 768), ("roadmap_inception_next_tiny", 768, 2304)]
)
def test_classifier_reset_and_pre_logits(name, features, hidden):
    model = timm.create_model(name, num_classes=7).eval()
    assert (model.num_features, model.head_hidden_size, model.num_classes) == (features, hidden, 7)
    assert model.get_classifier() is model.head.fc and model.get_classifier().out_features == 7
    with torch.no_grad():
        unpooled = model.forward_features(images())
        assert torch.equal(model.forward_head(unpooled), model(images()))
        assert model.forward_head(unpooled, pre_logits=True).shape == (2, hidden)
        model.reset_classifier(0)
        assert model(images()).shape == (2, hidden) and model.num_classes == 0
        model.reset_classifier(0, "")
        assert torch.equal(model(images()), unpooled)  # pooling off: the final map, 2x2 at 64 px
    with pytest.raises(ValueError, match="without pooling"):
        model.reset_classifier(10)
    model.reset_classifier(10, "avg")
    assert model(images()).shape == (2, 10)


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = timm.create_model("roadmap_resnet50_ln", drop_path_rate=0.2).train()
    assert model.spec.recipe.drop_path_rate == 0.2

    def gradients():
        model.zero_grad()
        torch.manual_seed(1)  # the same drop-path draws; checkpointing replays them in backward
        model(images()).logsumexp(1).mean().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = gradients()
    model.set_grad_checkpointing(True)
    assert all(stage.grad_checkpointing for stage in model.stages)
    checkpointed = gradients()
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7, msg=name)


def test_group_matcher_groups_and_timm_layer_decay():
    model = timm.create_model("roadmap_convnextv2_atto")  # depths (2, 2, 6, 2): 12 blocks
    coarse = timm.models.group_parameters(model, model.group_matcher(coarse=True), reverse=True)
    fine = timm.models.group_parameters(model, model.group_matcher(coarse=False), reverse=True)
    assert (coarse["stem.conv.weight"], coarse["stages.2.blocks.5.spatial.weight"]) == (0, 3)
    assert coarse["head.fc.weight"] == 5
    # stem 0, blocks 1..12 with each downsampling layer in its stage's first block, head 13
    assert fine["stages.1.downsample.conv.weight"] == fine["stages.1.blocks.0.spatial.weight"] == 3
    assert (fine["stages.3.blocks.1.pointwise2.weight"], fine["head.fc.weight"]) == (12, 13)

    # timm's own factory on the network: layer decay now acts (it put everything in one group before).
    timm_scale = {
        id(p): g["lr_scale"]
        for g in create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.8).param_groups
        for p in g["params"]
    }
    ours = {id(p): g["lr_scale"] for g in layer_decay_groups(model, (2, 2, 6, 2), 0.05, 0.8) for p in g["params"]}
    for name, parameter in model.named_parameters():
        # The official rule puts the stem with the first block, one layer above timm's numbering.
        factor = 0.8 if name.startswith("stem.") else 1.0
        assert timm_scale[id(parameter)] == pytest.approx(factor * ours[id(parameter)]), name
    assert ours[id(model.stem.conv.weight)] == pytest.approx(0.8**12)


def test_no_weight_decay_follows_the_recipe():
    legacy = timm.create_model("roadmap_resnet50_resnet50")  # torchvision's recipe decays everything
    assert legacy.no_weight_decay() == set()
    modern = timm.create_model("roadmap_resnet50_ln")
    exempt = modern.no_weight_decay()
    assert {"stem.conv.bias", "stem.norm.weight", "stages.0.blocks.0.layer_scale.gamma", "head.fc.bias"} <= exempt
    assert "head.fc.weight" not in exempt and "stages.0.blocks.0.spatial.weight" not in exempt
    optimizer = create_optimizer_v2(modern, "adamw", lr=1e-3, weight_decay=0.05)
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert {n for n, p in modern.named_parameters() if id(p) not in decayed} == exempt


def test_pretrained_file_loads_and_adapts(tmp_path):
    torch.manual_seed(0)
    trained = roadmap.build(roadmap.model("convnextv2_atto")).eval()
    path = tmp_path / "atto.pth"
    torch.save(trained.state_dict(), path)
    overlay = {"file": str(path)}
    loaded = timm.create_model("roadmap_convnextv2_atto", pretrained=True, pretrained_cfg_overlay=overlay).eval()
    with torch.no_grad():
        assert torch.equal(loaded(images()), trained(images()))
    # New classes: timm drops the classifier (named by pretrained_cfg) and keeps the rest.
    five = timm.create_model("roadmap_convnextv2_atto", pretrained=True, pretrained_cfg_overlay=overlay, num_classes=5)
    assert five.head.fc.out_features == 5
    assert torch.equal(five.stages[3].blocks[1].pointwise2.weight, trained.stages[3].blocks[1].pointwise2.weight)
    # One input channel: timm sums the first conv (pretrained_cfg's first_conv) over its RGB inputs.
    gray = timm.create_model("roadmap_convnextv2_atto", pretrained=True, pretrained_cfg_overlay=overlay, in_chans=1)
    assert isinstance(gray, RoadmapNet) and gray.spec.network.in_channels == 1
    torch.testing.assert_close(gray.stem.conv.weight, trained.stem.conv.weight.sum(1, keepdim=True))


def test_spec_argument_builds_a_proxy_network():
    spec = roadmap.model("convnextv2_atto").with_network(depths=(1, 1, 1, 1), num_classes=10)
    model = timm.create_model("roadmap_convnextv2_atto", spec=spec.to_dict())
    assert model.spec == spec and len(model.stages[2].blocks) == 1 and model.num_classes == 10
    assert model.pretrained_cfg["num_classes"] == 10 and model.pretrained_cfg["pool_size"] == (7, 7)
