"""Field-of-view (FOV) detection: the bright, roughly circular retina on the photograph's dark border."""

import cv2  # installed with albumentations
import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

# Noise in the dark border is smoothed away before thresholding (pixels, Gaussian sigma).
_SMOOTHING_SIGMA = 2
# A border exists when the darker Otsu class is at most this fraction of the brighter class's mean brightness
# (DRIVE: about 0.05; a photograph cropped inside its FOV: 0.5 or more).
_BORDER_CONTRAST = 0.25
# The cut lies this far from the dark class's mean towards the Otsu threshold: the FOV rim is darker than the
# retina's centre (vignetting), so the Otsu threshold itself cuts into the rim.
_CUT_FRACTION = 0.5


def _otsu_threshold(histogram: np.ndarray) -> int:
    """Grey level maximising the between-class variance of a 256-bin histogram (class 0: levels <= t)."""
    counts = histogram.astype(np.float64)
    levels = np.arange(counts.size)
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * levels)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    return int(np.argmax(weight_low * weight_high * (mean_low - mean_high) ** 2))


def _histogram(grey: np.ndarray) -> np.ndarray:
    """int64 counts of the 256 levels of a uint8 image; cv2's float32 counts are exact below 2**24 pixels."""
    if grey.size >= 2**24:
        return np.bincount(grey.ravel(), minlength=256)
    return cv2.calcHist([grey], [0], None, [256], [0, 256]).ravel().astype(np.int64)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == sizes.argmax()


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the image border (dark lesions, the pupil reflex's shadow).

    Done with one labelling pass rather than ndimage.binary_fill_holes, whose iterative dilation is slow on
    8-megapixel photographs.
    """
    labels, _ = ndimage.label(~mask)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, border[border > 0])
    return ~outside


def detect_fov(image: np.ndarray) -> np.ndarray:
    """Bool HxW field of view of a uint8 HxWx3 photograph; all True when it has no dark border.

    Brightness is the per-pixel maximum over channels (the red channel stays bright to the FOV rim), smoothed;
    the cut sits between the dark border and the Otsu threshold; the largest bright component, with its holes
    filled, is the FOV.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"detect_fov needs a uint8 HxWx3 image, got {image.dtype} {image.shape}")
    channel_max = cv2.max(cv2.max(image[..., 0], image[..., 1]), image[..., 2])  # numpy's max(axis=2): 15x slower
    brightness = np.asarray(Image.fromarray(channel_max).filter(ImageFilter.GaussianBlur(_SMOOTHING_SIGMA)))
    histogram = _histogram(brightness)
    threshold = _otsu_threshold(histogram)
    levels = np.arange(256)
    dark, bright = histogram[: threshold + 1], histogram[threshold + 1 :]
    if bright.sum() == 0:
        return np.ones(brightness.shape, dtype=bool)
    dark_mean = (dark * levels[: threshold + 1]).sum() / max(dark.sum(), 1)
    bright_mean = (bright * levels[threshold + 1 :]).sum() / bright.sum()
    if dark_mean > _BORDER_CONTRAST * bright_mean:
        return np.ones(brightness.shape, dtype=bool)
    cut = dark_mean + _CUT_FRACTION * (threshold - dark_mean)
    return _fill_holes(_largest_component(brightness > cut))


def fallback_fov_diameter(height: int, width: int) -> float:
    """The FOV diameter assumed for a photograph in which none is found: its diagonal.

    A photograph with no dark border is, in practice, a rectangle cut from inside the retina's circle; the
    largest such rectangle has the circle's diameter as its diagonal, so the diagonal is the smallest FOV the
    photograph can come from (the longer side, used before, is smaller still and enlarged the vessels more).
    """
    return float(np.hypot(height, width))


def fov_diameter(fov: np.ndarray) -> float:
    """The field of view's diameter in pixels: the longer side of its bounding box.

    Fundus cameras crop the circular field at the top and bottom (STARE, HRF) far more often than at the sides,
    so the longer side is the circle's diameter; an all-True FOV (no border found) gives the image's longer side.
    """
    if fov.ndim != 2 or not fov.any():
        raise ValueError(f"fov_diameter needs a non-empty 2-D field of view, got shape {fov.shape}")
    rows, cols = np.flatnonzero(fov.any(axis=1)), np.flatnonzero(fov.any(axis=0))
    return float(max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1)
