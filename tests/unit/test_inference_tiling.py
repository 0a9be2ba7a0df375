"""Sliding windows: full coverage, smooth weights, and exactness of the blend for a pointwise network."""

import numpy as np
import pytest
import torch
from torch import nn

from retina_seg.data.synthetic import synthesize_fundus
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.inference.tiling import TilePlan, axis_tiles
from retina_seg.records.checkpoint import RunInfo

PER_IMAGE = {"_target_": "albumentations.Normalize", "normalization": "image_per_channel"}


@pytest.mark.parametrize(
    "length, tile, overlap, align",
    [
        (1000, 256, 64, 1),
        (257, 256, 128, 1),
        (700, 200, 0, 1),
        (90, 256, 64, 8),
        (3001, 512, 128, 16),
        (565, 256, 96, 8),
    ],
)
def test_tiles_cover_the_axis_on_the_pooling_grid_and_neighbours_share_the_overlap(length, tile, overlap, align):
    tiles = axis_tiles(length, tile, overlap, align)
    starts = [start for start, _ in tiles]
    ends = [start + len(weights) for start, weights in tiles]
    assert starts[0] == 0 and ends[-1] == length and all(start % align == 0 for start in starts)
    assert all(len(weights) == min(tile, length) for _, weights in tiles[:-1])
    assert min(tile, length) <= len(tiles[-1][1]) < max(tile, length) + align
    assert all(end - next_start >= overlap for end, next_start in zip(ends, starts[1:]))
    assert all((weights > 0).all() and (weights <= 1).all() for _, weights in tiles)


def test_weights_are_flat_at_the_image_border_and_sum_to_one_in_exact_overlaps():
    tiles = axis_tiles(640, 256, 64)  # starts 0, 192, 384: neighbours share exactly 64 pixels
    assert [start for start, _ in tiles] == [0, 192, 384]
    first, last = tiles[0][1], tiles[-1][1]
    assert first[0] == 1 and last[-1] == 1
    total = np.zeros(640, dtype=np.float32)
    for start, weights in tiles:
        total[start : start + len(weights)] += weights
    np.testing.assert_allclose(total, 1, atol=1e-6)


def test_overlap_above_half_a_tile_is_refused():
    with pytest.raises(ValueError, match="overlap"):
        TilePlan.tiles(500, 500, 128, 65)


def test_blended_tiles_equal_the_whole_image_for_a_pointwise_network():
    """A 1x1 convolution sees no neighbours, so tiling must change nothing: this checks the windows, the
    per-tile normalisation with whole-image statistics and the weight normalisation together."""
    torch.manual_seed(0)
    net = nn.Conv2d(3, 1, kernel_size=1)
    predictor = VesselPredictor(
        net, RunInfo(model={}, normalize=PER_IMAGE, threshold=0.5), batch_size=3, channels_last=False
    )
    image, _, _ = synthesize_fundus(1, 301, 403)
    whole = predictor.predict(image, "whole")
    tiled = predictor.predict(image, "tiles", tile_size=96, tile_overlap=40)
    assert tiled.shape == whole.shape == (301, 403)
    assert whole.std() > 0.01  # the map has structure worth comparing
    np.testing.assert_allclose(tiled, whole, atol=2e-6)
