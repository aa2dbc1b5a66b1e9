"""benchmarks/timm_interface.py, the checker of roadmap networks against timm's model interface: its
fifteen checks (benchmarks/timm_checks.py) all pass on the smallest registered network, and its table
counts them. The full run over the roadmaps is the benchmark's own (figures in docs/benchmarks.md)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> ModuleType:
    """benchmarks/<name>.py, loaded from its file and registered as an import would register it: pickling and
    typing look classes' modules up in sys.modules, and so does the runner's `import timm_checks`."""
    location = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(location)
    sys.modules[name] = module
    location.loader.exec_module(module)
    return module


# benchmarks/ is no package, and its script finds its checks module on the path that running it gives
# (its own folder): here the checks are loaded first, then the runner, once, when this module is collected.
load("timm_checks")
checker = load("timm_interface")

# The smallest registered roadmap network (ConvNeXt V2-Atto, 3.7M parameters): GRN, LayerNorm,
# separate downsampling layers and the norm + linear head, at the checker's full 224 input.
SMALLEST = "roadmap_convnextv2_atto"


def test_all_fifteen_checks_pass_on_the_smallest_registered_network():
    # One thread, as under pytest-xdist: with two on the shared 2-core machine the checks took 50 s,
    # not 8, as torch's second thread waited on a core that other work held.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = checker.run_network(SMALLEST, verbose=False)
    finally:
        torch.set_num_threads(threads)
    assert [row["check"] for row in rows] == list(checker.CHECKS) and len(checker.CHECKS) == 15
    assert {row["check"]: row["reason"] for row in rows if not row["passed"]} == {}
    table, _ = checker.tables(rows)
    assert table.loc[SMALLEST, "passed"] == "15/15" and set(table.loc[SMALLEST, list(checker.CHECKS)]) == {"pass"}
    assert checker.summary(table).startswith("15 of 15 checks pass (roadmap networks: 15 of 15;")
