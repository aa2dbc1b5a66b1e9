"""Row "ResNet-50 (PyTorch)" / "ResNet-200 [29]": the starting network with its legacy recipe."""

from roadmap.recipes import LEGACY
from roadmap.spec import Network, Spec


def resnet(spec: Spec, depths: tuple[int, ...] = (3, 4, 6, 3)) -> Spec:
    """A torchvision-style bottleneck ResNet (stride on the 3x3 conv); the input spec is replaced."""
    return Spec(network=Network(depths=tuple(depths)), recipe=LEGACY)
