"""The vessel class's confusion counts and the scores they give, with the one convention every score follows.

A ratio whose denominator is 0 is 1.0, its numerator then being 0 too: with no vessels (inside the region) and
none predicted, IoU = Dice = 1 (nothing to find, nothing found); sensitivity with no vessels, specificity with no
background and precision with nothing predicted are likewise 1.0, because nothing was missed or wrongly flagged.
IoU and Dice still expose a method that predicts nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import binary_stat_scores

REGIONS = ("fov", "all")  # inside the field of view; every pixel
SCORES = ("IoU", "Dice", "accuracy", "sensitivity", "specificity", "precision")


def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 1.0 where den == 0 (the module's convention)."""
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.ones_like(num))


def count_scores(counts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every score of SCORES from float counts {"TP", "FP", "FN", "TN"} (elementwise: one call scores every
    threshold, or every image)."""
    tp, fp, fn, tn = (counts[name] for name in ("TP", "FP", "FN", "TN"))
    return {
        "IoU": ratio(tp, tp + fp + fn),
        "Dice": ratio(2 * tp, 2 * tp + fp + fn),
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
        "sensitivity": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "precision": ratio(tp, tp + fp),
    }


def as_map(x: torch.Tensor, name: str) -> torch.Tensor:
    """[B, 1, H, W] or [B, H, W] -> [B, H, W]."""
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"{name} must be [B, 1, H, W] or [B, H, W], got shape {tuple(x.shape)}")
    return x


def image_counts(
    predicted: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """TP, FP, FN, TN of each image (float64, [B] each) of bool predictions and 0/1 truths [B, (1,) H, W],
    counting only the pixels inside ``region`` (bool, same shape; None: every pixel). torchmetrics' samplewise
    stat scores, with the pixels outside the region ignored."""
    predicted, target = as_map(predicted, "predicted").bool(), as_map(target, "target").long()
    if region is not None:
        target = torch.where(as_map(region, "region").bool(), target, -1)
    if target.shape != predicted.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} must have one shape")
    # torchmetrics 1.9's samplewise counts of a single image fail (it squeezes the image axis away); over one
    # image the global counts are the same.
    average = "samplewise" if len(predicted) > 1 else "global"
    stats = binary_stat_scores(predicted, target, multidim_average=average, ignore_index=-1, validate_args=False)
    tp, fp, tn, fn = stats.view(-1, 5).double().unbind(1)[:4]
    return {"TP": tp, "FP": fp, "FN": fn, "TN": tn}


@dataclass(frozen=True)
class Counts:
    """One image's (or several images' summed) vessel-class true positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def _score(self, name: str) -> float:
        counts = {"TP": self.tp, "FP": self.fp, "FN": self.fn, "TN": 0}
        return float(count_scores({k: torch.tensor(float(v), dtype=torch.float64) for k, v in counts.items()})[name])

    @property
    def iou(self) -> float:
        return self._score("IoU")

    @property
    def dice(self) -> float:
        return self._score("Dice")


def confusion(predicted: np.ndarray, truth: np.ndarray) -> Counts:
    """Counts of two bool HxW masks of one shape (every pixel)."""
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction {predicted.shape} and truth {truth.shape} differ in shape")
    counts = image_counts(*(torch.from_numpy(np.ascontiguousarray(m))[None] for m in (predicted, truth)))
    return Counts(int(counts["TP"]), int(counts["FP"]), int(counts["FN"]))


def pooled(counts: list[Counts]) -> Counts:
    """The counts of several images together: the `overall` score weighs every pixel alike, as VesselMetrics'."""
    return sum(counts, Counts())
