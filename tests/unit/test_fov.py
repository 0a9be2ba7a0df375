"""FOV detection on real photographs (against DRIVE's own FOV masks) and on generated ones."""

import numpy as np
import pytest

from retina_seg.data.fov import _histogram, detect_fov
from retina_seg.data.io import read_fov, read_image
from retina_seg.data.synthetic import synthesize_fundus


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_detected_fov_agrees_with_drive_fov_masks(drive_root):
    """All 40 DRIVE photographs; DRIVE's masks were drawn by hand-tuned thresholds, so agreement, not equality."""
    ious = {}
    for split, suffix in (("test", "test"), ("training", "training")):
        for image_path in sorted((drive_root / split / "images").glob("*.tif")):
            number = image_path.stem.split("_")[0]
            truth = read_fov(drive_root / split / "mask" / f"{number}_{suffix}_mask.gif")
            ious[image_path.name] = _iou(detect_fov(read_image(image_path)), truth)
    assert len(ious) == 40
    worst = min(ious, key=ious.get)
    assert ious[worst] > 0.95, f"{worst}: FOV IoU {ious[worst]:.3f}"


def test_detected_fov_of_a_generated_photograph():
    image, _, fov = synthesize_fundus(3, 240, 320)
    detected = detect_fov(image)
    assert detected.shape == (240, 320) and detected.dtype == bool
    assert _iou(detected, fov) > 0.95


def test_a_photograph_cropped_inside_its_fov_is_all_fov(drive_root):
    image = read_image(drive_root / "test" / "images" / "01_test.tif")[150:450, 150:450]
    assert detect_fov(image).all()


def test_dark_lesions_inside_the_fov_stay_inside():
    image, _, fov = synthesize_fundus(5, 200, 200)
    image = image.copy()
    image[90:110, 90:110] = 0  # a black blot in the middle of the retina
    assert detect_fov(image)[90:110, 90:110].all()


@pytest.mark.parametrize("pixels", [1000, 2**24 + 8])
def test_brightness_histogram_counts_every_pixel_exactly(pixels):
    """cv2's float32 counts below 2**24 pixels, numpy's above: both exact."""
    grey = np.zeros(pixels, dtype=np.uint8)
    grey[:7] = [1, 1, 2, 255, 255, 255, 9]
    expected = np.bincount(grey, minlength=256)
    np.testing.assert_array_equal(_histogram(grey.reshape(1, -1)), expected)


def test_rejects_an_image_that_is_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        detect_fov(np.zeros((10, 10), dtype=np.uint8))
