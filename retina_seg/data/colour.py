"""Each photograph's colour standardised inside its field of view (FOV), so that every camera's photographs reach
the network with one brightness, colour balance and contrast.

Fundus cameras differ most in colour: inside the FOV the green mean runs from 60 (CHASE_DB1) to 106 (STARE) of
255 and the blue mean from 10 to 59 (benchmarks/camera_statistics.py). A fixed normalisation passes that spread to
the network. Here each channel is mapped linearly so that its mean and standard deviation inside the photograph's
FOV, measured over the whole photograph (never per crop), become fixed targets; the result is a uint8 photograph
again, so every later step (crops, augmentation, Normalize) works as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .loading import LoadedSample

# The option's values (data.colour): null keeps each photograph's colour as photographed.
FOV_STANDARDIZED = "fov_standardized"
COLOUR_MODES = (FOV_STANDARDIZED,)

# The targets (RGB, 0-255): the per-photograph means and standard deviations inside the FOV of the DRIVE, STARE
# and CHASE_DB1 training photographs at their own size, averaged over each set and then over the three sets
# (docs/results.md, "Colour standardisation").
TARGET_MEAN = (181.0, 88.0, 33.0)
TARGET_STD = (37.5, 24.0, 12.5)

# A channel whose standard deviation inside the FOV is below this (grey levels) holds no pattern to stretch: it is
# only shifted to the target mean, so that noise in a flat channel is not amplified into structure.
FLAT_CHANNEL_STD = 1.0


@dataclass(frozen=True)
class ColourStandard:
    """Per channel, the mean and standard deviation (0-255) every photograph is mapped to inside its FOV."""

    mean: tuple[float, ...] = TARGET_MEAN
    std: tuple[float, ...] = TARGET_STD
    mode: str = FOV_STANDARDIZED

    def to_payload(self) -> dict[str, Any]:
        """Plain data for the checkpoint (records.checkpoint.RunInfo.colour)."""
        return {"mode": self.mode, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_payload(cls, payload: dict[str, Any] | None) -> ColourStandard | None:
        """The standard a checkpoint recorded; None (no entry: a checkpoint from before the option, or off)."""
        if not payload:
            return None
        if payload.get("mode") not in COLOUR_MODES:
            raise ValueError(f"colour mode {payload.get('mode')!r} is not one of {list(COLOUR_MODES)}")
        return cls(tuple(map(float, payload["mean"])), tuple(map(float, payload["std"])), payload["mode"])

    def apply(self, image: np.ndarray, fov: np.ndarray) -> np.ndarray:
        """The uint8 HxWx3 photograph with each channel's mean and std inside ``fov`` moved to the targets, black
        outside the FOV (its border differs between cameras and says nothing about vessels). A photograph with no
        FOV pixel is returned unchanged."""
        if not fov.any():
            return image
        inside = image[fov].astype(np.float64)
        mean, std = inside.mean(axis=0), inside.std(axis=0)
        gain = np.where(std < FLAT_CHANNEL_STD, 1.0, np.asarray(self.std) / np.maximum(std, FLAT_CHANNEL_STD))
        mapped = (image.astype(np.float32) - mean.astype(np.float32)) * gain.astype(np.float32)
        mapped += np.asarray(self.mean, dtype=np.float32)
        standardized = np.clip(np.rint(mapped), 0, 255).astype(np.uint8)
        standardized[~fov] = 0
        return standardized


def colour_standard(mode: str | None) -> ColourStandard | None:
    """The standard a data config's ``colour`` names; None keeps photographs as they are."""
    if mode is None:
        return None
    if mode not in COLOUR_MODES:
        raise ValueError(f"data.colour={mode!r} must be null or one of {list(COLOUR_MODES)}")
    return ColourStandard()


def standardize_sample(sample: LoadedSample, standard: ColourStandard) -> LoadedSample:
    return replace(sample, image=standard.apply(sample.image, sample.fov))
