"""The LightningDataModule: one place that turns a data source and an augmentation config into loaders."""

from collections.abc import Mapping
from statistics import median

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from .datasets import SegmentationDataset
from .errors import DataError
from .fov import fov_diameter
from .scale import ScaleRule
from .sources import Splits
from .transforms import build_pipeline


class RetinaDataModule(pl.LightningDataModule):
    """Loads and validates every split once (bad data fails before training), then serves loaders."""

    def __init__(
        self,
        source,
        root: str | None = None,
        augmentation: Mapping | None = None,
        batch_size: int = 4,
        num_workers: int = 0,
        train_repeats: int = 1,
        channels: str = "rgb",
        pin_memory: bool = False,
    ):
        """``source`` loads the splits; for data sets on disk it is a partial that still needs ``root``
        (kept at the top of the data config so ``data.root=...`` is the override users type)."""
        super().__init__()
        augmentation = augmentation or {}
        self.source = source(root=root) if root is not None else source
        self.train_pipeline = build_pipeline(augmentation.get("train"), augmentation.get("normalize"))
        self.eval_pipeline = build_pipeline(augmentation.get("eval"), augmentation.get("normalize"))
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.train_repeats, self.channels = train_repeats, channels
        self.splits: Splits | None = None
        # Evaluation of a checkpoint trained elsewhere sets this: val/test photographs go to its training scale.
        self.eval_scale: ScaleRule | None = None

    @property
    def in_channels(self) -> int:
        return 1 if self.channels == "green" else 3

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            self.splits = self.source.load()
        if stage == "fit" and not self.splits.train:
            raise DataError(
                "no training photographs: data.source.split=all puts every photograph in the test "
                "split, for evaluating a model trained elsewhere (retina-seg-eval)"
            )

    def fov_diameters(self, split: str) -> list[float]:
        """FOV diameters of a split's photographs as evaluation shows them to the network (eval transforms applied,
        before any rescaling)."""
        self.setup()
        samples = getattr(self.splits, split)
        seen = (self.eval_pipeline(image=s.image, fov=s.fov.astype(np.uint8))["fov"] for s in samples)
        return [fov_diameter(np.asarray(fov) > 0) for fov in seen]

    def training_fov_diameter(self) -> float:
        """Median FOV diameter of the training photographs: the scale prediction later puts every photograph at."""
        return float(median(self.fov_diameters("train")))

    def dataset(self, split: str) -> SegmentationDataset:
        self.setup()
        samples = getattr(self.splits, split)
        if split == "train":
            return SegmentationDataset(samples, self.train_pipeline, self.train_repeats, self.channels)
        return SegmentationDataset(samples, self.eval_pipeline, 1, self.channels, self.eval_scale)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
            drop_last=shuffle and len(self.dataset(split)) > batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", 1, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", 1, shuffle=False)
