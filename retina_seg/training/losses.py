"""Segmentation losses restricted to the pixels that count (e.g. the field of view).

Every loss takes logits [B, C, H, W], a target [B, 1, H, W] or [B, H, W] (0/1 vessel mask for C == 1, class
indices for C > 1) and an optional boolean `valid` mask of the target's shape, and returns a scalar.
One output channel means sigmoid + binary cross-entropy; C > 1 means softmax + cross-entropy, with class 1 the
vessel class for the Dice-type losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VESSEL_CLASS = 1


def _as_map(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W] or [B, 1, H, W] -> [B, H, W], so targets and masks of either layout are handled alike."""
    if x.dim() == 4:
        if x.shape[1] != 1:
            raise ValueError(f"expected a single-channel map [B, 1, H, W], got shape {tuple(x.shape)}")
        return x[:, 0]
    if x.dim() != 3:
        raise ValueError(f"expected a map [B, H, W] or [B, 1, H, W], got shape {tuple(x.shape)}")
    return x


def _prepare(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None):
    """Target and valid mask as [B, H, W] floats (valid all ones when None), checked against the logits."""
    if logits.dim() != 4:
        raise ValueError(f"logits must be [B, C, H, W], got shape {tuple(logits.shape)}")
    target = _as_map(target).to(logits.dtype)
    valid = torch.ones_like(target) if valid is None else _as_map(valid).to(logits.dtype)
    expected = (logits.shape[0], *logits.shape[2:])
    if target.shape != expected or valid.shape != expected:
        raise ValueError(
            f"target/valid must cover the logits' [B, H, W] = {expected}, "
            f"got {tuple(target.shape)} and {tuple(valid.shape)}"
        )
    return target, valid


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid pixels; 0 (still attached to the graph) when none is valid."""
    return (values * valid).sum() / valid.sum().clamp_min(1.0)


def _vessel_probability(logits: torch.Tensor) -> torch.Tensor:
    """Vessel-class probability [B, H, W]: sigmoid of the one channel, or the softmax of the vessel class."""
    if logits.shape[1] == 1:
        return torch.sigmoid(logits[:, 0])
    return torch.softmax(logits, dim=1)[:, VESSEL_CLASS]


def _vessel_target(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """0/1 vessel map from a binary mask (one channel) or a class-index map (several channels)."""
    return target if num_classes == 1 else (target == VESSEL_CLASS).to(target.dtype)


class PixelCrossEntropy(nn.Module):
    """Per-pixel cross-entropy averaged over valid pixels: BCE-with-logits for one channel, softmax CE otherwise."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        target, valid = _prepare(logits, target, valid)
        if logits.shape[1] == 1:
            per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], target, reduction="none")
        else:
            per_pixel = F.cross_entropy(logits, target.long(), reduction="none")
        return _masked_mean(per_pixel, valid)


class SoftDiceLoss(nn.Module):
    """1 - soft Dice of the vessel class over the whole batch (one pooled score, so empty images don't dominate).

    `smooth` is added to numerator and denominator: it keeps the loss defined (0) when neither truth nor
    prediction has vessels.
    """

    def __init__(self, smooth: float = 1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        target, valid = _prepare(logits, target, valid)
        prob = _vessel_probability(logits) * valid
        truth = _vessel_target(target, logits.shape[1]) * valid
        overlap = (prob * truth).sum()
        return 1.0 - (2.0 * overlap + self.smooth) / (prob.sum() + truth.sum() + self.smooth)


def _soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Soft (min-pool) erosion with a plus-shaped 3x3 element, as in the clDice paper."""
    vertical = -F.max_pool2d(-x, kernel_size=(3, 1), stride=1, padding=(1, 0))
    horizontal = -F.max_pool2d(-x, kernel_size=(1, 3), stride=1, padding=(0, 1))
    return torch.minimum(vertical, horizontal)


def _soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Soft (max-pool) dilation with a 3x3 square."""
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def soft_skeleton(x: torch.Tensor, iterations: int) -> torch.Tensor:
    """Differentiable skeleton of a [B, 1, H, W] map in [0, 1]: what each successive erosion's opening removes.

    Centrelines of structures up to about 2*iterations+1 pixels wide are recovered.
    """

    def ridge(y: torch.Tensor) -> torch.Tensor:
        return F.relu(y - _soft_dilate(_soft_erode(y)))

    skeleton = ridge(x)
    for _ in range(iterations):
        x = _soft_erode(x)
        delta = ridge(x)
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


class SoftCLDiceLoss(nn.Module):
    """1 - soft centreline Dice (Shit et al., 2021): rewards keeping thin vessels connected, not just overlapping.

    Topology precision = |skel(pred) . truth| / |skel(pred)|, sensitivity = |skel(truth) . pred| / |skel(truth)|,
    pooled over the batch. Pixels outside `valid` are zeroed in both maps before skeletonising, so the
    neighbourhood operations cannot carry them into the loss.
    """

    def __init__(self, iterations: int = 3, smooth: float = 1.0):
        super().__init__()
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        self.iterations = iterations
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        target, valid = _prepare(logits, target, valid)
        prob = (_vessel_probability(logits) * valid).unsqueeze(1)
        truth = (_vessel_target(target, logits.shape[1]) * valid).unsqueeze(1)
        skel_pred = soft_skeleton(prob, self.iterations)
        skel_truth = soft_skeleton(truth, self.iterations)
        precision = ((skel_pred * truth).sum() + self.smooth) / (skel_pred.sum() + self.smooth)
        sensitivity = ((skel_truth * prob).sum() + self.smooth) / (skel_truth.sum() + self.smooth)
        return 1.0 - 2.0 * precision * sensitivity / (precision + sensitivity)


def _jaccard_steps(truth_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at pixels sorted by decreasing error.

    Step k is how much the vessel-class Jaccard loss rises when the k-th worst pixel joins the mispredicted set.
    """
    positives = truth_sorted.sum()
    intersection = positives - truth_sorted.cumsum(0)
    union = positives + (1 - truth_sorted).cumsum(0)
    jaccard_loss = 1 - intersection / union
    return torch.cat([jaccard_loss[:1], jaccard_loss[1:] - jaccard_loss[:-1]])


class LovaszHingeLoss(nn.Module):
    """Lovasz hinge (Berman et al., CVPR 2018): a convex surrogate of 1 - IoU of the vessel class.

    The metric we report is IoU over all valid pixels at one threshold; this loss optimises that quantity at the
    logit 0, pooled over the batch like the metric, where BCE optimises per-pixel likelihood. One output channel
    (sigmoid) only.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        if logits.shape[1] != 1:
            raise ValueError(f"LovaszHingeLoss needs one logit channel, got {logits.shape[1]}")
        target, valid = _prepare(logits, target, valid)
        keep = valid.reshape(-1) > 0
        scores = logits[:, 0].reshape(-1)[keep].float()  # sorting needs fp32 margins under bf16 autocast
        truth = target.reshape(-1)[keep].float()
        if truth.numel() == 0:
            return logits.sum() * 0.0
        errors = 1.0 - scores * (2.0 * truth - 1.0)  # hinge margins: > 0 where a pixel is (nearly) wrong
        errors_sorted, order = torch.sort(errors, descending=True)
        return torch.dot(F.relu(errors_sorted), _jaccard_steps(truth[order]))


class _WeightedSum(nn.Module):
    """Weighted sum of losses sharing the (logits, target, valid) signature."""

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]):
        super().__init__()
        for name, (weight, _) in terms.items():
            if weight < 0:
                raise ValueError(f"{name}_weight must be >= 0, got {weight}")
        self.weights = {name: float(weight) for name, (weight, _) in terms.items()}
        self.terms = nn.ModuleDict({name: loss for name, (_, loss) in terms.items()})

    def forward(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return sum(self.weights[name] * loss(logits, target, valid) for name, loss in self.terms.items())


class BCEDiceLoss(_WeightedSum):
    """Cross-entropy (per-pixel calibration) + soft Dice (robust to the ~10% vessel class imbalance)."""

    def __init__(self, bce_weight: float = 0.5, dice_weight: float = 0.5, smooth: float = 1.0):
        super().__init__({"bce": (bce_weight, PixelCrossEntropy()), "dice": (dice_weight, SoftDiceLoss(smooth))})


class BCEDiceCLDiceLoss(_WeightedSum):
    """Cross-entropy + soft Dice + soft clDice; by default half cross-entropy, the overlap half split evenly
    between Dice and clDice (the clDice paper's alpha = 0.5)."""

    def __init__(
        self,
        bce_weight: float = 0.5,
        dice_weight: float = 0.25,
        cldice_weight: float = 0.25,
        iterations: int = 3,
        smooth: float = 1.0,
    ):
        super().__init__(
            {
                "bce": (bce_weight, PixelCrossEntropy()),
                "dice": (dice_weight, SoftDiceLoss(smooth)),
                "cldice": (cldice_weight, SoftCLDiceLoss(iterations, smooth)),
            }
        )


class BCELovaszLoss(_WeightedSum):
    """Cross-entropy (calibrated probabilities for the validation threshold) + Lovasz hinge (the IoU itself)."""

    def __init__(self, bce_weight: float = 0.5, lovasz_weight: float = 0.5):
        super().__init__({"bce": (bce_weight, PixelCrossEntropy()), "lovasz": (lovasz_weight, LovaszHingeLoss())})
