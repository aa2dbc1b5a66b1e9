"""Rows "kernel size -> 5 / 7 / 9 / 11": the spatial conv's kernel grows from 3; 7 is adopted."""

from roadmap.spec import Spec
from steps.registry import Step


def kernel_size(spec: Spec, size: int = 7) -> Spec:
    """Set the spatial (depthwise) kernel size, padding size // 2."""
    return spec.with_network(kernel_size=size)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step("kernel", kernel_size, "kernel size -> 7", "depthwise kernel 3 -> 7 (adopted)", {"size": 7}),
    Step(
        "kernel5", kernel_size, "kernel size -> 5", "depthwise kernel 3 -> 5 (branch)", {"size": 5}, branch_of="kernel"
    ),
    Step(
        "kernel9", kernel_size, "kernel size -> 9", "depthwise kernel 3 -> 9 (branch)", {"size": 9}, branch_of="kernel"
    ),
    Step(
        "kernel11",
        kernel_size,
        "kernel size -> 11",
        "depthwise kernel 3 -> 11 (branch)",
        {"size": 11},
        branch_of="kernel",
    ),
)
