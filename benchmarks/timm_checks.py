"""The fifteen checks of benchmarks/timm_interface.py: each a function of one network giving pass or fail
and why, following timm 1.0's tests/test_models.py and what timm's training code relies on. Inputs are
timm's test sizes. benchmarks/ is no package: the runner imports this module by its bare name.
"""

from __future__ import annotations

import copy
import math
import re
import warnings
from typing import Any, Callable, NamedTuple

import timm
import torch
from timm.layers import get_notrace_functions, get_notrace_modules
from timm.models import FeatureInfo, MetaNeXt, group_parameters
from timm.optim import create_optimizer_v2
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from roadmap.spec import Spec

FORWARD_SIZE = 224  # timm's forward and default_cfgs tests keep a 224 default (they cap at 384 / 448)
SHRUNK_SIZE = 128  # timm's backward, torchscript and fx tests shrink the input to 128
FEATURE_SIZE = 96  # timm's features_only and forward_intermediates tests shrink it to 96
# Stage and block modules of roadmap networks, timm's ConvNeXt and InceptionNeXt (stages.i[.blocks.j])
# and timm's ResNet (layeri[.j]): the units that group_matcher's coarse and fine groups must follow.
STAGE = re.compile(r"^(stages\.\d+|layer\d+)$")
BLOCK = re.compile(r"^(stages\.\d+\.blocks\.\d+|layer\d+\.\d+)$")
# Heads that pool before further layers (timm's InceptionNeXt): timm's test skips their unpooled output.
EARLY_POOL = (MetaNeXt,)
LAYER_DECAY = 0.8
Result = tuple[bool, str]


class Subject(NamedTuple):
    """A network created once through its timm name, in eval mode (checks that change it use a copy), and
    the roadmap row's spec that the name must build (None for others)."""

    name: str
    model: Any
    spec: Spec | None = None


def images(model: nn.Module, size: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, model.pretrained_cfg["input_size"][0], size, size)


def close(a: torch.Tensor, b: torch.Tensor, tolerance: float = 1e-4) -> bool:
    """Equal up to float noise, relative to b's scale (random networks give logits in the hundreds)."""
    return a.shape == b.shape and bool((a - b).abs().max() <= tolerance * max(1.0, float(b.abs().max())))


def check_forward(s: Subject) -> Result:
    """timm's test_model_forward: an eval forward at 224, batch 1, gives finite (1, num_classes) logits."""
    with torch.no_grad():
        out = s.model(images(s.model, FORWARD_SIZE))
    if out.shape != (1, s.model.num_classes) or not torch.isfinite(out).all():
        return False, f"output {tuple(out.shape)}, finite: {bool(torch.isfinite(out).all())}"
    return True, f"logits {tuple(out.shape)}"


def check_backward(s: Subject) -> Result:
    """timm's test_model_backward: created with num_classes=42, a train-mode backward at 128, batch 2,
    reaches every parameter."""
    model = timm.create_model(s.name, num_classes=42).train()
    out = model(images(model, SHRUNK_SIZE, batch=2))
    out.mean().backward()
    missing = [name for name, parameter in model.named_parameters() if parameter.grad is None]
    if out.shape != (2, 42) or missing or not torch.isfinite(out).all():
        return False, f"output {tuple(out.shape)}, no gradient for {missing[:3]}"
    return True, f"gradients for all {len(list(model.parameters()))} tensors"


def check_default_cfgs(s: Subject) -> Result:
    """timm's test_model_default_cfgs: forward_features is unpooled at the cfg's pool_size;
    reset_classifier(0) and create_model(num_classes=0) (timm's non-std variant, its pretrained loads)
    leave pooled (B, head_hidden_size); reset_classifier(0, '') and create_model(num_classes=0,
    global_pool='') leave the unpooled map; first_conv and classifier name weights of the state dict."""
    model, cfg, x = copy.deepcopy(s.model), s.model.pretrained_cfg, images(s.model, FORWARD_SIZE)
    state, pool, hidden = model.state_dict(), tuple(cfg["pool_size"]), model.head_hidden_size
    for role in ("first_conv", "classifier"):
        if f"{cfg[role]}.weight" not in state:
            return False, f"{role} {cfg[role]!r} names no weight"
    with torch.no_grad():
        features = model.forward_features(x)
        if tuple(features.shape[-2:]) != pool or features.shape[1] != model.num_features:
            return False, f"forward_features {tuple(features.shape)}, pool_size {pool}"
        model.reset_classifier(0)
        headless = timm.create_model(s.name, num_classes=0).eval()
        for how, net in (("reset_classifier(0)", model), ("create_model(num_classes=0)", headless)):
            out = net(x)
            if net.num_classes != 0 or out.shape != (1, hidden):
                return False, f"after {how}: output {tuple(out.shape)}, head_hidden_size {hidden}"
        if isinstance(model, EARLY_POOL):
            return True, f"pool_size {pool}, head_hidden_size {hidden} (unpooled output skipped, as by timm)"
        model.reset_classifier(0, "")
        bare = timm.create_model(s.name, num_classes=0, global_pool="").eval()
        for how, out in (("reset_classifier(0, '')", model(x)), ("num_classes=0, global_pool=''", bare(x))):
            if out.ndim != 4 or tuple(out.shape[-2:]) != pool:
                return False, f"after {how}: {tuple(out.shape)}, pool_size {pool}"
    return True, f"pool_size {pool}, head_hidden_size {hidden}"


def check_pre_logits(s: Subject) -> Result:
    """forward_head(pre_logits=True) gives (B, head_hidden_size): what the head gives with its classifier
    reset to 0 classes, and what get_classifier() maps to the logits (the heads share one forward at 224)."""
    model, x = s.model, images(s.model, FORWARD_SIZE)
    headless = copy.deepcopy(s.model)
    headless.reset_classifier(0)
    with torch.no_grad():
        features = model.forward_features(x)
        pre, logits = model.forward_head(features, pre_logits=True), model.forward_head(features)
        if pre.shape != (1, model.head_hidden_size):
            return False, f"pre-logits {tuple(pre.shape)}, head_hidden_size {model.head_hidden_size}"
        if not close(headless.forward_head(features), pre):
            return False, "the head with its classifier reset to 0 classes gives other than pre-logits"
        if not close(model.get_classifier()(pre), logits):
            return False, "get_classifier()(pre-logits) differs from the head's logits"
    return True, f"pre-logits {tuple(pre.shape)}"


def check_intermediates(s: Subject) -> Result:
    """timm's test_model_forward_intermediates at 96: a map per feature_info entry, of its channels and at
    most ceil(96 / reduction) + 1 a side; the final map is forward_features'; intermediates_only, an int
    `indices` (the last n) and stop_early give the same maps."""
    model, x = s.model, images(s.model, FEATURE_SIZE)
    info = FeatureInfo(model.feature_info, len(model.feature_info))
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        if len(maps) != len(info.channels()):
            return False, f"{len(maps)} maps for {len(info.channels())} feature_info entries"
        for index, (channels, reduction, out) in enumerate(zip(info.channels(), info.reduction(), maps)):
            side = math.ceil(FEATURE_SIZE / reduction) + 1
            if out.shape[1] != channels or max(out.shape[-2:]) > side or not torch.isfinite(out).all():
                return False, f"map {index} {tuple(out.shape)}: {channels} channels, reduction {reduction}"
        if not close(final, model.forward_features(x)):
            return False, "final map differs from forward_features"
        got = model.forward_intermediates(x, intermediates_only=True)
        got += model.forward_intermediates(x, indices=2, intermediates_only=True)
        got += model.forward_intermediates(x, indices=[1], stop_early=True, intermediates_only=True)
    wanted = maps + maps[-2:] + maps[1:2]
    if len(got) != len(wanted) or not all(close(a, b) for a, b in zip(got, wanted)):
        return False, "intermediates_only / indices / stop_early give other maps"
    return True, f"{len(maps)} maps, channels {info.channels()}, reductions {info.reduction()}"


def check_prune(s: Subject) -> Result:
    """prune_intermediate_layers([k]), k the second-to-last map: that map is unchanged, parameters go, and
    forward() gives the map (timm 1.0 resets the head with the stages), pooled by early-pooling heads."""
    model, x = copy.deepcopy(s.model), images(s.model, FEATURE_SIZE)
    keep = len(model.feature_info) - 2
    before = sum(parameter.numel() for parameter in model.parameters())
    with torch.no_grad():
        expected = s.model.forward_intermediates(x, indices=[keep], intermediates_only=True)[0]
        taken = model.prune_intermediate_layers(indices=[keep])
        kept = model.forward_intermediates(x, indices=[keep], intermediates_only=True)[0]
        out = model(x)
    after = sum(parameter.numel() for parameter in model.parameters())
    if list(taken) != [keep] or after >= before:
        return False, f"returned {taken}, parameters {before} -> {after}"
    wanted = expected.mean((2, 3)) if isinstance(model, EARLY_POOL) else expected
    if not close(kept, expected) or not close(out, wanted):
        return False, f"map {keep} {tuple(kept.shape)} or forward {tuple(out.shape)} differs after pruning"
    return True, f"kept map {keep} {tuple(kept.shape)}, parameters {before / 1e6:.1f}M -> {after / 1e6:.1f}M"


def feature_problem(features: nn.Module) -> str:
    """What is wrong with a features_only model's maps at 96 ('' if nothing)."""
    with torch.no_grad():
        outs = features(torch.randn(1, 3, FEATURE_SIZE, FEATURE_SIZE))
    channels, reductions = features.feature_info.channels(), features.feature_info.reduction()
    for channel, reduction, out in zip(channels, reductions, outs):
        if out.shape[1] != channel or max(out.shape[-2:]) > math.ceil(FEATURE_SIZE / reduction) + 1:
            return f"map {tuple(out.shape)} for {channel} channels, reduction {reduction}"
    return "" if len(outs) == len(channels) else f"{len(outs)} maps for {len(channels)} channels"


def check_features_only(s: Subject) -> Result:
    """timm's test_model_forward_features: features_only gives >= 3 maps with feature_info's channels
    (the network's own) and reductions; out_indices picks maps, also through the 'getter' extractor."""
    own = [entry["num_chs"] for entry in s.model.feature_info]
    listed = timm.create_model(s.name, features_only=True).eval()
    chosen = (1, len(own) - 1)
    getter = timm.create_model(s.name, features_only=True, out_indices=chosen, feature_cls="getter").eval()
    for label, features in (("features_only", listed), ("getter, out_indices", getter)):
        if problem := feature_problem(features):
            return False, f"{label}: {problem}"
    if listed.feature_info.channels() != own or len(own) < 3:
        return False, f"features_only channels {listed.feature_info.channels()}, network's {own}"
    if getter.feature_info.channels() != [own[index] for index in chosen]:
        return False, f"out_indices {chosen} gave channels {getter.feature_info.channels()}"
    return True, f"channels {own}, reductions {listed.feature_info.reduction()}"


def check_torchscript(s: Subject) -> Result:
    """timm's test_model_forward_torchscript: created under set_scriptable, scripted, forward at 128,
    and (beyond timm's test) equal to the eager output."""
    with timm.set_scriptable(True):
        model = timm.create_model(s.name).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notice that TorchScript is deprecated
        scripted = torch.jit.script(model)
    x = images(model, SHRUNK_SIZE)
    with torch.no_grad():
        out, eager = scripted(x), model(x)
    if out.shape != (1, model.num_classes) or not close(out, eager):
        return False, f"scripted output {tuple(out.shape)} differs from eager"
    return True, f"scripted output {tuple(out.shape)} = eager"


def check_fx(s: Subject) -> Result:
    """timm's test_model_forward_fx / backward_fx: torchvision's fx extractor of the last node (timm's
    no-trace modules and functions as leaves) equals the module exactly in eval, and in train mode
    (batch 2) its backward reaches every parameter."""
    model = copy.deepcopy(s.model)
    leaves = {"leaf_modules": get_notrace_modules(), "autowrap_functions": get_notrace_functions()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's advice to pick train and eval nodes apart: done
        train_nodes, eval_nodes = get_graph_node_names(model, tracer_kwargs=leaves)
        last = {"train_return_nodes": [train_nodes[-1]], "eval_return_nodes": [eval_nodes[-1]]}
        graph = create_feature_extractor(model, **last, tracer_kwargs=leaves)
    x = images(model, SHRUNK_SIZE)
    with torch.no_grad():
        traced, eager = graph.eval()(x)[eval_nodes[-1]], model.eval()(x)
    if not torch.equal(traced, eager):
        return False, f"traced output differs from the module's (max {float((traced - eager).abs().max()):.2e})"
    graph.train()(images(model, SHRUNK_SIZE, batch=2))[train_nodes[-1]].mean().backward()
    if missing := [name for name, parameter in graph.named_parameters() if parameter.grad is None]:
        return False, f"traced train graph gives no gradient for {missing[:3]}"
    return True, f"traced to {eval_nodes[-1]!r}, output equal, gradients for all"


def gradients(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
    """Parameter gradients of a seeded train-mode backward, and how many block forwards started (a
    pre-hook: torch stops a recomputation once backward has what it needs, before the block ends)."""
    calls = [0]
    blocks = [module for name, module in model.named_modules() if BLOCK.match(name)]
    hooks = [block.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for block in blocks]
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)  # the same drop-path draws in both runs
    model(x).mean().backward()
    for hook in hooks:
        hook.remove()
    return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}, calls[0]


def check_grad_checkpointing(s: Subject) -> Result:
    """set_grad_checkpointing(): blocks run again in backward (memory traded for compute), and a
    train-mode backward at 128, batch 2, gives the gradients it gave without."""
    model, x = copy.deepcopy(s.model).train(), images(s.model, SHRUNK_SIZE, batch=2)
    plain, plain_calls = gradients(model, x)
    model.set_grad_checkpointing(True)
    checkpointed, calls = gradients(model, x)
    if calls <= plain_calls:
        return False, f"no block recomputed ({plain_calls} -> {calls} block starts)"
    if differing := [name for name in plain if not close(checkpointed[name], plain[name])]:
        return False, f"{len(differing)} gradients differ, first {differing[0]}"
    return True, f"block starts {plain_calls} -> {calls}, {len(plain)} gradients equal"


def groups_result(model: nn.Module, coarse: bool) -> Result:
    """group_matcher(coarse)'s groups: every parameter in one, the first conv in the first, the classifier
    and nothing but the head in the last, and one group per stage (coarse) or block (fine) between."""
    groups = group_parameters(model, model.group_matcher(coarse=coarse))
    order, cfg = sorted(groups), model.pretrained_cfg
    names = [name for name, _ in model.named_parameters()]
    first, last, head = groups[order[0]], groups[order[-1]], cfg["classifier"].split(".")[0] + "."
    if sorted(name for group in order for name in groups[group]) != sorted(names):
        return False, "not every parameter in exactly one group"
    if f"{cfg['first_conv']}.weight" not in first:
        return False, f"first group lacks {cfg['first_conv']}"
    if f"{cfg['classifier']}.weight" not in last or not all(name.startswith(head) for name in last):
        return False, f"last group is not the head: {last[:3]}"
    owner = {name: group for group in order for name in groups[group]}
    units = [module for module, _ in model.named_modules() if (STAGE if coarse else BLOCK).match(module)]
    ids = [{owner[name] for name in names if name.startswith(module + ".")} for module in units]
    unit = "stage" if coarse else "block"
    if any(len(found) != 1 for found in ids) or len({min(found) for found in ids}) != len(units):
        return False, f"the {len(units)} {unit}s do not have a group each"
    if len(order) != len(units) + 2:
        return False, f"{len(order)} groups for stem + {len(units)} {unit}s + head"
    return True, f"{len(order)} groups: stem, one per {unit}, head"


def check_group_coarse(s: Subject) -> Result:
    return groups_result(s.model, coarse=True)


def check_group_fine(s: Subject) -> Result:
    return groups_result(s.model, coarse=False)


def check_layer_decay(s: Subject) -> Result:
    """timm's create_optimizer_v2(layer_decay=0.8) gives one lr_scale per fine group, 0.8 ** depth from
    the head (1.0) down to the stem, and places every parameter."""
    optimizer = create_optimizer_v2(s.model, opt="adamw", lr=1e-3, weight_decay=0.05, layer_decay=LAYER_DECAY)
    layers = len(group_parameters(s.model, s.model.group_matcher(coarse=False)))
    scales = sorted({round(group["lr_scale"], 9) for group in optimizer.param_groups})
    expected = sorted(round(LAYER_DECAY**depth, 9) for depth in range(layers))
    placed = sum(len(group["params"]) for group in optimizer.param_groups)
    if scales != expected or layers < 2 or placed != len(list(s.model.parameters())):
        return False, f"{len(scales)} lr scales for {layers} groups, {placed} tensors placed"
    return True, f"{len(scales)} lr scales, {scales[0]:.2g} to {scales[-1]:g}"


def check_no_weight_decay(s: Subject) -> Result:
    """no_weight_decay() exists and returns a set of the network's own parameter names."""
    if not hasattr(s.model, "no_weight_decay"):
        return False, "absent (timm's optimizer factory then exempts 1-D tensors by its own rule)"
    exempt, names = s.model.no_weight_decay(), {name for name, _ in s.model.named_parameters()}
    if not isinstance(exempt, set) or not exempt <= names:
        return False, f"{type(exempt).__name__} with names not of parameters: {sorted(set(exempt) - names)[:3]}"
    return True, f"{len(exempt)} of {len(names)} tensors exempt" + ("" if exempt else " (recipe decays all)")


def check_registry(s: Subject) -> Result:
    """The name is listed and has a registered pretrained_cfg, create_model built the architecture it
    names, and a roadmap row's name builds that row's spec."""
    pattern = "roadmap_*" if s.name.startswith("roadmap_") else s.name
    if s.name not in timm.list_models(pattern) or s.model.pretrained_cfg.get("architecture") != s.name:
        return False, f"not listed by list_models({pattern!r}), or another architecture"
    if timm.get_pretrained_cfg_value(s.name, "input_size") != s.model.pretrained_cfg["input_size"]:
        return False, "registered pretrained_cfg differs from the model's"
    if s.spec is not None and s.model.spec.content_hash() != s.spec.content_hash():
        return False, "the registered name builds another spec than the roadmap row's"
    return True, f"listed by list_models({pattern!r})" + (", builds the row's spec" if s.spec is not None else "")


CHECKS: dict[str, Callable[[Subject], Result]] = {
    function.__name__.removeprefix("check_"): function
    for function in (check_forward, check_backward, check_default_cfgs, check_pre_logits, check_intermediates)
    + (check_prune, check_features_only, check_torchscript, check_fx, check_grad_checkpointing)
    + (check_group_coarse, check_group_fine, check_layer_decay, check_no_weight_decay, check_registry)
}
