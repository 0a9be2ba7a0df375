"""Binary annotations scored against truth masks in every way a protocol can ask for: the arithmetic of the
evaluation protocols (retina_seg.records.protocols) on masks that need no threshold, and so the human baseline
(a second observer's masks against the first's) of retina-seg-eval and benchmarks/human_baseline.py."""

from __future__ import annotations

import numpy as np
import torch

from .centrelines import CentrelineDice
from .counts import REGIONS
from .per_image import PerImageScores
from .pooled import VesselMetrics, summarize

AVERAGINGS = ("pooled", "per_image")  # TP/FP/FN summed over the split; each image scored, then the mean


def _map(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))[None]


class MaskAgreement:
    """Pixels pooled over the split (both regions) and each image's IoU and Dice (both regions), and, unless
    ``centrelines=False``, clDice: one pass over the images answers every protocol."""

    def __init__(self, centrelines: bool = True):
        self.pooled = VesselMetrics()
        self.per_image = {region: PerImageScores(0.5, region) for region in REGIONS}
        self.centrelines = CentrelineDice() if centrelines else None

    def add(self, annotation: np.ndarray, truth: np.ndarray, fov: np.ndarray) -> None:
        """One image's bool HxW annotation, truth and field of view."""
        annotation, truth, fov = _map(annotation).bool(), _map(truth).bool(), _map(fov).bool()
        self.pooled.update(annotation.float(), truth, fov)
        for scores in self.per_image.values():
            scores.update(annotation.float(), truth, fov)
        if self.centrelines is not None:
            self.centrelines.update(annotation, truth, fov)

    def scores(self, region: str, averaging: str) -> dict[str, float]:
        """{"IoU", "Dice"} inside ``region`` ("fov" or "all"), pixels pooled or per-image scores averaged."""
        if averaging not in AVERAGINGS:
            raise ValueError(f"averaging must be one of {AVERAGINGS}, got {averaging!r}")
        if averaging == "per_image":
            return self.per_image[region].compute()
        values = self.pooled.scores(0.5, region)
        return {name: values[name] for name in ("IoU", "Dice")}

    def summary(self, prefix: str) -> dict[str, float]:
        """The pooled scores under a model's names (f"{prefix}_IoU", ..., "_all" over all pixels) and clDice; no
        AUC, since a binary mask ranks no pixels."""
        flat = {name: value for name, value in summarize(self.pooled, 0.5, prefix).items() if "AUC" not in name}
        if self.centrelines is not None:
            centrelines = self.centrelines.compute()
            flat |= {f"{prefix}_clDice": centrelines["fov"], f"{prefix}_clDice_all": centrelines["all"]}
        return flat
