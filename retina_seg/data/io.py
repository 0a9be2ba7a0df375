"""Read images and binary masks into numpy arrays, turning every file problem into a DataError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from retina_seg.data.errors import DataError

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_COLOUR_MODES = {"RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA", "LA"}


def _load(path: Path) -> Image.Image:
    """Open and fully decode, because PIL decodes lazily and a truncated file only fails on load."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot open ({exc})") from None
    try:
        with image:
            image.load()
            return image.copy()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: truncated or corrupt image data ({exc})") from None


def _sixteen_to_eight(image: Image.Image) -> np.ndarray:
    """Scale 16-bit grey to 0..255 so thresholds and display work the same as for 8-bit files."""
    values = np.asarray(image, dtype=np.int64).clip(0, 65535)
    return ((values * 255 + 32767) // 65535).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read a photograph as uint8 HxWx3 RGB whatever its storage (grey, alpha, palette, 16-bit)."""
    path = Path(path)
    image = _load(path)
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = _sixteen_to_eight(image)
    elif image.mode in {"L", "1"}:
        grey = np.asarray(image.convert("L"))
    elif image.mode in _COLOUR_MODES:
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    else:
        raise DataError(f"{path}: unsupported pixel mode {image.mode!r} for an image")
    return np.repeat(grey[:, :, None], 3, axis=2)


def _mask_values(image: Image.Image, path: Path) -> np.ndarray:
    """Raw values of a mask; palette indices, not palette colours, since DRIVE GIFs store labels there."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return np.asarray(image, dtype=np.int64)
    if image.mode in {"L", "1", "P"}:
        return np.asarray(image.convert("L") if image.mode == "1" else image)
    if image.mode in {"LA", "PA"}:
        return np.asarray(image)[:, :, 0]
    if image.mode in {"RGB", "RGBA", "RGBX"}:
        rgb = np.asarray(image)[:, :, :3]
        if not (np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])):
            raise DataError(f"{path}: not a mask: a colour image (its RGB channels differ)")
        return rgb[:, :, 0]
    raise DataError(f"{path}: unsupported pixel mode {image.mode!r} for a mask")


# How a mask file's values become vessel / not vessel. "half": above half of its scale (0/1, 8-bit or 16-bit,
# told by its maximum), so the grey edge a resized mask gets counts by how much of a vessel it covers.
# "nonzero": every non-zero pixel is a vessel, the reference project's rule (`mask[mask > 0] = 1`).
MASK_RULES = ("half", "nonzero")


def check_mask_rule(rule: str, key: str = "data.source.mask_rule") -> str:
    if rule not in MASK_RULES:
        raise DataError(f"{key}={rule!r} must be one of {MASK_RULES}")
    return rule


def binarise(values: np.ndarray, rule: str = "half") -> np.ndarray:
    """A mask's raw values as bool HxW, vessel or not by ``rule`` (see MASK_RULES)."""
    if check_mask_rule(rule) == "nonzero":
        return values > 0
    largest = values.max(initial=0)
    return values > (0 if largest <= 1 else 127 if largest <= 255 else 32767)


def read_mask(path: str | Path, rule: str = "half") -> np.ndarray:
    """Read a binary mask as bool HxW, binarised by ``rule`` (see MASK_RULES)."""
    path = Path(path)
    return binarise(_mask_values(_load(path), path), rule)


def read_fov(path: str | Path) -> np.ndarray:
    """An FOV mask: inside where above half of its scale."""
    return read_mask(path, "half")
