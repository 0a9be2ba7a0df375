"""Decode a list of samples into arrays, checking them together so one run reports every bad file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from retina_seg.data.errors import DataError
from retina_seg.data.fov import detect_fov
from retina_seg.data.io import check_mask_rule, read_fov, read_image, read_mask
from retina_seg.data.layouts import Sample

_THREADS = 4  # PIL releases the GIL while decoding, so a few threads overlap the slow part


@dataclass
class LoadedSample:
    """A decoded sample; `fov` comes from the FOV file, or is detected (or all True) when there is none."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    fov: np.ndarray
    group: str
    second_mask: np.ndarray | None = None  # a second observer's vessels, where the data set has one
    source: str = ""  # the set it comes from, where several are trained on together (sources.MultiSource)


def _read(reader: Callable[[Path], np.ndarray], path: Path, problems: list[str]) -> np.ndarray | None:
    """Run a reader, recording its DataError instead of stopping at the first bad file."""
    try:
        return reader(path)
    except DataError as exc:
        problems.append(str(exc))
        return None


def _size_problem(path: Path, array: np.ndarray, image_path: Path, image: np.ndarray, role: str) -> list[str]:
    if array.shape[:2] == image.shape[:2]:
        return []
    (h, w), (ih, iw) = array.shape[:2], image.shape[:2]
    return [f"{path}: {role} is {w}x{h} (WxH) but its image {image_path} is {iw}x{ih}"]


def _load_one(sample: Sample, detect_missing_fov: bool, mask_rule: str) -> LoadedSample | list[str]:
    """The loaded sample, or the list of everything wrong with its files."""
    problems: list[str] = []
    image = _read(read_image, sample.image, problems)
    mask = _read(partial(read_mask, rule=mask_rule), sample.mask, problems)
    fov = _read(read_fov, sample.fov, problems) if sample.fov is not None else None
    second = (
        _read(partial(read_mask, rule=mask_rule), sample.second_mask, problems)
        if sample.second_mask is not None
        else None
    )
    if image is not None:
        for path, array, role in (
            (sample.mask, mask, "mask"),
            (sample.fov, fov, "FOV mask"),
            (sample.second_mask, second, "second-observer mask"),
        ):
            problems += _size_problem(path, array, sample.image, image, role) if array is not None else []
    if problems:
        return problems
    if fov is None:
        fov = detect_fov(image) if detect_missing_fov else np.ones(mask.shape, dtype=bool)
    return LoadedSample(sample.image.stem, image, mask, fov, sample.group, second)


def load_samples(
    samples: Sequence[Sample], detect_missing_fov: bool = False, mask_rule: str = "half"
) -> list[LoadedSample]:
    """Decode all samples in order; raise one DataError that lists every file problem found.

    ``detect_missing_fov``: samples without an FOV file get one detected from the photograph (the Kaggle set
    ships none), so metrics "inside the FOV" mean the same on every data set. ``mask_rule``: how vessel masks
    (the first and any second observer's) are binarised (retina_seg.data.io.MASK_RULES).
    """
    check_mask_rule(mask_rule)
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        results = list(pool.map(lambda sample: _load_one(sample, detect_missing_fov, mask_rule), samples))
    problems = [problem for result in results if isinstance(result, list) for problem in result]
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise DataError(f"{len(problems)} problem(s) loading {len(samples)} samples:\n{listing}")
    return results
