"""Tensors for the network from loaded samples: the transform runs per item, in the loader's workers."""

from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from .fov import fov_diameter
from .loading import LoadedSample
from .scale import ScaleRule, rescale


def select_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """ "rgb" keeps all three channels; "green" keeps the one that carries most vessel contrast."""
    if channels == "rgb":
        return image
    if channels == "green":
        return image[..., 1:2]
    raise ValueError(f"data.channels must be 'rgb' or 'green', got {channels!r}")


class SegmentationDataset(Dataset):
    """Items are dicts: image [C,H,W] float, mask [1,H,W] float, fov [1,H,W] bool, index, scale, and source: the
    position of the sample's set in ``source_names`` (0 with one set).

    With a ScaleRule only the image is rescaled (by ``scale``, from its FOV diameter); mask and FOV keep the
    photograph's own size, where the predictions are mapped back and scored.
    """

    def __init__(
        self,
        samples: list[LoadedSample],
        transform: A.Compose,
        repeats: int = 1,
        channels: str = "rgb",
        scale: ScaleRule | None = None,
        source_names: Sequence[str] = (),
    ):
        if repeats < 1:
            raise ValueError(f"data.train_repeats must be >= 1, got {repeats}")
        self.samples, self.transform, self.repeats, self.channels = samples, transform, repeats, channels
        self.scale = scale
        self.source_ids = [list(source_names).index(s.source) if source_names else 0 for s in samples]

    def __len__(self) -> int:
        return len(self.samples) * self.repeats

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index % len(self.samples)]
        out = self.transform(image=sample.image, mask=sample.mask.astype(np.uint8), fov=sample.fov.astype(np.uint8))
        fov = np.asarray(out["fov"]) > 0
        factor = self.scale.factor(fov_diameter(fov)) if self.scale is not None else 1.0
        image = select_channels(rescale(np.asarray(out["image"], dtype=np.float32), factor), self.channels)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.asarray(out["mask"], dtype=np.float32))[None],
            "fov": torch.from_numpy(fov)[None],
            "index": index % len(self.samples),
            "scale": factor,
            "source": self.source_ids[index % len(self.samples)],
        }
