"""A run's predictions on a few of its test photographs, each pixel coloured by its outcome: what a test IoU
looks like, for the report page (retina_seg/report.py).

The run's ``best.ckpt`` predicts through VesselPredictor at the threshold chosen on validation, on the first
photographs of the test split its own data config names (metrics.json ``config.data``), at their native size as
the run's test scored them. Inside the FOV, a vessel found is a true positive, a vessel drawn where the truth
has none a false positive, a vessel missed a false negative. Prediction happens here, not during training,
so that a sweep trained before this page existed gets its pictures too.
"""

import io
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from PIL import Image

from ..data.errors import DataError
from ..data.loading import LoadedSample
from ..data.scale import to_size
from ..records.checkpoint import CheckpointError
from ..records.run_folder import BEST_CKPT, CHECKPOINTS, metrics_or_none
from ..scoring.counts import confusion
from .predictor import VesselPredictor

# Okabe-Ito colours, told apart with the common colour-vision deficiencies.
OUTCOME_COLOURS = {
    "true positive": (240, 228, 66),
    "false positive": (213, 94, 0),
    "false negative": (86, 180, 233),
}
# How bright the photograph stays under the outcomes, so that the colours stand out on it.
PHOTOGRAPH_DIMMING = 0.45
# Photographs larger than this (pixels per side) are predicted in tiles, as retina-seg-predict does.
WHOLE_IMAGE_MAX_SIDE = 1024


class OverlayUnavailable(Exception):
    """Why a run's photographs cannot be drawn, in one sentence."""


@dataclass(frozen=True)
class OutcomeOverlay:
    """One test photograph: its name, its IoU inside the FOV at ``threshold``, and the picture (photograph |
    outcomes)."""

    name: str
    iou: float
    threshold: float
    picture: np.ndarray  # uint8 H x 2W x 3

    def png(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.picture).save(buffer, format="PNG")
        return buffer.getvalue()


def outcome_overlays(run_dir: Path | str, count: int = 3, max_side: int = 420) -> list[OutcomeOverlay]:
    """The first ``count`` test photographs of the run, each ``max_side`` pixels high (see ``fit``);
    OverlayUnavailable when the run has no best checkpoint, no data config, or its test split cannot be read."""
    run_dir = Path(run_dir)
    checkpoint = run_dir / CHECKPOINTS / BEST_CKPT
    if not checkpoint.is_file():
        raise OverlayUnavailable(f"{checkpoint} does not exist")
    data = ((metrics_or_none(run_dir) or {}).get("config") or {}).get("data")
    if not isinstance(data, dict) or not isinstance(data.get("source"), dict):
        raise OverlayUnavailable(f"{run_dir}/metrics.json names no data source (config.data.source)")
    try:
        predictor = VesselPredictor.from_checkpoint(checkpoint, channels_last=False)
        samples = test_photographs(data, count)
    except (CheckpointError, DataError, OSError, ValueError) as error:
        raise OverlayUnavailable(f"{type(error).__name__}: {error}") from error
    if not samples:
        raise OverlayUnavailable(f"the test split of {run_dir}'s data config holds no photograph")
    return [outcome_overlay(sample, predictor, max_side) for sample in samples]


def test_photographs(data: dict[str, Any], count: int) -> list[LoadedSample]:
    """The first ``count`` test photographs of a resolved data config (its ``source``, given ``root`` when the
    source is a partial, as the datamodule builds it)."""
    try:
        source = instantiate(data["source"])
        if isinstance(source, partial):
            source = source(root=data.get("root"))
    except Exception as error:  # hydra wraps whatever the source's constructor raised
        raise ValueError(f"cannot build the data source {data['source'].get('_target_')}: {error}") from error
    return source.load_test(count)


def outcome_overlay(sample: LoadedSample, predictor: VesselPredictor, max_side: int) -> OutcomeOverlay:
    network_image = predictor.at_training_scale(sample.image, sample.fov)
    kind = "tiles" if max(network_image.shape[:2]) > WHOLE_IMAGE_MAX_SIDE else "whole"
    probability = to_size(predictor.predict(network_image, kind), *sample.fov.shape)
    predicted = (probability >= predictor.threshold) & sample.fov
    truth = sample.mask.astype(bool) & sample.fov
    outcomes = {
        "true positive": predicted & truth,
        "false positive": predicted & ~truth,
        "false negative": ~predicted & truth,
    }
    iou = confusion(predicted, truth).iou
    drawn = (sample.image * PHOTOGRAPH_DIMMING).astype(np.uint8)
    drawn[~sample.fov] = 0
    for outcome, where in outcomes.items():
        drawn[where] = OUTCOME_COLOURS[outcome]
    picture = np.concatenate([sample.image, drawn], axis=1)
    return OutcomeOverlay(sample.name, iou, predictor.threshold, fit(picture, max_side))


def fit(picture: np.ndarray, max_side: int) -> np.ndarray:
    """The picture ``max_side`` pixels high, or ``2 * max_side`` wide when that is smaller (two panels side by
    side): shrunk smoothly, a small one enlarged pixel by pixel so that its vessels stay sharp."""
    height, width = picture.shape[:2]
    factor = min(max_side / height, 2 * max_side / width)
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    resampling = Image.Resampling.LANCZOS if factor < 1 else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(picture).resize(size, resampling))
