"""What a step module declares: `Step` records, one per row the step gives (its CLI name, the pure
function `Spec -> Spec`, the paper's row label and a summary)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from roadmap.spec import Spec


@dataclass(frozen=True)
class Step:
    name: str
    function: Callable[..., Spec]
    label: str
    description: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # A branch row: a variant of another step that the paper tried but did not adopt; it starts
    # from the same parent spec and does not continue the path.
    branch_of: str | None = None
    # An origin step ignores its input and starts a roadmap.
    origin: bool = False

    def apply(self, spec: Spec, **overrides: Any) -> Spec:
        return self.function(spec, **{**self.params, **overrides})


def canonical_name(name: str) -> str:
    """CLI names accept '-' or '_'."""
    return name.strip().replace("-", "_")
