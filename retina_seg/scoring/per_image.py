"""Per-image scoring: each image's own IoU and Dice, then their mean over the split (as a per-image protocol such
as the reference's measures a split; retina_seg.records.protocols)."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric

from .counts import REGIONS, as_map, count_scores, image_counts


class PerImageScores(Metric):
    """The mean over images of each image's IoU and Dice at a fixed threshold (a pixel is a vessel above it),
    inside the FOV (``region="fov"``) or over all pixels. Sums of the per-image scores and the image count add up
    across batches and DDP ranks."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, threshold: float = 0.5, region: str = "all", **kwargs):
        super().__init__(**kwargs)
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
        self.threshold, self.region = threshold, region
        for name in ("iou_sum", "dice_sum", "images"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor, fov: torch.Tensor | None = None) -> None:
        """Add a batch of probabilities [B, 1, H, W] and 0/1 truths; ``fov`` (bool, same shape) or None = all."""
        region = fov if self.region == "fov" else None
        scores = count_scores(image_counts(as_map(probs, "probs") > self.threshold, target, region))
        self.iou_sum += scores["IoU"].sum()
        self.dice_sum += scores["Dice"].sum()
        self.images += len(scores["IoU"])

    def compute(self) -> dict[str, float]:
        """{"IoU": mean per-image IoU, "Dice": mean per-image Dice} (NaN before any image)."""
        count = self.images.item()
        if count == 0:
            return {"IoU": math.nan, "Dice": math.nan}
        return {"IoU": self.iou_sum.item() / count, "Dice": self.dice_sum.item() / count}
