"""Dataset-level vessel metrics at any threshold, from probability histograms that sum across DDP ranks.

Instead of storing predictions, VesselMetrics counts vessel and background pixels per probability bin
(bin = clamp(floor(p * bins), 0, bins - 1)), inside the field of view (FOV) and over all pixels. The confusion
matrix at every threshold on the grid k / bins, the ROC AUC and the best threshold all follow from these
counts, and the counts of several batches or ranks simply add up.

Conventions:
  * A pixel is predicted vessel iff p >= threshold; a requested threshold is rounded to the nearest grid point
    k / bins (k in 0..bins, halves rounding up; at k = bins nothing is predicted vessel, not even p = 1, which
    shares the top bin). Up to float rounding of probabilities that sit exactly on a grid point this equals
    comparing p with the rounded threshold.
  * A ratio with a zero denominator is 1.0 (retina_seg.scoring.counts).
  * AUC is NaN when the region holds only one class (ROC undefined).
  * Under DDP the queries (confusion, scores, auc, best_threshold, summarize, compute) sum the histograms over
    ranks, a collective operation: call them on every rank, not only on rank 0.

Why a histogram of our own rather than torchmetrics' binned BinaryROC / BinaryAUROC(thresholds=1000): those
compare every pixel with every threshold. One update of a batch of 8x512x512 probabilities (one thread, on an
"AMD EPYC" as /proc/cpuinfo names it, 2 cores shared): this bincount 0.095 s, BinaryROC 20.5 s, BinaryAUROC
44.3 s, some 200 to 450 times slower, while the histogram gives the same curve and every threshold's counts.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torchmetrics import Metric

from .counts import REGIONS, SCORES, as_map, count_scores


class VesselMetrics(Metric):
    """Vessel-class IoU, Dice, accuracy, sensitivity, specificity, precision and AUC over a whole dataset."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, bins: int = 1000, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
        self.bins = bins
        for name in ("pos_fov", "neg_fov", "pos_all", "neg_all"):
            self.add_state(name, default=torch.zeros(bins, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor, fov: torch.Tensor | None = None) -> None:
        """Add a batch: vessel probabilities in [0, 1], 0/1 (or bool) truth, optional bool FOV (None = all)."""
        probs, target = as_map(probs, "probs"), as_map(target, "target").bool()
        fov = torch.ones_like(target) if fov is None else as_map(fov, "fov").bool()
        if target.shape != probs.shape or fov.shape != probs.shape:
            raise ValueError(
                f"probs {tuple(probs.shape)}, target {tuple(target.shape)} and fov "
                f"{tuple(fov.shape)} must have the same [B, H, W]"
            )
        bin_index = self._bins_of(probs)
        # One bincount over (truth, in-FOV, bin) codes: rows background-outside, background-in, vessel-outside,
        # vessel-in. float64 keeps pixel counts exact up to 2**53.
        code = (2 * target.long() + fov.long()) * self.bins + bin_index
        counts = torch.bincount(code.flatten(), minlength=4 * self.bins).to(torch.float64).view(4, self.bins)
        self.neg_fov += counts[1]
        self.pos_fov += counts[3]
        self.neg_all += counts[0] + counts[1]
        self.pos_all += counts[2] + counts[3]

    @contextmanager
    def _synced(self):
        """States summed over DDP ranks for the duration (a collective: call the queries on every rank)."""
        if self._is_synced:  # already inside compute()'s sync
            yield
            return
        with self.sync_context(
            dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync
        ):
            yield

    def _curves(self, region: str) -> dict[str, torch.Tensor]:
        """TP, FP, FN, TN at every grid threshold k / bins, k = 0..bins (index k), from the rank-summed counts."""
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
        with self._synced():
            pos, neg = (self.pos_fov, self.neg_fov) if region == "fov" else (self.pos_all, self.neg_all)
        zero = pos.new_zeros(1)
        below_pos = torch.cat([zero, pos.cumsum(0)])  # vessel pixels with bin < k: missed at threshold k
        below_neg = torch.cat([zero, neg.cumsum(0)])
        return {"TP": pos.sum() - below_pos, "FP": neg.sum() - below_neg, "FN": below_pos, "TN": below_neg}

    def grid_index(self, threshold: float) -> int:
        """Index k of the grid threshold k / bins nearest to `threshold` (clamped to [0, 1])."""
        return math.floor(min(max(threshold, 0.0), 1.0) * self.bins + 0.5)

    def predicted(self, probs: torch.Tensor, threshold: float) -> torch.Tensor:
        """The boolean vessel map these metrics count at `threshold` (same bins, same grid rounding)."""
        return self._bins_of(probs) >= self.grid_index(threshold)

    def _bins_of(self, probs: torch.Tensor) -> torch.Tensor:
        return (probs.detach().double() * self.bins).floor().long().clamp(0, self.bins - 1)

    def confusion(self, threshold: float = 0.5, region: str = "fov") -> dict[str, float]:
        """Pixel counts TP, FP, FN, TN of the vessel class at the threshold's nearest grid point."""
        k = self.grid_index(threshold)
        return {name: float(curve[k]) for name, curve in self._curves(region).items()}

    def scores(self, threshold: float = 0.5, region: str = "fov") -> dict[str, float]:
        """IoU, Dice, accuracy, sensitivity, specificity and precision of the vessel class at one threshold."""
        k = self.grid_index(threshold)
        return {name: float(values[k]) for name, values in count_scores(self._curves(region)).items()}

    def auc(self, region: str = "fov") -> float:
        """ROC AUC by the trapezoid rule over the grid thresholds (pixels sharing a bin count as ties)."""
        curves = self._curves(region)
        positives, negatives = curves["TP"][0], curves["FP"][0]  # threshold 0: every pixel predicted vessel
        if positives == 0 or negatives == 0:
            return math.nan
        tpr = curves["TP"].flip(0) / positives  # from threshold 1 (nothing predicted) down to 0 (everything)
        fpr = curves["FP"].flip(0) / negatives
        return float(torch.trapezoid(tpr, fpr))

    def best_threshold(self, metric: str = "IoU", region: str = "fov", lo: float = 0.05, hi: float = 0.95) -> float:
        """Grid threshold in [lo, hi] maximising `metric` (the lowest such threshold on ties)."""
        if metric not in SCORES:
            raise ValueError(f"metric must be one of {SCORES}, got {metric!r}")
        k_lo, k_hi = math.ceil(lo * self.bins - 1e-9), math.floor(hi * self.bins + 1e-9)
        if not 0 <= k_lo <= k_hi <= self.bins:
            raise ValueError(f"need 0 <= lo <= hi <= 1 spanning a grid point k/{self.bins}, got lo={lo}, hi={hi}")
        values = count_scores(self._curves(region))[metric]
        return (k_lo + int(values[k_lo : k_hi + 1].argmax())) / self.bins

    def compute(self) -> dict[str, float]:
        """Scores at threshold 0.5 inside the FOV."""
        return self.scores(0.5, "fov")


def summarize(metrics: VesselMetrics, threshold: float = 0.5, prefix: str = "val") -> dict[str, float]:
    """Flat, loggable names: f"{prefix}_IoU" ... f"{prefix}_AUC" for the FOV, the same + "_all" for all pixels."""
    flat = {}
    for region, suffix in (("fov", ""), ("all", "_all")):
        values = metrics.scores(threshold, region) | {"AUC": metrics.auc(region)}
        flat |= {f"{prefix}_{name}{suffix}": value for name, value in values.items()}
    return flat
