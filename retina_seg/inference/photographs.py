"""Loading inputs in DataLoader workers: decode, find or detect the FOV, read the truth, prepare normalisation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import numpy as np
from torch.utils.data import Dataset

from ..data.colour import ColourStandard
from ..data.errors import DataError
from ..data.fov import detect_fov, fallback_fov_diameter, fov_diameter
from ..data.io import read_fov, read_image, read_mask
from ..data.scale import ScaleRule, rescale
from .inputs import NameIndex
from .normalization import normalization_tables
from .settings import Tiling

log = logging.getLogger(__name__)
# predictions.json's `fov` for a photograph in which detection found no FOV (no dark border): its prediction covers
# the whole image, at the scale of fallback_fov_diameter.
NO_FOV_FOUND = "none found: whole image, FOV diameter taken as the image's diagonal"


@dataclass(eq=False)
class Photograph:
    """One input, ready for the network; made in a loader worker so decoding runs in parallel."""

    source: Path
    name: str
    image: np.ndarray  # uint8 HxWx3 as read
    # the image in the checkpoint's colour standard, if it has one, then rescaled to the training scale (auto),
    # resized (resize), or as read
    network_image: np.ndarray
    tables: np.ndarray  # [3, 256] normalisation of network_image (see normalization.py)
    plan_kind: str  # "whole", "tiles" or "resize"
    fov: np.ndarray  # bool HxW; predictions outside are zero
    fov_source: str
    fov_diameter: float  # pixels, at the input's size
    scale: float  # network_image / image (1.0 at native scale; per axis in resize mode it may differ)
    truth: np.ndarray | None  # bool HxW vessel mask, when ground truth was given


@dataclass
class FailedInput:
    source: Path
    error: str


@dataclass(frozen=True)
class MaskSources:
    """Where FOV and ground-truth masks come from; None: detect the FOV / no scoring."""

    fov: NameIndex | None = None
    truth: NameIndex | None = None
    detect_fov: bool = True
    truth_rule: str = "half"  # how ground-truth masks are binarised: the checkpoint's training rule


def _check_size(mask: np.ndarray, mask_path: Path, image: np.ndarray, image_path: Path) -> np.ndarray:
    if mask.shape != image.shape[:2]:
        raise DataError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height)"
        )
    return mask


class PhotographDataset(Dataset):
    """Items are Photograph, or FailedInput naming the file and the problem: one bad file stops nothing."""

    def __init__(
        self,
        images: list[Path],
        names: dict[Path, str],
        normalize: A.Normalize,
        tiling: Tiling,
        masks: MaskSources,
        scale: ScaleRule,
        colour: ColourStandard | None = None,
    ):
        """``colour``: the checkpoint's colour standard, applied to the whole photograph inside its FOV before it
        is resized; None: as photographed."""
        self.images, self.names, self.normalize = images, names, normalize
        self.tiling, self.masks, self.scale, self.colour = tiling, masks, scale, colour
        self.resize = A.Resize(tiling.resize_height, tiling.resize_width)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Photograph | FailedInput:
        path = self.images[index]
        try:
            return self._load(path)
        except DataError as error:
            return FailedInput(path, str(error))
        except Exception as error:  # an unforeseen problem with one file must not end the whole run
            return FailedInput(path, f"{path}: {type(error).__name__}: {error}")

    def _fov(self, path: Path, image: np.ndarray) -> tuple[np.ndarray, str]:
        if self.masks.fov is not None:
            mask_path = self.masks.fov.find(path)
            return _check_size(read_fov(mask_path), mask_path, image, path), str(mask_path)
        if self.masks.detect_fov:
            return detect_fov(image), "detected"
        return np.ones(image.shape[:2], dtype=bool), "whole image"

    def _fov_and_diameter(self, path: Path, image: np.ndarray) -> tuple[np.ndarray, str, float]:
        """The FOV, where it came from and its diameter. Where detection finds no dark border (the FOV is the
        whole image), or a FOV mask is empty, the diameter is the fallback one, with a warning that names the
        file and the scale it gets."""
        fov, fov_source = self._fov(path, image)
        detected_none = fov_source == "detected" and fov.all()
        if fov.any() and not detected_none:
            return fov, fov_source, fov_diameter(fov)
        diameter = fallback_fov_diameter(*image.shape[:2])
        factor = self.scale.factor(diameter) if self.tiling.scale_aware else 1.0
        log.warning(
            "%s: no field of view found (%s): FOV diameter taken as the image's diagonal, %.0f px, scale %.3f; "
            "give fov_masks=DIR to set it",
            path,
            "no dark border" if detected_none else f"{fov_source} is empty",
            diameter,
            factor,
        )
        return fov, NO_FOV_FOUND if detected_none else f"{fov_source} (empty)", diameter

    def _load(self, path: Path) -> Photograph:
        image = read_image(path)
        truth = None
        if self.masks.truth is not None:
            truth_path = self.masks.truth.find(path)
            truth = _check_size(read_mask(truth_path, self.masks.truth_rule), truth_path, image, path)
        fov, fov_source, diameter = self._fov_and_diameter(path, image)
        coloured = self.colour.apply(image, fov) if self.colour is not None else image
        if self.tiling.mode == "resize":
            network_image, factor = self.resize(image=coloured)["image"], self.tiling.resize_width / image.shape[1]
        else:
            factor = self.scale.factor(diameter) if self.tiling.scale_aware else 1.0
            network_image = rescale(coloured, factor)
        kind = self.tiling.plan_kind(*network_image.shape[:2])
        return Photograph(
            path,
            self.names[path],
            image,
            network_image,
            normalization_tables(self.normalize, network_image),
            kind,
            fov,
            fov_source,
            diameter,
            factor,
            truth,
        )
