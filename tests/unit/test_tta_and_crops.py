"""Test-time flips invert correctly, and random crops keep mask and FOV aligned with the image."""

from dataclasses import replace

import albumentations as A
import numpy as np
import pytest
import torch
from torch import nn

from retina_seg.data.transforms import build_pipeline
from retina_seg.inference.predictor import VesselPredictor
from retina_seg.models.unet import flip_averaged, vessel_probability
from retina_seg.records.checkpoint import RunInfo


class FixedLogits(nn.Module):
    """Ignores its input: returns the same asymmetric map, so flips are visible in the average."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(image), -1, -1, -1)


def test_flips_of_an_equivariant_net_average_to_the_plain_prediction():
    net = nn.Conv2d(3, 1, kernel_size=1)
    image = torch.randn(2, 3, 9, 13)
    assert torch.allclose(flip_averaged(net, image), vessel_probability(net(image)), atol=1e-6)


def test_each_flip_is_undone_before_averaging():
    logits = torch.randn(1, 1, 5, 7)
    expected = (torch.sigmoid(logits) + torch.sigmoid(logits).flip(3) + torch.sigmoid(logits).flip(2)) / 3
    assert torch.allclose(flip_averaged(FixedLogits(logits), torch.zeros(1, 3, 5, 7)), expected, atol=1e-6)
    assert not torch.allclose(expected, torch.sigmoid(logits))


def test_random_crops_keep_mask_and_fov_aligned():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    mask = (image[..., 0] > 127).astype(np.uint8)
    fov = (image[..., 1] > 64).astype(np.uint8)
    pipeline = build_pipeline(
        {"crop": A.RandomCrop(32, 32), "rot": A.RandomRotate90(p=1.0), "flip": A.HorizontalFlip(p=0.5)}, None
    )
    for _ in range(20):
        out = pipeline(image=image, mask=mask, fov=fov)
        assert out["image"].shape[:2] == out["mask"].shape == out["fov"].shape == (32, 32)
        assert np.array_equal(out["mask"], (out["image"][..., 0] > 127).astype(np.uint8))
        assert np.array_equal(out["fov"], (out["image"][..., 1] > 64).astype(np.uint8))


def test_predictor_repeats_the_flips_its_checkpoint_was_validated_with():
    logits = torch.randn(1, 1, 16, 16)
    info = RunInfo(
        model={},
        normalize={"_target_": "albumentations.Normalize", "normalization": "image_per_channel"},
        threshold=0.5,
    )
    batch = np.zeros((1, 3, 16, 16), dtype=np.float32)
    with_flips = VesselPredictor(FixedLogits(logits), replace(info, flip_tta=True), channels_last=False)
    expected = flip_averaged(FixedLogits(logits), torch.zeros(1, 3, 16, 16))[:, 0].numpy()
    np.testing.assert_allclose(with_flips._forward(batch), expected, atol=1e-6)
    plain = VesselPredictor(FixedLogits(logits), info, channels_last=False)  # older checkpoints: no flips
    np.testing.assert_allclose(plain._forward(batch), torch.sigmoid(logits)[:, 0].numpy(), atol=1e-6)
    overridden = VesselPredictor(FixedLogits(logits), replace(info, flip_tta=True), flip_tta=False, channels_last=False)
    np.testing.assert_allclose(overridden._forward(batch), plain._forward(batch))


def test_predictor_refuses_a_checkpoint_validated_with_eval_transforms():
    """Prediction applies only the normalisation; silently skipping e.g. a CLAHE step would give other maps."""
    info = RunInfo(
        model={},
        normalize={"_target_": "albumentations.Normalize"},
        threshold=0.5,
        eval_transforms={"clahe": {"_target_": "albumentations.CLAHE", "p": 1.0}},
    )
    with pytest.raises(ValueError, match="clahe"):
        VesselPredictor(FixedLogits(torch.zeros(1, 1, 4, 4)), info, channels_last=False)
    VesselPredictor(FixedLogits(torch.zeros(1, 1, 4, 4)), replace(info, eval_transforms={}), channels_last=False)
