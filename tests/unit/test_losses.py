"""Losses: perfect predictions, FOV exclusion, the multi-class path and clDice on hand-made lines."""

import pytest
import torch
import torch.nn.functional as F

from retina_seg.training.losses import (
    BCEDiceCLDiceLoss,
    BCEDiceLoss,
    BCELovaszLoss,
    LovaszHingeLoss,
    PixelCrossEntropy,
    SoftCLDiceLoss,
    SoftDiceLoss,
    soft_skeleton,
)

ALL_LOSSES = [PixelCrossEntropy, SoftDiceLoss, BCEDiceLoss, SoftCLDiceLoss, BCEDiceCLDiceLoss]
SIGMOID_ONLY_LOSSES = [LovaszHingeLoss, BCELovaszLoss]


def random_case(seed=0, channels=1, size=(2, 24, 20)):
    """Logits, a 0/1 target [B, 1, H, W] (class indices when channels > 1) and a disc-shaped FOV."""
    gen = torch.Generator().manual_seed(seed)
    batch, height, width = size
    logits = torch.randn(batch, channels, height, width, generator=gen)
    target = torch.randint(0, max(channels, 2), (batch, 1, height, width), generator=gen).float()
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    fov = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (min(height, width) / 2.5) ** 2
    return logits, target, fov.expand(batch, 1, height, width)


def confident_logits(target, scale=30.0):
    """Logits that predict the 0/1 target with near-certainty."""
    return (2 * target.float() - 1) * scale


@pytest.mark.parametrize("loss_cls", ALL_LOSSES + SIGMOID_ONLY_LOSSES)
def test_returns_finite_scalar_with_gradient(loss_cls):
    logits, target, fov = random_case()
    logits.requires_grad_(True)
    loss = loss_cls()(logits, target, fov)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_cls", [SoftDiceLoss, BCEDiceLoss, PixelCrossEntropy, *SIGMOID_ONLY_LOSSES])
def test_perfect_prediction_gives_near_zero_loss(loss_cls):
    _, target, _ = random_case()
    assert loss_cls()(confident_logits(target), target) < 1e-6


def test_dice_of_wrong_prediction_is_near_one():
    _, target, _ = random_case()
    assert SoftDiceLoss(smooth=1e-6)(confident_logits(1 - target), target) > 0.999


def test_dice_matches_hand_computation():
    prob = torch.tensor([[0.9, 0.2], [0.6, 0.1]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    logits = torch.logit(prob).view(1, 1, 2, 2)
    expected = 1 - (2 * (0.9 + 0.6 + 0.1) + 1) / (prob.sum() + 3 + 1)
    assert SoftDiceLoss(smooth=1.0)(logits, target.view(1, 2, 2)) == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize(
    "loss_cls, channels",
    [(loss, channels) for loss in ALL_LOSSES for channels in (1, 3)] + [(loss, 1) for loss in SIGMOID_ONLY_LOSSES],
)
def test_pixels_outside_valid_do_not_influence_loss(loss_cls, channels):
    logits, target, fov = random_case(channels=channels)
    changed = torch.where(fov, logits, torch.randn_like(logits) * 50)
    changed_target = torch.where(fov, target, 1 - target.clamp(max=1))
    loss = loss_cls()
    assert loss(changed, changed_target, fov) == pytest.approx(loss(logits, target, fov).item(), abs=1e-6)
    assert loss(changed, target) != pytest.approx(loss(logits, target).item(), abs=1e-6)


def test_lovasz_hinge_of_hard_predictions_is_twice_one_minus_iou():
    """With logits +-1 a right pixel has margin 0 and a wrong one 2, so the loss is exactly 2 (1 - IoU)."""
    target = torch.tensor([[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0]], dtype=torch.float32)
    predicted = torch.tensor([[0, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 1]], dtype=torch.float32)
    iou = (target * predicted).sum() / ((target + predicted) > 0).sum()  # 4 / 7
    logits = (2 * predicted - 1).view(1, 1, 3, 4)
    assert LovaszHingeLoss()(logits, target.view(1, 3, 4)).item() == pytest.approx(2 * (1 - iou.item()), abs=1e-6)


def test_lovasz_hinge_of_undecided_logits_is_one_and_refuses_softmax_outputs():
    _, target, fov = random_case()
    assert LovaszHingeLoss()(torch.zeros_like(target), target, fov).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="one logit channel"):
        LovaszHingeLoss()(torch.zeros(2, 3, 24, 20), target)


def test_valid_restricts_cross_entropy_to_masked_mean():
    logits, target, fov = random_case()
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert PixelCrossEntropy()(logits, target, fov) == pytest.approx(per_pixel[fov].mean().item(), rel=1e-6)


def test_empty_valid_mask_gives_zero_not_nan():
    logits, target, fov = random_case()
    assert PixelCrossEntropy()(logits, target, torch.zeros_like(fov)) == 0.0


def test_multiclass_cross_entropy_uses_class_indices():
    logits, target, fov = random_case(channels=3)
    expected = F.cross_entropy(logits, target[:, 0].long(), reduction="none")[fov[:, 0]].mean()
    assert PixelCrossEntropy()(logits, target, fov) == pytest.approx(expected.item(), rel=1e-6)


def test_multiclass_dice_scores_the_vessel_class():
    target = torch.randint(0, 3, (2, 16, 16)).float()
    logits = F.one_hot(target.long(), 3).permute(0, 3, 1, 2).float() * 30
    assert SoftDiceLoss()(logits, target) < 1e-6
    assert BCEDiceCLDiceLoss()(logits, target) < 1e-3


def test_target_layouts_and_bool_masks_are_equivalent():
    logits, target, fov = random_case()
    loss = BCEDiceLoss()
    reference = loss(logits, target, fov)
    assert loss(logits, target[:, 0].bool(), fov[:, 0]) == pytest.approx(reference.item(), abs=1e-7)


def test_mismatched_shapes_raise():
    logits, target, _ = random_case()
    with pytest.raises(ValueError, match="target/valid"):
        SoftDiceLoss()(logits, target[..., :-1])


def line_mask(column, size=15, width=1):
    """A vertical line `width` pixels wide starting at `column`, as [1, 1, size, size]."""
    mask = torch.zeros(1, 1, size, size)
    mask[..., 2:-2, column : column + width] = 1
    return mask


def test_soft_skeleton_of_thick_line_is_thin_and_centred():
    skeleton = soft_skeleton(line_mask(5, width=5), iterations=3)
    columns = skeleton[0, 0].sum(dim=0)
    assert columns.argmax() == 7  # centre column of columns 5..9
    assert skeleton[0, 0, 7, 7] == pytest.approx(1.0)


def test_cldice_exact_line_vs_shifted_line():
    truth = line_mask(7, width=3)
    loss = SoftCLDiceLoss(iterations=3, smooth=1e-6)
    exact = loss(confident_logits(truth), truth)
    shifted_once = loss(confident_logits(line_mask(8, width=3)), truth)  # still covers the centreline
    shifted_off = loss(confident_logits(line_mask(11, width=3)), truth)  # disjoint
    assert exact < 1e-4
    assert shifted_once < 0.05
    assert shifted_off > 0.99


@pytest.mark.parametrize(
    "kwargs, name", [(dict(bce_weight=-1.0), "bce_weight"), (dict(cldice_weight=-0.1), "cldice_weight")]
)
def test_negative_weights_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BCEDiceCLDiceLoss(**kwargs)


def test_combined_loss_is_weighted_sum():
    logits, target, fov = random_case()
    combined = BCEDiceCLDiceLoss(bce_weight=0.2, dice_weight=0.3, cldice_weight=0.5, iterations=2)(logits, target, fov)
    parts = (
        0.2 * PixelCrossEntropy()(logits, target, fov)
        + 0.3 * SoftDiceLoss()(logits, target, fov)
        + 0.5 * SoftCLDiceLoss(iterations=2)(logits, target, fov)
    )
    assert combined == pytest.approx(parts.item(), rel=1e-6)
