"""Where images come from: each source yields loaded train/val/test splits, validated before training."""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TypeVar

from ..config_rules import is_number
from .errors import DataError
from .io import check_mask_rule
from .layouts import chase_db1_samples, drive_samples, hrf_samples, kaggle_samples, stare_samples
from .loading import LoadedSample, load_samples
from .splits import MODES, split_train_val
from .synthetic import synthetic_samples

T = TypeVar("T")


@dataclass
class Splits:
    train: list[LoadedSample]
    val: list[LoadedSample]
    test: list[LoadedSample]


class SyntheticSource:
    """Generated fundus photographs with exact vessel and FOV masks: the embedded default."""

    def __init__(
        self, n_train: int = 16, n_val: int = 4, n_test: int = 4, height: int = 160, width: int = 160, seed: int = 0
    ):
        self.counts = (n_train, n_val, n_test)
        self.height, self.width, self.seed = height, width, seed

    def load(self) -> Splits:
        made = synthetic_samples(sum(self.counts), self.height, self.width, self.seed)
        n_train, n_val, _ = self.counts
        return Splits(made[:n_train], made[n_train : n_train + n_val], made[n_train + n_val :])

    def load_test(self, limit: int) -> list[LoadedSample]:
        """The first ``limit`` test photographs (the report's pictures of a trained run)."""
        return self.load().test[:limit]


# Every photograph of the set in the test split: for evaluating a model trained elsewhere.
ALL = "all"


class _FileSource:
    """A data set on disk: a train pool split into train/val, and a fixed test split (or split=all: everything
    is test)."""

    layout = staticmethod(kaggle_samples)

    def __init__(
        self,
        root: str | Path,
        split: str = "grouped",
        n_val: int = 20,
        split_seed: int = 0,
        limit_train: int | None = None,
        limit_test: int | None = None,
        detect_fov: bool = True,
        mask_rule: str = "half",
    ):
        if split not in (*MODES, ALL):
            raise ValueError(f"data.source.split={split!r} must be one of {(*MODES, ALL)}")
        self.root, self.split, self.n_val, self.split_seed = Path(root), split, n_val, split_seed
        self.limit_train, self.limit_test, self.detect_fov = limit_train, limit_test, detect_fov
        self.mask_rule = check_mask_rule(mask_rule)

    def load(self) -> Splits:
        """``limit_*`` keep only the first images of a split (quick checks on a few real images); with
        ``split=all`` every photograph is a test image.

        Every problem of every split is reported in one DataError, not the first split's alone."""
        problems: list[str] = []
        pool = _collect(problems, lambda: self.layout(self.root, "train"))
        test = _collect(problems, lambda: self.layout(self.root, "test"))
        if self.split == ALL and pool is not None and test is not None:
            pool, test = [], pool + test
        split = None
        if pool:
            split = _collect(
                problems, lambda: split_train_val(pool[: self.limit_train], self.n_val, self.split, self.split_seed)
            )
        elif pool is not None:
            split = ([], [])
        train, val = split if split is not None else (None, None)
        test = test[: self.limit_test] if test is not None else None
        loaded = [
            _collect(problems, partial(load_samples, samples, self.detect_fov, self.mask_rule))
            if samples is not None
            else None
            for samples in (train, val, test)
        ]
        if problems:
            raise DataError("\n".join(dict.fromkeys(problems)))  # a missing root is every split's problem
        return Splits(*loaded)

    def load_test(self, limit: int) -> list[LoadedSample]:
        """The first ``limit`` photographs of the test split alone, without reading the train pool: a few
        pictures of a trained run's predictions (the report page)."""
        test = self.layout(self.root, "test")
        if self.split == ALL:
            test = self.layout(self.root, "train") + test
        return load_samples(test[: min(limit, self.limit_test or limit)], self.detect_fov, self.mask_rule)


def _collect(problems: list[str], step: Callable[[], T]) -> T | None:
    """The step's result, or None with its DataError's message added to ``problems``."""
    try:
        return step()
    except DataError as error:
        problems.append(str(error))
        return None


class KaggleSource(_FileSource):
    """The Kaggle "Retina Blood Vessel" set (DRIVE resized to 512x512, train images 4 per photograph)."""

    layout = staticmethod(kaggle_samples)


class DriveSource(_FileSource):
    """DRIVE at its native 565x584 with FOV masks."""

    layout = staticmethod(drive_samples)


class StareSource(_FileSource):
    """STARE's 20 photographs (700x605, FOV detected); test: the second half by number."""

    layout = staticmethod(stare_samples)


class ChaseDb1Source(_FileSource):
    """CHASE_DB1's 28 photographs (999x960, both eyes of 14 children, FOV detected); test: children 11-14."""

    layout = staticmethod(chase_db1_samples)


class HrfSource(_FileSource):
    """HRF's 45 photographs (3504x2336, with FOV masks); test: numbers 06-15 of each category."""

    layout = staticmethod(hrf_samples)


# A source's name ends metric keys (val_IoU_stare): lower-case letters, digits and underscores.
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*")


class MultiSource:
    """Several sets trained on together, each split as its own config splits it; every sample is tagged with its
    source's name, and each source has a weight: its share of the training draws (RetinaDataModule's sampler).

    ``sources``: name -> source (or a partial that builds one); ``weights``: name -> weight > 0 for some of them,
    the others weigh 1.
    """

    def __init__(self, sources: Mapping[str, object], weights: Mapping[str, float] | None = None):
        if not sources:
            raise ValueError("data.source.sources names no data set: keep at least one")
        for name in sources:
            if not SOURCE_NAME.fullmatch(name):
                raise ValueError(
                    f"data.source.sources.{name}: a source's name must be lower-case letters, digits and "
                    "underscores (it ends metric names such as val_IoU_<name>)"
                )
        self.sources = {name: source if hasattr(source, "load") else source() for name, source in sources.items()}
        self.weights = {name: 1.0 for name in sources}
        for name, weight in (weights or {}).items():
            if name not in sources:
                raise ValueError(
                    f"data.source.weights.{name}: no source {name!r} in data.source.sources "
                    f"(sources: {', '.join(sources)})"
                )
            if not (is_number(weight) and math.isfinite(weight) and weight > 0):
                raise ValueError(f"data.source.weights.{name}={weight!r} must be a number > 0")
            self.weights[name] = float(weight)

    @property
    def names(self) -> list[str]:
        return list(self.sources)

    def load(self) -> Splits:
        """Every source's splits, concatenated in the sources' order; every problem of every source in one
        DataError, each line naming its source."""
        problems: list[str] = []
        loaded = {name: _collect(problems, _named(name, source.load)) for name, source in self.sources.items()}
        if problems:
            raise DataError("\n".join(problems))
        return Splits(
            *(
                [replace(sample, source=name) for name, splits in loaded.items() for sample in getattr(splits, split)]
                for split in ("train", "val", "test")
            )
        )

    def load_test(self, limit: int) -> list[LoadedSample]:
        """A few test photographs of every source, ``limit`` in all."""
        each = math.ceil(limit / len(self.sources))
        return [
            replace(sample, source=name) for name, source in self.sources.items() for sample in source.load_test(each)
        ][:limit]


def _named(name: str, step: Callable[[], T]) -> Callable[[], T]:
    """The step, its DataError's message prefixed with the source's name."""

    def named() -> T:
        try:
            return step()
        except DataError as error:
            raise DataError(f"data.source.sources.{name}: {error}") from error

    return named
