"""IoU and Dice of a predicted vessel mask against ground truth, from pixel counts that add up over images.

Counted over the whole image: predictions are zero outside the FOV, so this equals the in-FOV score whenever the
ground truth has no vessels outside the FOV (as in DRIVE), and counts any that it has as missed. As in
training's metrics, a ratio with a zero denominator is 1.0 (nothing to find and nothing found).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Vessel-class true positives, false positives and false negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def iou(self) -> float:
        denominator = self.tp + self.fp + self.fn
        return self.tp / denominator if denominator else 1.0

    @property
    def dice(self) -> float:
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 1.0


def confusion(predicted: np.ndarray, truth: np.ndarray) -> Counts:
    """Counts of two bool HxW masks of one shape."""
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction {predicted.shape} and truth {truth.shape} differ in shape")
    tp = int(np.count_nonzero(predicted & truth))
    return Counts(tp, int(np.count_nonzero(predicted)) - tp, int(np.count_nonzero(truth)) - tp)


def pooled(counts: list[Counts]) -> Counts:
    """The counts of several images together: the `overall` score weighs every pixel alike, as training's does."""
    return sum(counts, Counts())
