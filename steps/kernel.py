"""Rows "kernel size -> 5 / 7 / 9 / 11": the spatial conv's kernel grows from 3; 7 is adopted."""

from roadmap.spec import Spec


def kernel_size(spec: Spec, size: int = 7) -> Spec:
    """Set the spatial (depthwise) kernel size, padding size // 2."""
    return spec.with_network(kernel_size=size)
