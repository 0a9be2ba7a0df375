"""The generated fundus data set: deterministic, fundus-like statistics, and the Kaggle file layout."""

import numpy as np
import pytest

from retina_seg.data.layouts import kaggle_samples
from retina_seg.data.loading import load_samples
from retina_seg.data.synthetic import synthesize_fundus, synthetic_samples, write_synthetic_kaggle_layout


@pytest.fixture(scope="module")
def fundus():
    return synthesize_fundus(3)


def test_same_seed_same_picture():
    for first, second in zip(synthesize_fundus(11, 96, 96), synthesize_fundus(11, 96, 96)):
        np.testing.assert_array_equal(first, second)


def test_different_seeds_differ():
    image_a, vessels_a, _ = synthesize_fundus(1, 96, 96)
    image_b, vessels_b, _ = synthesize_fundus(2, 96, 96)
    assert not np.array_equal(image_a, image_b) and not np.array_equal(vessels_a, vessels_b)


def test_types_and_default_size(fundus):
    image, vessels, fov = fundus
    assert image.dtype == np.uint8 and image.shape == (256, 256, 3)
    assert vessels.dtype == bool and fov.dtype == bool and vessels.shape == fov.shape == (256, 256)


@pytest.mark.parametrize(("height", "width"), [(120, 200), (200, 120)])
def test_non_square_sizes(height, width):
    image, vessels, fov = synthesize_fundus(0, height, width)
    assert image.shape == (height, width, 3) and vessels.shape == fov.shape == (height, width)
    assert 0.05 <= vessels[fov].mean() <= 0.15
    assert not fov[:, 0].any() and not fov[:, -1].any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_vessel_fraction_inside_fov(seed):
    _, vessels, fov = synthesize_fundus(seed)
    assert 0.05 <= vessels[fov].mean() <= 0.15
    assert 0.6 <= fov.mean() <= 0.8


def test_black_outside_fov_and_no_vessels_there(fundus):
    image, vessels, fov = fundus
    assert image[~fov].max() == 0 and not vessels[~fov].any()
    assert image[fov].mean() > 40


def test_fundus_colours(fundus):
    """Red over green over blue as in a fundus photograph, vessels darker with low contrast."""
    image, vessels, fov = fundus
    red, green, blue = (image[:, :, c][fov & ~vessels].mean() for c in range(3))
    assert red > green > blue
    ratio = image[:, :, 1][vessels].mean() / green
    assert 0.5 < ratio < 0.95


def test_disc_is_the_brightest_area(fundus):
    image, _, fov = fundus
    brightness = image.astype(float).sum(axis=2)
    y, x = np.unravel_index(np.argmax(brightness), brightness.shape)
    centre = (np.array(fov.shape) - 1) / 2
    assert np.hypot(y - centre[0], x - centre[1]) > 0.4 * 0.47 * 256


def test_kaggle_layout_groups_of_four(tmp_path):
    root = write_synthetic_kaggle_layout(tmp_path / "synthetic", n_train=8, n_test=2, size=64, seed=5)
    train = load_samples(kaggle_samples(root, "train"))
    test = load_samples(kaggle_samples(root, "test"))
    assert len(train) == 8 and len(test) == 2 and [s.group for s in train] == ["0"] * 4 + ["1"] * 4
    original = train[4]
    np.testing.assert_array_equal(train[5].image, original.image[:, ::-1])
    np.testing.assert_array_equal(train[6].mask, original.mask[::-1])
    np.testing.assert_array_equal(train[7].image, np.rot90(original.image))
    assert not np.array_equal(train[0].image, train[4].image)
    assert 0.03 <= original.mask.mean() <= 0.15


def test_kaggle_layout_partial_last_group(tmp_path):
    root = write_synthetic_kaggle_layout(tmp_path, n_train=6, n_test=1, size=48, seed=0)
    assert sorted(p.name for p in (root / "train" / "image").iterdir()) == [f"{i}.png" for i in range(6)]
    assert [p.name for p in (root / "test" / "mask").iterdir()] == ["0.png"]


def test_synthetic_samples():
    samples = synthetic_samples(3, 64, 80, seed=1)
    assert [s.name for s in samples] == ["synthetic_0", "synthetic_1", "synthetic_2"]
    assert len({s.group for s in samples}) == 3
    assert samples[0].image.shape == (64, 80, 3) and samples[0].fov.shape == (64, 80)
    np.testing.assert_array_equal(samples[2].mask, synthetic_samples(3, 64, 80, seed=1)[2].mask)


def test_a_file_source_loads_the_first_test_photographs_without_the_train_pool(tmp_path):
    from retina_seg.data.sources import KaggleSource

    root = write_synthetic_kaggle_layout(tmp_path, n_train=4, n_test=3, size=48, seed=0)
    expected = load_samples(kaggle_samples(root, "test"), detect_missing_fov=True)[:2]
    for image in (root / "train" / "image").iterdir():
        image.write_bytes(b"not a png")  # the train pool is not read, so its broken files go unnoticed
    loaded = KaggleSource(root, n_val=1).load_test(2)
    assert [s.name for s in loaded] == [s.name for s in expected]
    np.testing.assert_array_equal(loaded[1].mask, expected[1].mask)
