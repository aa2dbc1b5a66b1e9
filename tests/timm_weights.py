"""Load a timm model's weights into the equivalent `RoadmapNet`, for the weight-for-weight equality tests.

The renaming rules are the product's (roadmap.network.timm_names, also used by `--init`): the tests check
the same rules users rely on.
"""

from __future__ import annotations

from torch import nn

from roadmap.network.timm_names import convert_state_dict


def load_timm_weights(model: nn.Module, timm_model: nn.Module, family: str) -> None:
    """Copy every tensor of `timm_model` into `model`; fail loudly on any missing or extra key."""
    model.load_state_dict(convert_state_dict(timm_model.state_dict(), family, model.state_dict()), strict=True)
