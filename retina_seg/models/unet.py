"""A from-scratch U-Net (Ronneberger et al., 2015) with padded ("same") or unpadded ("valid") convolutions.

With padding="valid" every 3x3 conv trims a pixel per side, so the logits cover only the input's centre. Stretching
them back to the input size would misplace every prediction near the border relative to its label (a conv net cannot
learn such a position-dependent stretch). Instead, as in the original paper, the network uses the overlap-tile
strategy: the input is extended by mirroring its borders, so the valid output covers exactly the input's pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDINGS = ("same", "valid")


def vessel_probability(logits: torch.Tensor) -> torch.Tensor:
    """[B,1,H,W] probability of the vessel class: sigmoid for one channel, softmax class 1 otherwise.

    Kept here, beside the network and free of Lightning, so that prediction and export start quickly.
    """
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)[:, 1:2]


def flip_averaged(net: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Test-time augmentation: mean vessel probability over identity, h-flip and v-flip."""
    total = vessel_probability(net(image))
    for dims in ((3,), (2,)):
        total = total + vessel_probability(net(image.flip(dims))).flip(dims)
    return total / 3


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters, the figure papers quote (BN running stats are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _validate_dropblock(rate: float, size: int) -> None:
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropblock rate must be in [0, 1), got {rate!r}")
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"dropblock size must be an odd integer >= 1, got {size!r}")


class DropBlock(nn.Module):
    """DropBlock (Ghiasi et al., 2018): in training, zero random size x size squares of the feature map.

    Dropping whole squares removes the spatially correlated evidence a conv layer would otherwise rebuild from the
    neighbours of a dropped pixel; SA-UNet (Guo et al., 2021) uses it against overfitting DRIVE's 20 images.
    One mask is shared by all channels (cheaper on a CPU); `rate` is the fraction of positions dropped.
    """

    def __init__(self, rate: float, size: int):
        super().__init__()
        _validate_dropblock(rate, size)
        self.rate, self.size = rate, size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        # Block centres at this density make about `rate` of all positions fall in some block.
        centres = (torch.rand(x.shape[0], 1, *x.shape[2:], device=x.device) < self.rate / self.size**2).float()
        half = self.size // 2  # a square max-pool done as two 1-D ones: the same blocks, far fewer comparisons
        dropped = F.max_pool2d(centres, (self.size, 1), stride=1, padding=(half, 0))
        dropped = F.max_pool2d(dropped, (1, self.size), stride=1, padding=(0, half))
        keep = 1.0 - dropped
        scale = keep.numel() / keep.sum().clamp_min(1.0)  # keeps the expected activation, as dropout does
        return x * (keep * scale).to(x.dtype)  # in x's dtype, so bf16 autocast stays bf16


class DoubleConv(nn.Sequential):
    """Two 3x3 conv (+BN) + ReLU, optionally followed by DropBlock and Dropout2d: the unit every U-Net level
    repeats."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pad: int,
        batch_norm: bool,
        dropout: float,
        dropblock_rate: float = 0.0,
        dropblock_size: int = 7,
    ):
        layers: list[nn.Module] = []
        for channels in (in_channels, out_channels):
            # A bias right before BN is redundant (BN's shift absorbs it), so drop it there.
            layers.append(nn.Conv2d(channels, out_channels, 3, padding=pad, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        if dropblock_rate > 0:  # once per block: after every conv would cost ~35% more CPU time per step
            layers.append(DropBlock(dropblock_rate, dropblock_size))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


def _validate(in_channels: int, num_classes: int, depth: int, base_width: int, padding: str, dropout: float) -> None:
    """Fail at construction, naming the argument, rather than with a shape error deep inside forward."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    for name, value, low in (
        ("in_channels", in_channels, 1),
        ("num_classes", num_classes, 1),
        ("depth", depth, 1),
        ("base_width", base_width, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def valid_margin(depth: int) -> int:
    """Input pixels a valid network loses per side: each 3x3 conv trims 1 px per side at its level's scale.

    Levels 0..depth-2 have a conv pair in the encoder and one in the decoder, the bottleneck one pair (depth 5: 92).
    """
    scales = [2**level for level in range(depth - 1)]
    return 2 * (2 * sum(scales) + 2 ** (depth - 1))


def _exact_extra(side: int, depth: int) -> int:
    """Smallest e >= 0 making side + e "exact" for a valid network.

    Exact: every encoder map is even after its convs, so pooling drops nothing and the skip crops line up. Walking
    down the encoder (side -> (side - 4) / 2 per level), those sides are 4 * (2**(depth-1) - 1) plus a multiple of
    2**(depth-1).
    """
    stride = 2 ** (depth - 1)
    return (4 * (stride - 1) - side) % stride


def _mirror_index(size: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    """Indices extending range(size) by mirroring (torch's "reflect"), repeated when the pad exceeds the image."""
    index = torch.arange(-before, size + after, device=device)
    if size == 1:
        return torch.zeros_like(index)  # a single row/column can only be replicated
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


def mirror_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Mirror-extend the last two dims; equals F.pad(mode="reflect") where that works, and also for any larger pad."""
    rows = _mirror_index(x.shape[-2], top, bottom, x.device)
    cols = _mirror_index(x.shape[-1], left, right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def min_input_side(depth: int, padding: str) -> int:
    """Smallest height/width the network accepts, so a too-small input fails with a clear message.

    "same": 2**(depth-1), so that the deepest map keeps at least one pixel. "valid": 1, as the mirror padding
    always extends the input to a size the network handles exactly.
    """
    return 2 ** (depth - 1) if padding == "same" else 1


def _pad_to(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Zero-pad an upsampled map that is smaller than its skip (floor pooling of odd sizes loses a row/column)."""
    dh, dw = size[0] - x.shape[-2], size[1] - x.shape[-1]
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))


def _center_crop(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Crop a skip to the decoder map, as the original U-Net does (unpadded convs shrink the decoder path)."""
    top, left = (x.shape[-2] - size[0]) // 2, (x.shape[-1] - size[1]) // 2
    return x[..., top : top + size[0], left : left + size[1]]


def _crop_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The top-left HxW of the logits. Gathered rather than sliced: a slice of a map that may already be HxW makes
    torch.export fix that case into the exported program, which then refuses the other input sizes."""
    rows = torch.arange(height, device=x.device)
    cols = torch.arange(width, device=x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


class UNet(nn.Module):
    """U-Net: `depth` resolution levels (depth 5 = 4 poolings), channels doubling from `base_width` per level.

    The output always has the input's height and width, each logit aligned with its input pixel. padding="same":
    the decoder pads upsampled maps to their skips. padding="valid" (overlap-tile, Ronneberger et al. 2015): the
    input is mirror-padded by the margin the convs lose (`self.margin` per side, plus a few bottom/right pixels so
    that every pooling is exact), so the unpadded network's output starts at input pixel 0 and is cropped to HxW.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        depth: int = 5,
        base_width: int = 64,
        padding: str = "same",
        batch_norm: bool = False,
        dropout: float = 0.0,
        dropblock_rate: float = 0.0,
        dropblock_size: int = 7,
    ):
        super().__init__()
        _validate(in_channels, num_classes, depth, base_width, padding, dropout)
        _validate_dropblock(dropblock_rate, dropblock_size)  # also when rate 0 builds no DropBlock
        blocks = {"dropblock_rate": dropblock_rate, "dropblock_size": dropblock_size}
        self.padding = padding
        self.depth = depth
        self.min_side = min_input_side(depth, padding)
        self.margin = valid_margin(depth) if padding == "valid" else 0
        widths = [base_width * 2**level for level in range(depth)]
        pad = 1 if padding == "same" else 0
        self.encoder = nn.ModuleList(
            DoubleConv(c_in, c_out, pad, batch_norm, 0.0, **blocks)
            for c_in, c_out in zip([in_channels] + widths[:-2], widths[:-1])
        )
        self.bottleneck = DoubleConv(
            widths[-2] if depth > 1 else in_channels, widths[-1], pad, batch_norm, dropout, **blocks
        )
        decoder_levels = list(reversed(range(depth - 1)))
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], kernel_size=2, stride=2) for level in decoder_levels
        )
        self.decoder = nn.ModuleList(
            DoubleConv(2 * widths[level], widths[level], pad, batch_norm, dropout, **blocks) for level in decoder_levels
        )
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)

    def _check_size(self, height: int, width: int) -> None:
        """Raise a readable error instead of an empty-tensor crash several layers deep."""
        if min(height, width) < self.min_side:
            raise ValueError(
                f"input {height}x{width} is too small for padding={self.padding!r} with depth "
                f"{self.depth}: height and width must each be at least {self.min_side} pixels"
            )

    def _overlap_tile(self, x: torch.Tensor) -> torch.Tensor:
        """Mirror-pad by the margin on top/left, and by margin + the extra for an exact size on bottom/right."""
        height, width = x.shape[-2:]
        m = self.margin
        extra_h = _exact_extra(height + 2 * m, self.depth)
        extra_w = _exact_extra(width + 2 * m, self.depth)
        return mirror_pad(x, m, m + extra_h, m, m + extra_w)

    def _merge(self, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Bring the upsampled map and its skip to one size, then concatenate them channel-wise."""
        if self.padding == "same":
            up = _pad_to(up, skip.shape[-2:])
        else:
            skip = _center_crop(skip, up.shape[-2:])
        return torch.cat([skip, up], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [B, num_classes, H, W] for an input [B, in_channels, H, W]."""
        height, width = x.shape[-2:]
        self._check_size(height, width)
        if self.padding == "valid":
            x = self._overlap_tile(x)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for upsample, block, skip in zip(self.upsamples, self.decoder, reversed(skips)):
            x = block(self._merge(upsample(x), skip))
        # "same" already has HxW; "valid" starts at input pixel 0 and runs e (< 2**(depth-1)) pixels past the end.
        logits = self.head(x)
        return _crop_to(logits, height, width) if self.padding == "valid" else logits
