"""Hold out a validation set from training samples, keeping augmented copies of one photograph together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

from retina_seg.data.errors import DataError

T = TypeVar("T")
MODES = ("grouped", "random")


def _groups(samples: Sequence[Any]) -> dict[Any, list[int]]:
    """Sample indices per photograph, in order of first appearance; an empty group is its own photograph."""
    groups: dict[Any, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(sample.group or (index,), []).append(index)
    return groups


def _exact_subset(sizes: list[int], total: int) -> list[int] | None:
    """Positions of items whose sizes sum to `total`, preferring earlier items (0/1 subset-sum)."""
    last_item: list[int | None] = [None] * (total + 1)
    last_item[0] = -1
    for item, size in enumerate(sizes):
        for reached in range(total, size - 1, -1):
            if last_item[reached] is None and last_item[reached - size] is not None:
                last_item[reached] = item
    if last_item[total] is None:
        return None
    chosen, reached = [], total
    while reached:
        chosen.append(last_item[reached])
        reached -= sizes[last_item[reached]]
    return chosen


def _grouped_val(samples: Sequence[Any], n_val: int, rng: np.random.Generator) -> set[int]:
    """Whole photographs, drawn in a seeded order, that make up exactly n_val images."""
    groups = list(_groups(samples).values())
    order = rng.permutation(len(groups))
    chosen = _exact_subset([len(groups[g]) for g in order], n_val)
    if chosen is None:
        sizes = sorted({len(members) for members in groups})
        raise DataError(
            f"n_val={n_val} cannot be made of whole photograph groups ({len(groups)} groups of sizes {sizes}); "
            f"choose a sum of group sizes, e.g. a multiple of {sizes[0]}"
        )
    return {index for position in chosen for index in groups[order[position]]}


def split_train_val(samples: Sequence[T], n_val: int, mode: str = "grouped", seed: int = 0) -> tuple[list[T], list[T]]:
    """Split into (train, val) deterministically for a seed, both in input order.

    "grouped" moves whole photographs (same `.group`) to val so no photograph leaks across;
    "random" is the reference recipe: a seeded permutation of single images, ignoring groups.
    """
    if mode not in MODES:
        raise ValueError(f"unknown split mode {mode!r}; allowed: {', '.join(MODES)}")
    if not 0 <= n_val < len(samples):
        raise DataError(f"n_val={n_val} must be at least 0 and less than the {len(samples)} samples")
    rng = np.random.default_rng(seed)
    if mode == "grouped":
        val = _grouped_val(samples, n_val, rng)
    else:
        val = set(rng.permutation(len(samples))[:n_val].tolist())
    train = [sample for index, sample in enumerate(samples) if index not in val]
    return train, [sample for index, sample in enumerate(samples) if index in val]
