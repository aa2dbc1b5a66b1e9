"""GFLOPs, params and activations of a spec's network, counted with fvcore.

Convention (the paper's, reproduced to the printed precision in papers.md section 8): one
multiply-add = one FLOP, counting only convolutions and linear layers (matmul-like operators),
at one image of `resolution` x `resolution`, in eval mode. fvcore's own total, which also counts
norms and pooling, is reported beside it.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

with warnings.catch_warnings():  # fvcore's import calls torch.jit.script, which torch flags as deprecated
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    from fvcore.nn import FlopCountAnalysis

from roadmap.network.build import RoadmapNet
from roadmap.spec import Spec

# fvcore operator names that are matrix multiplies: the paper convention counts these only.
MATMUL_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")

CONVENTION = "GFLOPs = multiply-adds of conv and linear layers (fvcore, 1 MAC = 1 FLOP), one image, eval mode"


@dataclass(frozen=True)
class Complexity:
    resolution: int
    gflops: float  # paper convention: conv + linear multiply-adds
    gflops_fvcore_total: float  # fvcore's default total (adds norms and pooling)
    params: int
    activations_m: float  # millions of conv/linear output elements (fvcore's definition)


def _uninitialised(spec: Spec) -> nn.Module:
    """The network with allocated but uninitialised weights: weights do not change the counts, and
    initialising is most of the build time for the large networks."""
    with torch.device("meta"):
        model = RoadmapNet(spec)
    return model.to_empty(device="cpu").eval()


def _flop_analysis(model: nn.Module, spec: Spec, resolution: int) -> FlopCountAnalysis:
    """fvcore's analysis of one image, computed now (its counts are cached inside the object)."""
    image = torch.zeros(1, spec.network.in_channels, resolution, resolution)
    # fvcore traces with torch.jit, which newer torch versions flag as deprecated on every call.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        flops = FlopCountAnalysis(model, image)
        flops.unsupported_ops_warnings(False)
        flops.uncalled_modules_warnings(False)
        flops.total()
    return flops


def complexity(spec: Spec, resolution: int = 224) -> Complexity:
    """Count the complexity of the network `spec` describes (cached by content)."""
    return _complexity_cached(spec.to_json(None), resolution)


@functools.lru_cache(maxsize=256)
def _complexity_cached(spec_json: str, resolution: int) -> Complexity:
    spec = Spec.from_json(spec_json)
    model = _uninitialised(spec)
    # Activations = output elements of conv and linear layers (fvcore's definition), collected by
    # hooks during fvcore's own trace so the network runs once.
    outputs: dict[int, int] = {}

    def record(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        outputs.setdefault(id(module), math.prod(int(size) for size in output.shape))

    hooks = [
        module.register_forward_hook(record) for module in model.modules() if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    flops = _flop_analysis(model, spec, resolution)
    by_operator = flops.by_operator()
    for hook in hooks:
        hook.remove()
    return Complexity(
        resolution=resolution,
        gflops=sum(by_operator.get(name, 0) for name in MATMUL_OPERATORS) / 1e9,
        gflops_fvcore_total=flops.total() / 1e9,
        params=sum(parameter.numel() for parameter in model.parameters()),
        activations_m=sum(outputs.values()) / 1e6,
    )


def layer_table(spec: Spec, resolution: int = 224, depth: int = 2) -> pd.DataFrame:
    """Layer-by-layer breakdown (modules up to `depth` levels deep): type, params and GFLOPs under
    the paper's convention, from fvcore's per-module counts."""
    model = _uninitialised(spec)
    per_module = _flop_analysis(model, spec, resolution).by_module_and_operator()
    total = sum(per_module[""].get(name, 0) for name in MATMUL_OPERATORS)
    records = []
    for name, module in model.named_modules():
        level = 0 if name == "" else name.count(".") + 1
        if level > depth:
            continue
        counted = sum(per_module.get(name, {}).get(operator, 0) for operator in MATMUL_OPERATORS)
        records.append(
            {
                "module": name or "(network)",
                "type": type(module).__name__,
                "params": sum(parameter.numel() for parameter in module.parameters()),
                "gflops": counted / 1e9,
                "share_%": 100 * counted / total if total else 0.0,
            }
        )
    return pd.DataFrame.from_records(records)
