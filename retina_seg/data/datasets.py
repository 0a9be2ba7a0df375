"""Tensors for the network from loaded samples: the transform runs per item, in the loader's workers."""
import numpy as np
import torch
from torch.utils.data import Dataset

import albumentations as A

from .loading import LoadedSample


def select_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """"rgb" keeps all three channels; "green" keeps the one that carries most vessel contrast."""
    if channels == "rgb":
        return image
    if channels == "green":
        return image[..., 1:2]
    raise ValueError(f"data.channels must be 'rgb' or 'green', got {channels!r}")


class SegmentationDataset(Dataset):
    """Items are dicts: image [C,H,W] float, mask [1,H,W] float, fov [1,H,W] bool, index."""

    def __init__(self, samples: list[LoadedSample], transform: A.Compose, repeats: int = 1,
                 channels: str = "rgb"):
        if repeats < 1:
            raise ValueError(f"data.train_repeats must be >= 1, got {repeats}")
        self.samples, self.transform, self.repeats, self.channels = samples, transform, repeats, channels

    def __len__(self) -> int:
        return len(self.samples) * self.repeats

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index % len(self.samples)]
        out = self.transform(image=sample.image, mask=sample.mask.astype(np.uint8),
                             fov=sample.fov.astype(np.uint8))
        image = select_channels(np.asarray(out["image"], dtype=np.float32), self.channels)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.asarray(out["mask"], dtype=np.float32))[None],
            "fov": torch.from_numpy(np.asarray(out["fov"]) > 0)[None],
            "index": index % len(self.samples),
        }
