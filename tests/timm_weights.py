"""Load a timm model's weights into the equivalent `RoadmapNet`, for the weight-for-weight equality tests.

The renaming rules are the product's (roadmap.timm_names, also used by `--init`): the tests check
the same rules users rely on.
"""

from __future__ import annotations

from torch import nn

from roadmap.timm_names import FAMILY_RULES, convert_state_dict  # noqa: F401 (re-exported for tests)


def load_timm_weights(model: nn.Module, timm_model: nn.Module, family: str) -> None:
    """Copy every tensor of `timm_model` into `model`; fail loudly on any missing or extra key."""
    model.load_state_dict(convert_state_dict(timm_model.state_dict(), family, model.state_dict()), strict=True)
