"""Row "ResNet-50 (PyTorch)" / "ResNet-200 [29]": the starting network with its legacy recipe."""

from roadmap.recipes import LEGACY
from roadmap.spec import Network, Spec
from steps.registry import Step


def resnet(spec: Spec, depths: tuple[int, ...] = (3, 4, 6, 3)) -> Spec:
    """A torchvision-style bottleneck ResNet (stride on the 3x3 conv); the input spec is replaced."""
    return Spec(network=Network(depths=tuple(depths)), recipe=LEGACY)


# The rows this module adds to the registry (roadmap.network.roadmaps places them on roadmaps).
STEPS = (
    Step(
        "resnet50",
        resnet,
        "ResNet-50 (PyTorch, 90 ep)",
        "torchvision ResNet-50, 90-epoch SGD recipe",
        {"depths": (3, 4, 6, 3)},
        origin=True,
    ),
    Step(
        "resnet200",
        resnet,
        "ResNet-200",
        "ResNet-200 (3,24,36,3), 90-epoch SGD recipe",
        {"depths": (3, 24, 36, 3)},
        origin=True,
    ),
)
