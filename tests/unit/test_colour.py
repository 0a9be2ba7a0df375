"""Colour standardisation inside the FOV (retina_seg/data/colour.py) on generated photographs, its checkpoint
record, and the datamodule applying it to every split."""

import numpy as np
import pytest

from retina_seg.data.colour import TARGET_MEAN, TARGET_STD, ColourStandard, colour_standard
from retina_seg.data.datamodule import RetinaDataModule
from retina_seg.data.sources import SyntheticSource
from retina_seg.records.checkpoint import RunInfo


def _photograph(seed: int = 0, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A dim, bluish photograph on a black border, inside a disc FOV."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    fov = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.2) ** 2
    image = np.zeros((size, size, 3), np.uint8)
    image[fov] = np.clip(rng.normal((90, 40, 60), (12, 6, 9), (fov.sum(), 3)), 0, 255).astype(np.uint8)
    return image, fov


def test_each_channel_inside_the_fov_gets_the_target_mean_and_std_and_the_border_goes_black():
    image, fov = _photograph()
    standardized = ColourStandard().apply(image, fov)
    assert standardized.dtype == np.uint8 and standardized.shape == image.shape
    inside = standardized[fov].astype(float)
    np.testing.assert_allclose(inside.mean(axis=0), TARGET_MEAN, atol=0.5)
    np.testing.assert_allclose(inside.std(axis=0), TARGET_STD, rtol=0.03)
    assert not standardized[~fov].any()


def test_statistics_come_from_the_whole_photograph_so_a_crop_keeps_its_own_brightness():
    """A darker half stays darker than the brighter half: one mapping for the photograph, not one per region."""
    image, fov = _photograph()
    image[:48] //= 2
    standardized = ColourStandard().apply(image, fov)
    top, bottom = standardized[:48][fov[:48]], standardized[48:][fov[48:]]
    assert top[:, 1].mean() < bottom[:, 1].mean() - 10


def test_a_flat_channel_is_shifted_not_stretched_and_an_empty_fov_changes_nothing():
    image, fov = _photograph()
    image[fov, 2] = 7 + np.arange(fov.sum()) % 2  # std 0.5 grey levels: stretched, it would become noise
    standardized = ColourStandard().apply(image, fov)
    blue = standardized[fov, 2].astype(float)
    assert abs(blue.mean() - TARGET_MEAN[2]) <= 0.5 and blue.max() - blue.min() <= 1
    empty = np.zeros_like(fov)
    assert ColourStandard().apply(image, empty) is image


def test_the_standard_goes_through_the_checkpoint_payload_and_an_old_payload_means_off():
    standard = ColourStandard(mean=(100.0, 50.0, 20.0), std=(30.0, 20.0, 10.0))
    assert ColourStandard.from_payload(standard.to_payload()) == standard
    assert ColourStandard.from_payload(None) is None
    with pytest.raises(ValueError, match="colour mode"):
        ColourStandard.from_payload({"mode": "histogram", "mean": [0, 0, 0], "std": [1, 1, 1]})
    old = {"model": {"_target_": "retina_seg.models.unet.UNet"}, "normalize": {}, "threshold": 0.5}
    assert RunInfo.from_payload(old, "old.ckpt").colour is None
    new = RunInfo.from_payload({**old, "colour": standard.to_payload()}, "new.ckpt")
    assert ColourStandard.from_payload(new.colour) == standard


def test_the_config_value_names_the_standard_or_nothing():
    assert colour_standard(None) is None
    assert colour_standard("fov_standardized") == ColourStandard()
    with pytest.raises(ValueError, match="data.colour"):
        colour_standard("grey_world")


def test_the_datamodule_standardizes_every_split_at_load():
    source = SyntheticSource(n_train=2, n_val=1, n_test=1, height=64, width=64)
    plain = RetinaDataModule(source)
    plain.setup()
    coloured = RetinaDataModule(source, colour="fov_standardized")
    coloured.setup()
    for split in ("train", "val", "test"):
        for before, after in zip(getattr(plain.splits, split), getattr(coloured.splits, split)):
            assert np.array_equal(after.image, ColourStandard().apply(before.image, before.fov))
            assert not np.array_equal(after.image, before.image)
