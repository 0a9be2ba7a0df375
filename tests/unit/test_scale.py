"""Probabilities returned to a photograph's size (data/scale.py to_size)."""

import cv2
import numpy as np

from retina_seg.data.scale import to_size


def test_probabilities_are_enlarged_bicubically_and_stay_probabilities():
    """A vessel edge overshoots under bicubic interpolation; the overshoot is clipped, the rest is bicubic."""
    probabilities = np.zeros((8, 8), dtype=np.float32)
    probabilities[:, 4:] = 1.0
    enlarged = to_size(probabilities, 32, 32)
    cubic = cv2.resize(probabilities, (32, 32), interpolation=cv2.INTER_CUBIC)
    assert cubic.max() > 1.0 and cubic.min() < 0.0  # the overshoot that clipping removes
    assert enlarged.dtype == np.float32 and 0.0 <= enlarged.min() and enlarged.max() <= 1.0
    inside = (cubic >= 0) & (cubic <= 1)
    np.testing.assert_array_equal(enlarged[inside], cubic[inside])


def test_a_map_of_the_right_size_is_returned_as_it_is():
    probabilities = np.full((5, 7), 0.5, dtype=np.float32)
    assert to_size(probabilities, 5, 7) is probabilities
