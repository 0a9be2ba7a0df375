"""What the predictor writes: 16-bit probabilities, 0/255 masks, overlays, and pooled IoU/Dice."""

import csv

import numpy as np
import pytest
from PIL import Image

from retina_seg.inference.writers import overlay_pixels, write_prediction, write_scores
from retina_seg.scoring.counts import Counts


def test_images_round_trip_at_the_input_size(tmp_path):
    rng = np.random.default_rng(0)
    probability = rng.random((37, 53), dtype=np.float32)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    mask = probability >= 0.5
    paths = write_prediction(tmp_path, "eye", image, probability, mask, (0, 255, 0), 0.6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eye_mask.png", "eye_overlay.png", "eye_prob.png"]
    stored = Image.open(paths["probability"])
    assert stored.mode == "I;16" and stored.size == (53, 37)
    np.testing.assert_allclose(np.asarray(stored) / 65535, probability, atol=0.5 / 65535 + 1e-7)
    assert set(np.unique(np.asarray(Image.open(paths["mask"])))) == {0, 255}
    np.testing.assert_array_equal(np.asarray(Image.open(paths["mask"])) == 255, mask)
    overlay = np.asarray(Image.open(paths["overlay"]))
    np.testing.assert_array_equal(overlay[~mask], image[~mask])
    assert (overlay[mask][:, 1] >= image[mask][:, 1]).all()  # pulled towards green


def test_overlay_blends_only_vessel_pixels():
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    mask = np.array([[True, False], [False, False]])
    out = overlay_pixels(image, mask, (0, 200, 0), 0.5)
    assert out[0, 0].tolist() == [50, 150, 50] and out[1, 1].tolist() == [100, 100, 100]


@pytest.mark.parametrize(("color", "alpha"), [((0, 255, 0), 0.6), ((255, 0, 0), 0.5), ((13, 77, 250), 0.33)])
def test_overlay_lookup_equals_blending_each_vessel_pixel(color, alpha):
    """The lookup tables give every pixel exactly the float32 blend of that pixel."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    mask = rng.random((61, 47)) > 0.7
    expected = image.copy()
    blend = image[mask].astype(np.float32) * (1 - alpha) + np.asarray(color, dtype=np.float32) * alpha
    expected[mask] = np.rint(blend).astype(np.uint8)
    np.testing.assert_array_equal(overlay_pixels(image, mask, color, alpha), expected)


def test_scores_csv_pools_pixel_counts(tmp_path):
    write_scores(tmp_path, [("a", Counts(1, 1, 1)), ("b", Counts(3, 0, 0))])
    rows = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert [r["image"] for r in rows] == ["a", "b", "overall"]
    assert float(rows[0]["IoU"]) == pytest.approx(1 / 3, abs=1e-6) and float(rows[0]["Dice"]) == 0.5
    assert float(rows[2]["IoU"]) == pytest.approx(4 / 6, abs=1e-6) and float(rows[2]["Dice"]) == 0.8
    assert (rows[2]["TP"], rows[2]["FP"], rows[2]["FN"]) == ("4", "1", "1")
