"""The rows of ConvNeXt V2's co-design table (Table 3 / App. D): V1 and V2 blocks, supervised and FCMAE."""

from roadmap.spec import Spec
from steps.fcmae import fcmae
from steps.grn import global_response_norm
from steps.registry import Step


def supervised(spec: Spec) -> Spec:
    """The paper's ImageNet-1K recipe (Table 5) as used for ConvNeXt-T/B: EMA of the weights on.

    The roadmap study itself trains without EMA (App. A.1); the reported ConvNeXt results that
    ConvNeXt V2 compares FCMAE against (83.8 for ConvNeXt-B) were trained with it.
    """
    return spec.with_recipe(ema=True)


STEPS = (
    Step("v1_supervised", supervised, "V1, supervised", "ConvNeXt V1 from scratch, IN-1K recipe with EMA"),
    Step("v1_fcmae", fcmae, "V1 + FCMAE", "V1 block, FCMAE pre-training + V2 fine-tuning"),
    Step(
        "v2_supervised",
        global_response_norm,
        "V2 (GRN), supervised",
        "V2 block from scratch (branch)",
        branch_of="v1_fcmae",
    ),
    Step("v2_fcmae", global_response_norm, "V2 (GRN) + FCMAE", "V2 block, FCMAE pre-training + V2 fine-tuning"),
)
