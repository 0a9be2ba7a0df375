"""Photographs at the scale a network was trained at, measured by the diameter of the field of view (FOV).

A network learns vessels a few pixels wide; the same eye photographed by another camera, or stored at another
resolution, shows them two or three times wider or narrower, and the network then sees a world it never
learned. The FOV diameter is the natural ruler of a fundus photograph: rescaling each photograph so that its
FOV is as wide as the training photographs' puts its vessels back at the width the network knows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2  # installed with albumentations, whose resizing it does
import numpy as np

log = logging.getLogger(__name__)

# A FOV detected far too small (a dark photograph) must not enlarge the image beyond what memory allows.
MAX_UPSCALE = 4.0
# Shrinking further than this averages areas instead of interpolating bicubically (see rescale).
MIN_BICUBIC_FACTOR = 0.5
# Within this relative difference the photograph is left as it is: interpolating costs more thin-vessel
# detail than a few percent of scale.
DEFAULT_TOLERANCE = 0.05


@dataclass(frozen=True)
class ScaleRule:
    """How much to rescale a photograph of a given FOV diameter; no training diameter: native scale."""

    train_fov_diameter: float | None
    tolerance: float = DEFAULT_TOLERANCE

    def factor(self, fov_diameter: float) -> float:
        if self.train_fov_diameter is None:
            return 1.0
        factor = min(self.train_fov_diameter / fov_diameter, MAX_UPSCALE)
        return 1.0 if abs(factor - 1.0) <= self.tolerance else factor


def scaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    return max(1, round(height * factor)), max(1, round(width * factor))


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """The image resized by `factor` on both axes, for uint8 photographs and float images of any channel count.

    Bicubic, which keeps one-pixel vessels sharper than bilinear, down to half the size; below that, area
    averaging, since point sampling would alias the photograph's noise and its thinnest vessels. (DRIVE test
    photographs stored at 2x, 3x and 0.75x came within 0.015 of their native IoU this way; with area averaging to
    shrink and bilinear to enlarge they lost up to 0.036.)
    """
    if factor == 1.0:
        return image
    height, width = scaled_size(*image.shape[:2], factor)
    interpolation = cv2.INTER_AREA if factor < MIN_BICUBIC_FACTOR else cv2.INTER_CUBIC
    resized = cv2.resize(image, (width, height), interpolation=interpolation)
    return resized.reshape(height, width, *image.shape[2:])


def to_size(probabilities: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float32 HxW probability map resized to height x width, bicubic and clipped to [0, 1]; unchanged when
    it already fits.

    Bicubic rather than bilinear: on DRIVE, STARE and CHASE_DB1 enlarged 1-4x it raised Dice at full size in
    every case (by 0.001-0.006) and moved false positives / false negatives towards one; bicubic logits scored
    the same, and thresholding before enlarging won on DRIVE but lost on STARE and CHASE_DB1, and would leave a
    probability map that disagrees with the mask (benchmarks/rescaled.py --upsampling, docs/results.md).
    """
    if probabilities.shape[:2] == (height, width):
        return probabilities
    resized = cv2.resize(probabilities, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0, out=resized)


def training_scale(
    stored: float | None, override: float | None, tolerance: float, checkpoint: object
) -> tuple[ScaleRule, str]:
    """The rule for a checkpoint, and where its training diameter came from. A checkpoint written before the
    diameter was stored falls back to the photographs' own scale, with a warning that says how to fix it."""
    if override is not None:
        return ScaleRule(float(override), tolerance), "override"
    if stored is not None:
        return ScaleRule(float(stored), tolerance), "checkpoint"
    log.warning(
        "checkpoint %s stores no training FOV diameter (written before scale-aware prediction): "
        "photographs stay at their own scale; set train_fov_diameter=<pixels> to rescale them",
        checkpoint,
    )
    return ScaleRule(None, tolerance), "none (the checkpoint predates it): native scale"
