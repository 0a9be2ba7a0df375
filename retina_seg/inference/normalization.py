"""The training normalisation (an albumentations Normalize) as per-channel lookup tables, applied per tile.

For uint8 images albumentations itself normalises through a 256-entry table per channel, computed from the whole
image's statistics in the per-image modes. Building that table once per image, from the image's histogram, and
applying it tile by tile gives the same numbers as normalising the whole image, without a float copy of it.
"""

from collections.abc import Mapping

import albumentations as A
import numpy as np
from hydra.utils import instantiate

NORMALIZE_TARGET = "albumentations.Normalize"
_EPS = 1e-4  # albumentations' epsilon in the per-image modes
_CLIP = 20.0  # albumentations clips these modes' output to [-20, 20] (all but min_max_per_channel)


class NormalizationError(ValueError):
    """A normalisation config that cannot be rebuilt; the message names what is wrong."""


def build_normalize(config: Mapping) -> A.Normalize:
    """Rebuild the checkpoint's Normalize; any other target is refused (a checkpoint must not run code)."""
    target = config.get("_target_") if isinstance(config, Mapping) else None
    if target not in (NORMALIZE_TARGET, f"{A.Normalize.__module__}.Normalize"):
        raise NormalizationError(f"normalize: expected _target_ {NORMALIZE_TARGET}, got {target!r}")
    try:
        return instantiate(dict(config), _recursive_=False)  # nested _target_ entries are never called
    except Exception as error:  # hydra wraps the constructor's own error in its own type
        raise NormalizationError(f"normalize: cannot rebuild {dict(config)}: {error}") from error


def _standard_tables(normalize: A.Normalize) -> np.ndarray:
    """Pointwise mode: run the Normalize itself on every uint8 value of every channel."""
    probe = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    return np.ascontiguousarray(normalize(image=probe)["image"][:, 0, :].T, dtype=np.float32)


def _moments(histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) standard deviation of each row of a [K, 256] histogram."""
    levels = np.arange(256, dtype=np.float64)
    counts = histogram.astype(np.float64)
    total = counts.sum(axis=1)
    mean = counts @ levels / total
    variance = (counts * (levels[None] - mean[:, None]) ** 2).sum(axis=1) / total
    return mean, np.sqrt(variance)


def _extremes(histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    present = histogram > 0
    return present.argmax(axis=1).astype(np.float64), (255 - present[:, ::-1].argmax(axis=1)).astype(np.float64)


def _per_image_tables(mode: str, histogram: np.ndarray) -> np.ndarray:
    """albumentations' per-image formulas, from the [3, 256] per-channel histogram."""
    pooled = mode in ("image", "min_max")
    counts = histogram.sum(axis=0, keepdims=True) if pooled else histogram
    if mode in ("image", "image_per_channel"):
        offset, spread = _moments(counts)
        spread = spread + _EPS
    else:
        offset, high = _extremes(counts)
        spread = high - offset + _EPS
    tables = (np.arange(256.0)[None] - offset[:, None]) / spread[:, None]
    if mode != "min_max_per_channel":
        tables = tables.clip(-_CLIP, _CLIP)
    return np.ascontiguousarray(np.broadcast_to(tables, (3, 256)), dtype=np.float32)


def channel_histogram(image: np.ndarray) -> np.ndarray:
    """[3, 256] pixel counts per channel of a uint8 HxWx3 image."""
    return np.stack([np.bincount(image[..., c].ravel(), minlength=256) for c in range(3)])


def normalization_tables(normalize: A.Normalize, image: np.ndarray) -> np.ndarray:
    """[3, 256] float32: the value each uint8 level of each channel takes after Normalize on this image."""
    mode = normalize.normalization
    if mode == "standard":
        return _standard_tables(normalize)
    if mode in ("image", "image_per_channel", "min_max", "min_max_per_channel"):
        return _per_image_tables(mode, channel_histogram(image))
    raise NormalizationError(f"normalize: unsupported normalization mode {mode!r}")


def normalized_crop(image: np.ndarray, tables: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """float32 HxWx3 of one window of the image, normalised as the whole image would be."""
    crop = image[top : top + height, left : left + width]
    return np.stack([tables[c][crop[..., c]] for c in range(3)], axis=-1)
