"""Centreline Dice (clDice, Shit et al., 2021) of binary vessel masks: how much of each mask's skeleton lies inside
the other mask, a score of connectivity that pixel overlap misses."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric

from .counts import REGIONS, as_map


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
        pred, target = as_map(pred, "pred").bool(), as_map(target, "target").bool()
        fov = torch.ones_like(target) if fov is None else as_map(fov, "fov").bool()
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
