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
  * A ratio whose denominator is 0 is 1.0, its numerator then being 0 too: an image set with no vessels (inside
    the region) and none predicted has IoU = Dice = 1 (nothing to find, nothing found); sensitivity with no
    vessels, specificity with no background and precision with nothing predicted are likewise 1.0, because
    nothing was missed or wrongly flagged. IoU and Dice still expose a method that predicts nothing.
  * AUC is NaN when the region holds only one class (ROC undefined).
  * Under DDP the queries (confusion, scores, auc, best_threshold, summarize, compute) sum the histograms over
    ranks, a collective operation: call them on every rank, not only on rank 0.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from torchmetrics import Metric

REGIONS = ("fov", "all")
SCORES = ("IoU", "Dice", "accuracy", "sensitivity", "specificity", "precision")


def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den, and 1.0 where den == 0 (see the module's conventions)."""
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.ones_like(num))


def _as_map(x: torch.Tensor, name: str) -> torch.Tensor:
    """[B, 1, H, W] or [B, H, W] -> [B, H, W]."""
    if x.dim() == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"{name} must be [B, 1, H, W] or [B, H, W], got shape {tuple(x.shape)}")
    return x


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
        probs, target = _as_map(probs, "probs"), _as_map(target, "target").bool()
        fov = torch.ones_like(target) if fov is None else _as_map(fov, "fov").bool()
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

    @staticmethod
    def _score_curves(tp: torch.Tensor, fp: torch.Tensor, fn: torch.Tensor, tn: torch.Tensor) -> dict:
        """All scores from confusion counts (elementwise, so one call scores every threshold)."""
        return {
            "IoU": _ratio(tp, tp + fp + fn),
            "Dice": _ratio(2 * tp, 2 * tp + fp + fn),
            "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
            "sensitivity": _ratio(tp, tp + fn),
            "specificity": _ratio(tn, tn + fp),
            "precision": _ratio(tp, tp + fp),
        }

    def scores(self, threshold: float = 0.5, region: str = "fov") -> dict[str, float]:
        """IoU, Dice, accuracy, sensitivity, specificity and precision of the vessel class at one threshold."""
        k = self.grid_index(threshold)
        curves = self._curves(region)
        table = self._score_curves(curves["TP"], curves["FP"], curves["FN"], curves["TN"])
        return {name: float(values[k]) for name, values in table.items()}

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
        curves = self._curves(region)
        values = self._score_curves(curves["TP"], curves["FP"], curves["FN"], curves["TN"])[metric]
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


def _skeletonize(mask: np.ndarray) -> np.ndarray:
    """Morphological skeleton of a 2-D boolean mask (imported lazily: scikit-image is slow to import)."""
    from skimage.morphology import skeletonize

    return skeletonize(mask)


def _centreline_counts(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|S(pred) & truth|, |S(pred)|, |S(truth) & pred|, |S(truth)| of two 2-D boolean masks (S the skeleton)."""
    skel_pred = _skeletonize(pred) if pred.any() else pred
    skel_truth = _skeletonize(truth) if truth.any() else truth
    return np.array(
        [(skel_pred & truth).sum(), skel_pred.sum(), (skel_truth & pred).sum(), skel_truth.sum()], dtype=np.float64
    )


def _cldice_from_counts(counts) -> float:
    """2 Tprec Tsens / (Tprec + Tsens); 1.0 when neither mask has a centreline, 0.0 when only one has."""
    pred_in_truth, pred_total, truth_in_pred, truth_total = (float(c) for c in counts)
    if pred_total == 0 and truth_total == 0:
        return 1.0
    if pred_total == 0 or truth_total == 0:
        return 0.0
    t_prec, t_sens = pred_in_truth / pred_total, truth_in_pred / truth_total
    return 0.0 if t_prec + t_sens == 0 else 2 * t_prec * t_sens / (t_prec + t_sens)


def cldice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Centreline Dice (Shit et al., 2021) of two 2-D boolean masks: 2 Tprec Tsens / (Tprec + Tsens).

    Tprec = |S(pred) & truth| / |S(pred)| and Tsens = |S(truth) & pred| / |S(truth)|, S the skeleton.
    Two empty masks score 1.0 (nothing to find, nothing found); exactly one empty mask scores 0.0.
    """
    pred, truth = np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)
    if pred.ndim != 2 or pred.shape != truth.shape:
        raise ValueError(f"pred and truth must be 2-D masks of one shape, got {pred.shape} and {truth.shape}")
    return _cldice_from_counts(_centreline_counts(pred, truth))


class CentrelineDice(Metric):
    """clDice of binary masks over a whole split, inside the FOV and over all pixels.

    Like IoU in VesselMetrics, the split is pooled: skeleton pixel counts of every image add up (and sum across
    DDP ranks) before Tprec and Tsens are formed, so large and small images weigh by their vessel length.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for region in REGIONS:
            self.add_state(f"counts_{region}", default=torch.zeros(4, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, target: torch.Tensor, fov: torch.Tensor | None = None) -> None:
        """Add a batch of 0/1 (or bool) predictions and truths, optional bool FOV (None = all)."""
        pred, target = _as_map(pred, "pred").bool(), _as_map(target, "target").bool()
        fov = torch.ones_like(target) if fov is None else _as_map(fov, "fov").bool()
        if target.shape != pred.shape or fov.shape != pred.shape:
            raise ValueError(
                f"pred {tuple(pred.shape)}, target {tuple(target.shape)} and fov "
                f"{tuple(fov.shape)} must have the same [B, H, W]"
            )
        for p, t, f in zip(pred.cpu().numpy(), target.cpu().numpy(), fov.cpu().numpy()):
            self.counts_fov += torch.from_numpy(_centreline_counts(p & f, t & f)).to(self.counts_fov)
            self.counts_all += torch.from_numpy(_centreline_counts(p, t)).to(self.counts_all)

    def compute(self) -> dict[str, float]:
        """{"fov": clDice inside the FOV, "all": clDice over all pixels}."""
        return {region: _cldice_from_counts(getattr(self, f"counts_{region}")) for region in REGIONS}


class PerImageScores(Metric):
    """The mean over images of each image's own IoU and Dice at a fixed threshold (a per-image protocol such as
    the reference's, retina_seg.records.protocols), inside a region mask or over all pixels. Sums of the
    per-image scores and the image count add up across batches and DDP ranks."""

    is_differentiable = False
    full_state_update = False

    def __init__(self, threshold: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        self.threshold = threshold
        for name in ("iou_sum", "dice_sum", "images"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, probs: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None) -> None:
        """Add a batch of probabilities [B, 1, H, W] and 0/1 truths; ``region`` (bool, same shape) or None = all."""
        probs, target = _as_map(probs, "probs"), _as_map(target, "target").bool()
        region = torch.ones_like(target) if region is None else _as_map(region, "region").bool()
        predicted = (probs > self.threshold) & region
        target = target & region
        tp = (predicted & target).flatten(1).sum(1).double()
        fp = (predicted & ~target).flatten(1).sum(1).double()
        fn = (~predicted & target).flatten(1).sum(1).double()
        self.iou_sum += _ratio(tp, tp + fp + fn).sum()
        self.dice_sum += _ratio(2 * tp, 2 * tp + fp + fn).sum()
        self.images += len(tp)

    def compute(self) -> dict[str, float]:
        """{"IoU": mean per-image IoU, "Dice": mean per-image Dice} (NaN before any image)."""
        count = self.images.item()
        if count == 0:
            return {"IoU": math.nan, "Dice": math.nan}
        return {"IoU": self.iou_sum.item() / count, "Dice": self.dice_sum.item() / count}
