"""Per-tile normalisation tables equal albumentations' Normalize on the whole image, in every mode."""

import albumentations as A
import numpy as np
import pytest

from retina_seg.data.io import read_image
from retina_seg.inference.normalization import (
    NormalizationError,
    build_normalize,
    normalization_tables,
    normalized_crop,
)

MODES = ["image", "image_per_channel", "min_max", "min_max_per_channel"]


@pytest.mark.parametrize(
    "config",
    [{"normalization": mode} for mode in MODES]
    + [{"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "max_pixel_value": 255.0}, {}],
)
def test_tables_reproduce_albumentations_exactly(drive_root, config):
    image = read_image(drive_root / "test" / "images" / "02_test.tif")
    normalize = build_normalize({"_target_": "albumentations.Normalize", **config})
    expected = np.asarray(normalize(image=image)["image"], dtype=np.float32)  # as the training dataset casts it
    tables = normalization_tables(normalize, image)
    np.testing.assert_array_equal(normalized_crop(image, tables, 0, 0, *image.shape[:2]), expected)
    np.testing.assert_array_equal(normalized_crop(image, tables, 100, 50, 64, 80), expected[100:164, 50:130])


def test_the_class_path_of_normalize_is_accepted():
    normalize = build_normalize({"_target_": f"{A.Normalize.__module__}.Normalize", "normalization": "image"})
    assert isinstance(normalize, A.Normalize)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"_target_": "os.system", "command": "true"}, "expected _target_ albumentations.Normalize"),
        ({"normalization": "image"}, "expected _target_"),
        ({"_target_": "albumentations.Normalize", "mean": {"_target_": "os.getcwd"}}, "cannot rebuild"),
    ],
)
def test_anything_but_a_plain_normalize_is_refused(config, message):
    with pytest.raises(NormalizationError, match=message):
        build_normalize(config)
