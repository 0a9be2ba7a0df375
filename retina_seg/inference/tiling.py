"""Sliding windows over a large image and their smooth blending, accumulated in place (memory O(image)).

Along each axis, tiles start every `tile - overlap` pixels, on multiples of the network's pooling stride, so that
neighbours share at least `overlap` pixels and every tile pools on the whole image's grid. Inside a shared strip
one tile's weight falls along a raised cosine while its neighbour's rises (the two sum to 1), so the seams, where a
tile lacks context and its padding shows, count least; at the image border no weight falls. A window's 2-D weight
is the product of its row and column weights, so the sum of all weights at a pixel is the product of two 1-D sums
and never needs an image-sized array of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Window:
    """One network input: its place in the image and its blending weights along rows and columns."""

    top: int
    left: int
    row_weights: np.ndarray
    col_weights: np.ndarray

    @property
    def height(self) -> int:
        return len(self.row_weights)

    @property
    def width(self) -> int:
        return len(self.col_weights)


def _falling_ramp(length: int) -> np.ndarray:
    """Raised cosine from ~1 to ~0 over `length` pixels; ramp + its reverse == 1 pixel by pixel."""
    return (0.5 + 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)).astype(np.float32)


def axis_tiles(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, np.ndarray]]:
    """(start, weights) of the tiles along one axis; a single full-length tile when the axis fits.

    Starts are multiples of `align` (the network's total pooling stride), so each tile pools on the same grid as
    the whole image would; the last tile therefore runs to the end, up to align - 1 pixels longer than `tile`.
    """
    if length <= tile:
        return [(0, np.ones(length, dtype=np.float32))]
    last = (length - tile) // align * align
    step = max(align, (tile - overlap) // align * align)
    starts = [*range(0, last, step), last]
    falling = _falling_ramp(overlap)
    tiles = []
    for index, start in enumerate(starts):
        weights = np.ones(length - start if start == last else tile, dtype=np.float32)
        if overlap and index > 0:
            weights[:overlap] = falling[::-1]
        if overlap and index < len(starts) - 1:
            weights[-overlap:] = falling
        tiles.append((start, weights))
    return tiles


@dataclass(frozen=True)
class TilePlan:
    """The windows covering an image of `height` x `width` (one window when it is predicted whole)."""

    height: int
    width: int
    rows: tuple[tuple[int, np.ndarray], ...]
    cols: tuple[tuple[int, np.ndarray], ...]

    @classmethod
    def tiles(cls, height: int, width: int, tile: int, overlap: int, align: int = 1) -> TilePlan:
        if not 0 <= overlap <= tile // 2:
            raise ValueError(f"tile overlap {overlap} must be between 0 and half the tile size {tile}")
        if tile < align:
            raise ValueError(f"tile size {tile} is smaller than the network's pooling stride {align}")
        return cls(
            height,
            width,
            tuple(axis_tiles(height, tile, overlap, align)),
            tuple(axis_tiles(width, tile, overlap, align)),
        )

    @classmethod
    def whole(cls, height: int, width: int) -> TilePlan:
        return cls.tiles(height, width, max(height, width), 0)

    @property
    def windows(self) -> list[Window]:
        return [Window(top, left, row_w, col_w) for top, row_w in self.rows for left, col_w in self.cols]

    def weight_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row and per-column sums of the tile weights: their outer product is the 2-D weight sum."""
        sums = []
        for tiles, length in ((self.rows, self.height), (self.cols, self.width)):
            total = np.zeros(length, dtype=np.float32)
            for start, weights in tiles:
                total[start : start + len(weights)] += weights
            sums.append(total)
        return sums[0], sums[1]


class BlendedMap:
    """Weighted sum of window predictions in one float32 image-sized array, normalised at the end."""

    def __init__(self, plan: TilePlan):
        self.plan = plan
        self.total = np.zeros((plan.height, plan.width), dtype=np.float32)

    def add(self, window: Window, values: np.ndarray) -> None:
        """Add one window's HxW prediction with its blending weights."""
        weighted = values * window.row_weights[:, None]
        weighted *= window.col_weights[None, :]
        self.total[window.top : window.top + window.height, window.left : window.left + window.width] += weighted

    def result(self) -> np.ndarray:
        """The blended map (in place: the accumulator becomes the result)."""
        row_sums, col_sums = self.plan.weight_sums()
        self.total /= row_sums[:, None]
        self.total /= col_sums[None, :]
        return self.total
