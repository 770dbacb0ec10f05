"""``--method none``: the backbone trained alone on the raw features (the comparison baseline)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from merc.backbones.base import Backbone
from merc.data.collate import Batch
from merc.methods.base import Method, MethodOutput
from merc.registry import BACKBONES, METHODS


@METHODS.register("none")
class PlainMethod(Method):
    """A backbone trained with cross-entropy on the raw per-modality features.

    Args:
        input_dims: modality → feature dimension.
        num_classes: number of classes.
        num_speakers: maximum parties per dialogue.
        backbone: registered backbone name.
        backbone_options: keyword options of the backbone.
    """

    def __init__(self, input_dims: dict[str, int], num_classes: int, num_speakers: int = 2,
                 backbone: str = "late_fusion", backbone_options: dict[str, Any] | None = None) -> None:
        super().__init__(input_dims, num_classes, num_speakers)
        self.backbone: Backbone = BACKBONES.create(backbone, input_dims=dict(input_dims), num_classes=num_classes,
                                                   num_speakers=num_speakers, **(backbone_options or {}))

    def forward(self, batch: Batch) -> MethodOutput:
        out = self.backbone(batch.features, batch.mask, batch.speakers)
        return MethodOutput(out.logits, out.representation,
                            {"modality_logits": out.modality_logits, **out.extras})

    def utterance_encoding(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """The backbone's per-modality input ``Linear`` outputs (the raw features for backbones without one).

        Shapes:
            - features: modality → ``[N, d_m]``; output: modality → ``[N, H_m]`` (``d_m`` without layers)
        """
        layers = self.backbone.input_projections()
        if layers is None:
            return {m: features[m] for m in self.modalities}
        return {m: layers[m](features[m]) for m in self.modalities}

    def forward_encoded(self, encoded: dict[str, Tensor], mask: Tensor, speakers: Tensor) -> Tensor:
        """Logits ``[N, C]`` from padded :meth:`utterance_encoding` outputs ``[B, L, H_m]``."""
        if self.backbone.input_projections() is None:
            return self.backbone(encoded, mask, speakers).logits
        return self.backbone(encoded, mask, speakers, projected=True).logits
