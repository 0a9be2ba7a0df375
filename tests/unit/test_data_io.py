"""Reading images and masks from real files, and the errors for every kind of bad file."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retina_seg.data.errors import DataError
from retina_seg.data.io import read_image, read_mask
from retina_seg.data.layouts import Sample
from retina_seg.data.loading import load_samples


def save(path: Path, array: np.ndarray, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def rgb(height: int = 12, width: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def stripes(height: int = 12, width: int = 10) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, ::3] = 255
    return mask


def truncated_png(path: Path) -> Path:
    save(path, rgb(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def assert_names(error: pytest.ExceptionInfo, *paths: Path) -> None:
    for path in paths:
        assert str(path) in str(error.value)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".ppm", ".bmp"])
def test_read_image_lossless_formats_round_trip(tmp_path, suffix):
    array = rgb()
    image = read_image(save(tmp_path / f"a{suffix}", array))
    assert image.dtype == np.uint8 and image.shape == (12, 10, 3)
    np.testing.assert_array_equal(image, array)


def test_read_image_jpeg_is_close(tmp_path):
    array = np.full((16, 16, 3), (200, 100, 50), dtype=np.uint8)
    image = read_image(save(tmp_path / "a.jpg", array, quality=95))
    assert image.shape == (16, 16, 3)
    assert np.abs(image.astype(int) - array).max() <= 3


def test_read_image_grey_is_replicated_to_three_channels(tmp_path):
    grey = rgb()[:, :, 0]
    image = read_image(save(tmp_path / "g.png", grey))
    assert image.shape == (12, 10, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], grey)


def test_read_image_drops_alpha(tmp_path):
    rgba = np.dstack([rgb(), np.full((12, 10), 7, dtype=np.uint8)])
    np.testing.assert_array_equal(read_image(save(tmp_path / "a.png", rgba)), rgba[:, :, :3])


def test_read_image_scales_16_bit_to_8_bit(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    image = read_image(save(tmp_path / "deep.png", values))
    np.testing.assert_array_equal(image[0, :, 0], [0, 100, 255])


def test_read_image_palette_gif_uses_palette_colours(tmp_path):
    picture = Image.fromarray(rgb()).quantize(colors=8)
    picture.save(tmp_path / "p.gif")
    expected = np.asarray(picture.convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "p.gif"), expected)


def test_read_mask_thresholds_8_bit_at_127(tmp_path):
    values = np.array([[0, 100, 127, 128, 200, 255]], dtype=np.uint8)
    mask = read_mask(save(tmp_path / "m.png", values))
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask[0], [False, False, False, True, True, True])


def test_read_mask_16_bit(tmp_path):
    values = np.array([[0, 1, 32767, 32768, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(read_mask(save(tmp_path / "m.png", values))[0], [0, 0, 0, 1, 1])
    zero_one = np.array([[0, 1, 1, 0]], dtype=np.uint16)
    np.testing.assert_array_equal(read_mask(save(tmp_path / "labels.png", zero_one))[0], [0, 1, 1, 0])


def test_read_mask_zero_one_storage(tmp_path):
    values = (stripes() > 0).astype(np.uint8)
    np.testing.assert_array_equal(read_mask(save(tmp_path / "m.png", values)), values > 0)


def test_read_mask_palette_gif_by_values_not_colours(tmp_path):
    """Index 0 painted white and index 1 black must still read as background 0, vessel 1."""
    labels = (stripes() > 0).astype(np.uint8)
    picture = Image.new("P", labels.shape[::-1])
    picture.putdata(labels.ravel().tolist())
    picture.putpalette([255, 255, 255, 0, 0, 0] + [0, 0, 0] * 254)
    picture.save(tmp_path / "m.gif")
    with Image.open(tmp_path / "m.gif") as stored:
        assert stored.mode == "P"
    np.testing.assert_array_equal(read_mask(tmp_path / "m.gif"), labels > 0)


def test_read_mask_rgb_with_equal_channels_is_fine(tmp_path):
    grey = stripes()
    mask = read_mask(save(tmp_path / "m.png", np.dstack([grey] * 3)))
    np.testing.assert_array_equal(mask, grey > 127)


def test_read_mask_one_bit(tmp_path):
    Image.fromarray(stripes() > 0).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), stripes() > 0)


def test_colour_mask_is_not_a_mask(tmp_path):
    path = save(tmp_path / "colour.png", rgb())
    with pytest.raises(DataError, match="not a mask") as error:
        read_mask(path)
    assert_names(error, path)


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_missing_file(tmp_path, reader):
    with pytest.raises(DataError, match="not found") as error:
        reader(tmp_path / "absent.png")
    assert_names(error, tmp_path / "absent.png")


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_text_file_named_png(tmp_path, reader):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image")
    with pytest.raises(DataError, match="not a readable image") as error:
        reader(path)
    assert_names(error, path)


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_truncated_png(tmp_path, reader):
    path = truncated_png(tmp_path / "cut.png")
    with pytest.raises(DataError, match="truncated") as error:
        reader(path)
    assert_names(error, path)


def write_sample(folder: Path, name: str, image: np.ndarray, mask: np.ndarray, fov=None) -> Sample:
    fov_path = save(folder / f"{name}_fov.png", fov) if fov is not None else None
    return Sample(save(folder / f"{name}.png", image), save(folder / f"{name}_mask.png", mask), fov_path, name)


def test_load_samples_in_order_with_default_fov(tmp_path):
    samples = [write_sample(tmp_path, str(i), rgb(seed=i), stripes()) for i in range(5)]
    loaded = load_samples(samples)
    assert [item.name for item in loaded] == ["0", "1", "2", "3", "4"]
    assert [item.group for item in loaded] == ["0", "1", "2", "3", "4"]
    np.testing.assert_array_equal(loaded[3].image, rgb(seed=3))
    assert loaded[0].mask.dtype == bool and loaded[0].mask.sum() == (stripes() > 0).sum()
    assert loaded[0].fov.dtype == bool and loaded[0].fov.shape == (12, 10) and loaded[0].fov.all()


def test_load_samples_reads_fov(tmp_path):
    fov = np.zeros((12, 10), dtype=np.uint8)
    fov[2:10, 2:8] = 255
    [loaded] = load_samples([write_sample(tmp_path, "a", rgb(), stripes(), fov)])
    np.testing.assert_array_equal(loaded.fov, fov > 0)


def test_load_samples_mask_size_mismatch_names_both_files(tmp_path):
    sample = write_sample(tmp_path, "a", rgb(12, 10), stripes(12, 11))
    with pytest.raises(DataError, match="11x12") as error:
        load_samples([sample])
    assert_names(error, sample.mask, sample.image)


def test_load_samples_fov_size_mismatch(tmp_path):
    sample = write_sample(tmp_path, "a", rgb(), stripes(), np.full((5, 5), 255, dtype=np.uint8))
    with pytest.raises(DataError, match="FOV") as error:
        load_samples([sample])
    assert_names(error, sample.fov)


def test_load_samples_lists_every_problem_at_once(tmp_path):
    good = write_sample(tmp_path, "good", rgb(), stripes())
    cut = write_sample(tmp_path, "cut", rgb(), stripes())
    truncated_png(cut.image)
    colour = write_sample(tmp_path, "colour", rgb(), rgb(seed=5))
    missing = Sample(tmp_path / "gone.png", good.mask)
    with pytest.raises(DataError) as error:
        load_samples([good, cut, colour, missing])
    assert_names(error, cut.image, colour.mask, missing.image)
    assert str(good.image) not in str(error.value)
    assert "3 problem(s)" in str(error.value)
