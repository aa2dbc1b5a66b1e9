"""benchmarks/timm_interface.py, the checker of roadmap networks against timm's model interface: its
fifteen checks all pass on the smallest registered network, and its table counts them. The full run over
the roadmaps is the benchmark's own (figures in docs/benchmarks.md)."""

import importlib.util
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# benchmarks/ is no package: the checker is loaded from its file, once, when this module is collected.
_LOCATION = importlib.util.spec_from_file_location("timm_interface", ROOT / "benchmarks" / "timm_interface.py")
checker = importlib.util.module_from_spec(_LOCATION)
sys.modules[_LOCATION.name] = checker  # as an import would: pickling and typing look classes' modules up there
_LOCATION.loader.exec_module(checker)

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
