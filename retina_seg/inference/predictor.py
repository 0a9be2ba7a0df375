"""A trained network turned into vessel probability maps for photographs of any size."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.colour import ColourStandard
from ..data.datasets import select_channels
from ..data.fov import fov_diameter
from ..data.scale import ScaleRule, rescale
from ..models.unet import flip_averaged, vessel_probability
from ..records.bundle import load_network
from ..records.checkpoint import CheckpointError, RunInfo
from .normalization import build_normalize, normalization_tables, normalized_crop
from .tiling import BlendedMap, TilePlan, Window

CHANNELS = ("rgb", "green")


class VesselPredictor:
    """The network with the normalisation, channels and threshold it was trained with."""

    def __init__(
        self,
        net: nn.Module,
        info: RunInfo,
        threshold: float | None = None,
        batch_size: int = 4,
        channels_last: bool = True,
        flip_tta: bool | None = None,
        device: str = "cpu",
    ):
        self.device = torch.device(device)
        self.net, self.info = net.eval().to(self.device), info
        self.normalize = build_normalize(info.normalize)
        self.channels = info.channels
        self.colour = ColourStandard.from_payload(info.colour)
        if self.channels not in CHANNELS:
            raise ValueError(f"channels must be one of {CHANNELS}, got {self.channels!r}")
        if info.eval_transforms:
            # Evaluation applies them; prediction applies only the normalisation, so its maps would differ.
            raise ValueError(
                f"trained with eval transforms {sorted(info.eval_transforms)} "
                "(augmentation.eval), which prediction does not apply; evaluate it with "
                "retina-seg-eval instead"
            )
        self.threshold = float(info.threshold if threshold is None else threshold)
        self.batch_size, self.channels_last = batch_size, channels_last
        self.flip_tta = info.flip_tta if flip_tta is None else flip_tta
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)

    @classmethod
    def from_checkpoint(cls, path: str | Path, **options: Any) -> VesselPredictor:
        """From a checkpoint file or a bundled model (``bundled:<name>``)."""
        net, info = load_network(path)
        try:
            return cls(net, info, **options)
        except ValueError as error:
            raise CheckpointError(f"checkpoint {path}: {error}") from error

    @property
    def min_side(self) -> int:
        return getattr(self.net, "min_side", 1)

    @property
    def stride(self) -> int:
        """Total pooling stride: tiles starting on multiples of it pool exactly as the whole image does."""
        return 2 ** (getattr(self.net, "depth", 1) - 1)

    def plan(self, image: np.ndarray, kind: str, tile_size: int, tile_overlap: int) -> TilePlan:
        """Windows for `kind` ("tiles": sliding windows; otherwise the whole, possibly resized, image)."""
        height, width = image.shape[:2]
        if min(height, width) < self.min_side:
            raise ValueError(
                f"image of {width}x{height} pixels is smaller than the network's minimum side {self.min_side}"
            )
        if kind == "tiles":
            return TilePlan.tiles(height, width, tile_size, tile_overlap, self.stride)
        return TilePlan.whole(height, width)

    def coloured(self, image: np.ndarray, fov: np.ndarray) -> np.ndarray:
        """The whole photograph in the colours the network was trained on: mapped to the checkpoint's colour
        standard inside ``fov``, or as it is when the checkpoint has none. Done before any resizing or tiling."""
        return self.colour.apply(image, fov) if self.colour is not None else image

    def at_training_scale(self, image: np.ndarray, fov: np.ndarray) -> np.ndarray:
        """The photograph as the network was trained to see it: in its colours (coloured), rescaled so that its FOV
        is as wide as the checkpoint's training FOV diameter (a checkpoint without one: as it is)."""
        factor = ScaleRule(self.info.fov_diameter).factor(fov_diameter(fov)) if fov.any() else 1.0
        return rescale(self.coloured(image, fov), factor)

    def normalization_tables(self, image: np.ndarray) -> np.ndarray:
        return normalization_tables(self.normalize, image)

    def network_input(self, image: np.ndarray, tables: np.ndarray, window: Window) -> np.ndarray:
        """float32 [C, h, w] of one window: normalised as training normalised the whole image."""
        crop = normalized_crop(image, tables, window.top, window.left, window.height, window.width)
        return select_channels(crop, self.channels).transpose(2, 0, 1)

    def whole_input(self, image: np.ndarray) -> np.ndarray:
        """float32 [C, H, W]: the whole image as the network (or an export of it) takes it."""
        window = TilePlan.whole(*image.shape[:2]).windows[0]
        return self.network_input(image, self.normalization_tables(image), window)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        if self.channels_last:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        probs = flip_averaged(self.net, tensor) if self.flip_tta else vessel_probability(self.net(tensor))
        return probs[:, 0].float().cpu().numpy()

    def probabilities(
        self, images: list[np.ndarray], tables: list[np.ndarray], plans: list[TilePlan]
    ) -> list[np.ndarray]:
        """float32 probability maps of several images; windows of one shape share forward passes."""
        maps = [BlendedMap(plan) for plan in plans]
        jobs = [(index, window) for index, plan in enumerate(plans) for window in plan.windows]
        jobs.sort(key=lambda job: (job[1].height, job[1].width))
        for _, same_shape in groupby(jobs, key=lambda job: (job[1].height, job[1].width)):
            same_shape = list(same_shape)
            for start in range(0, len(same_shape), self.batch_size):
                chunk = same_shape[start : start + self.batch_size]
                batch = np.stack([self.network_input(images[i], tables[i], window) for i, window in chunk])
                for (index, window), values in zip(chunk, self._forward(batch)):
                    maps[index].add(window, values)
        return [blended.result() for blended in maps]

    def predict(
        self, image: np.ndarray, kind: str = "whole", tile_size: int = 512, tile_overlap: int = 128
    ) -> np.ndarray:
        """Probability map of one uint8 HxWx3 image at its own size ("whole" or "tiles"), no FOV applied."""
        plan = self.plan(image, kind, tile_size, tile_overlap)
        return self.probabilities([image], [self.normalization_tables(image)], [plan])[0]
