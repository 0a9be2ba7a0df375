"""Per-image scoring: each image's own IoU and Dice, then their mean over the split (as a per-image protocol such
as the reference's measures a split; retina_seg.records.protocols)."""

from __future__ import annotations

import math

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from .centrelines import cldice
from .counts import REGIONS, as_map, count_scores, image_counts

IMAGE_SCORES = ("IoU", "Dice", "clDice")


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


class ImageScoreTable(Metric):
    """Each image's own IoU, Dice and clDice of binary predictions, inside the FOV (``region="fov"``) or over all
    pixels, kept by the image's index in its split: the rows of every DDP rank gather into one table, and an image
    a distributed sampler repeats to even out the ranks counts once."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, region: str = "fov", **kwargs):
        super().__init__(**kwargs)
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
        self.region = region
        self.add_state("index", default=[], dist_reduce_fx="cat")
        self.add_state("scores", default=[], dist_reduce_fx="cat")

    def update(
        self, index: torch.Tensor, predicted: torch.Tensor, target: torch.Tensor, fov: torch.Tensor | None = None
    ) -> None:
        """Add a batch: each image's index [B], bool predictions and 0/1 truths [B, (1,) H, W], ``fov`` (bool, same
        shape) or None = all pixels."""
        predicted, target = as_map(predicted, "predicted").bool(), as_map(target, "target").bool()
        region = as_map(fov, "fov").bool() if fov is not None and self.region == "fov" else torch.ones_like(target)
        scores = count_scores(image_counts(predicted, target, region))
        centrelines = [
            cldice(p & r, t & r) for p, t, r in zip(predicted.cpu().numpy(), target.cpu().numpy(), region.cpu().numpy())
        ]
        per_image = [scores["IoU"], scores["Dice"], torch.tensor(centrelines, dtype=torch.float64)]
        self.index.append(torch.as_tensor(index, device=self.device).long().reshape(-1))
        self.scores.append(torch.stack([s.to(self.device) for s in per_image], dim=1))

    def compute(self) -> list[dict[str, float | int]]:
        """One row per image, by index: {"index", "IoU", "Dice", "clDice"} ([] before any image)."""
        if not (isinstance(self.index, torch.Tensor) or self.index):
            return []
        index, scores = dim_zero_cat(self.index).tolist(), dim_zero_cat(self.scores).tolist()
        by_index = dict(zip(index, scores))
        return [{"index": i, **dict(zip(IMAGE_SCORES, by_index[i]))} for i in sorted(by_index)]
