"""Networks: the one builder (Spec -> RoadmapNet), its layers, complexity with fvcore, the roadmaps
and model families as specs, the paper's values of their rows, and their registration with timm.

Importing this package registers every roadmap row and model family member with timm's registry
(`timm_registry`): whoever builds a network can also create it by its timm name."""

from roadmap.network import timm_registry  # noqa: F401  (registers the rows with timm)
