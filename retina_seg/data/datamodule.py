"""The LightningDataModule: one place that turns a data source and an augmentation config into loaders."""

from collections.abc import Mapping
from statistics import median

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader, WeightedRandomSampler

from .colour import colour_standard, standardize_sample
from .datasets import SegmentationDataset
from .errors import DataError
from .fov import fov_diameter
from .geometry import to_fov_geometry
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
        fov_diameter: int | None = None,
        colour: str | None = None,
    ):
        """``source`` loads the splits; for data sets on disk it is a partial that still needs ``root``
        (kept at the top of the data config so ``data.root=...`` is the override users type).

        ``fov_diameter``: every training photograph is cropped to its FOV and resized to this FOV diameter once,
        at load (geometry.py); validation and test photographs keep their size and are evaluated as prediction
        works, rescaled to it and scored at their own size. None: every photograph at its own scale."""
        super().__init__()
        augmentation = augmentation or {}
        self.source = source(root=root) if root is not None else source
        self.train_pipeline = build_pipeline(augmentation.get("train"), augmentation.get("normalize"))
        self.eval_pipeline = build_pipeline(augmentation.get("eval"), augmentation.get("normalize"))
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.train_repeats, self.channels = train_repeats, channels
        self.splits: Splits | None = None
        self.fov_diameter = fov_diameter
        self.colour_standard = colour_standard(colour)
        # Val/test photographs go to the training scale; evaluation of a checkpoint sets it to that checkpoint's.
        self.eval_scale: ScaleRule | None = ScaleRule(float(fov_diameter)) if fov_diameter is not None else None

    @property
    def in_channels(self) -> int:
        return 1 if self.channels == "green" else 3

    @property
    def source_names(self) -> list[str]:
        """The sets trained on together (sources.MultiSource), each scored on its own too; empty for one set."""
        return list(getattr(self.source, "names", []))

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            splits = self.source.load()
            if self.colour_standard is not None:
                for split in ("train", "val", "test"):
                    samples = getattr(splits, split)
                    setattr(splits, split, [standardize_sample(s, self.colour_standard) for s in samples])
            if self.fov_diameter is not None:
                splits.train = [to_fov_geometry(sample, self.fov_diameter) for sample in splits.train]
            self.splits = splits
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
        """The scale prediction later puts every photograph at: ``fov_diameter`` where training photographs were
        resized to it, else the median FOV diameter of the training photographs."""
        if self.fov_diameter is not None:
            return float(self.fov_diameter)
        return float(median(self.fov_diameters("train")))

    def dataset(self, split: str) -> SegmentationDataset:
        self.setup()
        samples = getattr(self.splits, split)
        if split == "train":
            return SegmentationDataset(
                samples, self.train_pipeline, self.train_repeats, self.channels, source_names=self.source_names
            )
        return SegmentationDataset(
            samples, self.eval_pipeline, 1, self.channels, self.eval_scale, source_names=self.source_names
        )

    def training_draw_weights(self) -> list[float] | None:
        """Each training item's chance of a draw, so that each source's share of the draws is its weight's share
        of all the weights; None with one set (every photograph equally often)."""
        weights = getattr(self.source, "weights", None)
        if not weights or len(weights) == 1:
            return None
        self.setup()
        counts = {name: sum(s.source == name for s in self.splits.train) for name in weights}
        return [weights[s.source] / counts[s.source] for s in self.splits.train] * self.train_repeats

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        draws = self.training_draw_weights() if shuffle else None
        sampler = WeightedRandomSampler(draws, num_samples=len(draws), replacement=True) if draws else None
        return DataLoader(
            self.dataset(split),
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
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
