"""Row "supervised" of the co-design table: a ConvNeXt trained from scratch, as the V1 paper did."""

from roadmap.spec import Spec


def supervised(spec: Spec) -> Spec:
    """The paper's ImageNet-1K recipe (Table 5) as used for ConvNeXt-T/B: EMA of the weights on.

    The roadmap study itself trains without EMA (App. A.1); the reported ConvNeXt results that
    ConvNeXt V2 compares FCMAE against (83.8 for ConvNeXt-B) were trained with it.
    """
    return spec.with_recipe(ema=True)
