"""U-Net shapes for awkward sizes, overlap-tile alignment, parameter count by formula, validation, gradients."""

import pytest
import torch
import torch.nn.functional as F

from retina_seg.models.unet import DropBlock, UNet, count_parameters, min_input_side, mirror_pad

SIZES = [(512, 512), (584, 565), (97, 131)]  # (H, W); 584x565 is DRIVE, 97x131 is odd and not a multiple of 16


def expected_parameters(in_channels, num_classes, depth, base_width, batch_norm):
    """The U-Net parameter count written out layer by layer, independent of the implementation."""

    def conv3(c_in, c_out):
        return 9 * c_in * c_out + (2 * c_out if batch_norm else c_out)  # BN: weight+bias replace the conv bias

    def double(c_in, c_out):
        return conv3(c_in, c_out) + conv3(c_out, c_out)

    widths = [base_width * 2**level for level in range(depth)]
    encoder = sum(double(c_in, c_out) for c_in, c_out in zip([in_channels] + widths[:-1], widths))
    up = sum(4 * widths[lvl + 1] * widths[lvl] + widths[lvl] for lvl in range(depth - 1))
    decoder = sum(double(2 * widths[lvl], widths[lvl]) for lvl in range(depth - 1))
    head = widths[0] * num_classes + num_classes
    return encoder + up + decoder + head


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("size", SIZES)
def test_output_has_input_size(padding, size):
    model = UNet(depth=5, base_width=2, padding=padding).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_valid_depth5_drive_size_and_multiclass():
    model = UNet(num_classes=3, depth=5, base_width=2, padding="valid", batch_norm=True, dropout=0.2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 584, 565)).shape == (1, 3, 584, 565)


def test_reference_network_parameter_count():
    count = count_parameters(UNet(in_channels=3, num_classes=1, depth=5, base_width=64))
    assert count == expected_parameters(3, 1, 5, 64, batch_norm=False)
    assert 30e6 < count < 32e6  # "about 31M", as in the U-Net paper's architecture


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(depth=4, base_width=16, batch_norm=True),
        dict(depth=1, base_width=8),
        dict(depth=3, base_width=4, in_channels=1, num_classes=2, padding="valid"),
    ],
)
def test_parameter_count_formula_other_configs(kwargs):
    model = UNet(**kwargs)
    full = dict(in_channels=3, num_classes=1, batch_norm=False) | kwargs
    full.pop("padding", None)
    assert count_parameters(model) == expected_parameters(**full)


@pytest.mark.parametrize("depth", [3, 5])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_minimum_size_is_accepted_and_one_less_is_rejected(padding, depth):
    side = min_input_side(depth, padding)
    model = UNet(depth=depth, base_width=2, padding=padding).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, side, side)).shape == (1, 1, side, side)
    with pytest.raises(ValueError, match=f"at least {side} pixels"):
        model(torch.randn(1, 3, side, side - 1))


def test_minimum_sides():
    assert [min_input_side(depth, "same") for depth in (1, 3, 5)] == [1, 4, 16]
    assert [min_input_side(depth, "valid") for depth in (1, 3, 5)] == [1, 1, 1]


def test_same_depth5_too_small_names_minimum():
    with pytest.raises(ValueError, match="at least 16 pixels"):
        UNet(depth=5, base_width=2, padding="same")(torch.randn(1, 3, 15, 131))


@pytest.mark.parametrize("size", [(1, 1), (2, 7), (5, 3), (16, 200)])
def test_valid_depth5_accepts_tiny_inputs(size):
    model = UNet(depth=5, base_width=1, padding="valid", batch_norm=True).train()
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size) and torch.isfinite(out).all()


@pytest.mark.parametrize("depth, margin", [(1, 2), (2, 8), (3, 20), (5, 92)])
def test_valid_margin(depth, margin):
    # Each 3x3 conv trims 1 px per side at its level's scale: 2 * (2 * (1 + 2 + ... + 2**(depth-2)) + 2**(depth-1)).
    assert UNet(depth=depth, base_width=1, padding="valid").margin == margin
    assert UNet(depth=depth, base_width=1, padding="same").margin == 0


def test_mirror_pad_is_reflect_and_extends_past_the_image():
    x = torch.randn(2, 3, 9, 12)
    assert torch.equal(mirror_pad(x, 3, 5, 2, 7), F.pad(x, (2, 7, 3, 5), mode="reflect"))
    row = torch.arange(3.0).view(1, 1, 1, 3)  # [0 1 2] mirrored repeatedly: ...1 2 1 [0 1 2] 1 0 1 2 1...
    assert mirror_pad(row, 0, 0, 3, 6)[0, 0, 0].tolist() == [1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1, 0]
    assert torch.equal(mirror_pad(torch.ones(1, 1, 1, 1) * 7, 4, 5, 2, 3), torch.full((1, 1, 10, 6), 7.0))


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_valid_geometry_is_exact_for_every_size(depth):
    """The padded size is always exact: no encoder map is pooled with an odd size (no floor loss), every skip crop
    is centred exactly, and the raw logits cover the input (< 2**(depth-1) extra px), so nothing is ever resized."""
    model = UNet(depth=depth, base_width=1, padding="valid").eval()
    maps = {"enc": [], "up": [], "head": []}
    for name, modules in (("enc", model.encoder), ("up", model.upsamples), ("head", [model.head])):
        for module in modules:
            module.register_forward_hook(lambda _m, _i, out, name=name: maps[name].append(out.shape[-2:]))
    stride = 2 ** (depth - 1)
    sides = range(1, 3 * stride + 3) if depth < 5 else [1, 2, 3, 15, 16, 17, 30, 31, 97, 131]
    with torch.no_grad():
        for side in sides:
            for key in maps:
                maps[key].clear()
            assert model(torch.randn(1, 3, side, side + 1)).shape[-2:] == (side, side + 1)
            assert all(h % 2 == 0 and w % 2 == 0 for h, w in maps["enc"])
            for skip, up in zip(reversed(maps["enc"]), maps["up"]):
                crop_h, crop_w = skip[0] - up[0], skip[1] - up[1]
                assert crop_h >= 0 and crop_w >= 0 and crop_h % 2 == 0 and crop_w % 2 == 0
            ((raw_h, raw_w),) = maps["head"]
            assert 0 <= raw_h - side < stride and 0 <= raw_w - side - 1 < stride


def _random_model(depth):
    """A valid U-Net in eval mode with He-initialised weights and random biases, so that its output varies (the
    default init leaves a thin depth-5 net nearly constant, and a constant output would pass any shift test)."""
    model = UNet(depth=depth, base_width=2, padding="valid").eval()
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.normal_(module.bias, std=0.1)
    return model


def _nontrivial(out):
    assert out.std() > 0.1, "random network output is nearly constant; the comparison would prove nothing"
    return out


def _reach(model, depth):
    """Input px an output px can see on each side: the margin the convs trim, plus up to 2**(depth-1) - 1 px
    from where it sits inside the pooling windows."""
    return model.margin + 2 ** (depth - 1) - 1


@pytest.mark.parametrize("depth, size", [(3, (72, 80)), (5, (256, 264))])
def test_valid_output_is_aligned_translation_equivariant(depth, size):
    """Shifting the input by the pooling stride shifts the logits by exactly that much (away from the borders).

    The old stretch-to-size implementation fails this: it scales every displacement by H / (H - 2 * margin)."""
    torch.manual_seed(0)
    model = _random_model(depth)
    shift, m = 2 ** (depth - 1), _reach(model, depth)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        out = _nontrivial(model(x))
        shifted = model(torch.roll(x, shifts=(shift, shift), dims=(-2, -1)))
    height, width = size
    # Output px i sees at most input px i-m..i+m: this window avoids the rolled-in band and both images' padding.
    rows, cols = slice(shift + m, height - m), slice(shift + m, width - m)
    rows_before, cols_before = slice(m, height - m - shift), slice(m, width - m - shift)
    assert rows.stop - rows.start >= 16 and cols.stop - cols.start >= 16
    torch.testing.assert_close(shifted[..., rows, cols], out[..., rows_before, cols_before], atol=1e-4, rtol=0)


@pytest.mark.parametrize("depth, size", [(3, (64, 67)), (5, (240, 251))])
def test_valid_border_handling_is_local(depth, size):
    """The logits equal those of the same network on a larger image holding the input at its centre, except within
    reach of the border, where the mirrored context stands in for the unseen surroundings."""
    torch.manual_seed(1)
    model = _random_model(depth)
    m, context = _reach(model, depth), 3 * 2 ** (depth - 1)  # context: a multiple of the stride keeps the pooling grid
    x = torch.randn(1, 3, *size)
    big = torch.randn(1, 3, size[0] + 2 * context, size[1] + 2 * context + 5)
    big[..., context : context + size[0], context : context + size[1]] = x
    with torch.no_grad():
        out = _nontrivial(model(x))
        out_big = model(big)[..., context : context + size[0], context : context + size[1]]
    inner = (..., slice(m, size[0] - m), slice(m, size[1] - m))
    torch.testing.assert_close(out_big[inner], out[inner], atol=1e-4, rtol=0)
    assert not torch.allclose(out_big, out, atol=1e-4)  # at the border the unseen context does matter


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(padding="reflect"), "padding"),
        (dict(depth=0), "depth"),
        (dict(base_width=0), "base_width"),
        (dict(in_channels=0), "in_channels"),
        (dict(num_classes=0), "num_classes"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropblock_rate=1.0), "dropblock rate"),
        (dict(dropblock_size=4), "dropblock size"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        UNet(**kwargs)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_gradient_reaches_every_parameter(padding):
    model = UNet(depth=3, base_width=2, padding=padding, batch_norm=True, dropout=0.1)
    model(torch.randn(2, 3, 61, 67)).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_dropblock_zeroes_whole_squares_only_in_training_and_keeps_the_mean():
    block = DropBlock(rate=0.1, size=5)
    x = torch.ones(4, 3, 64, 64)
    torch.manual_seed(0)
    out = block.train()(x)
    dropped = out[:, 0] == 0
    assert torch.equal(dropped[:, None].expand_as(out), out == 0)  # one mask shared by the channels
    assert 0.05 < dropped.float().mean() < 0.15  # about `rate` of the positions
    assert out.mean() == pytest.approx(1.0, abs=1e-5)  # survivors are scaled up, as in dropout
    # Every dropped pixel lies in a fully dropped 5x5 square (an opening with a 5x5 square keeps it).
    opened = -F.max_pool2d(-dropped.float()[:, None], 5, stride=1, padding=2)
    opened = F.max_pool2d(opened, 5, stride=1, padding=2)[:, 0] > 0
    interior = (slice(None), slice(4, -4), slice(4, -4))  # squares centred 2+ px inside lie wholly inside
    assert torch.equal(opened[interior], dropped[interior])
    assert torch.equal(block.eval()(x), x)


def test_dropblock_appears_once_per_block_and_only_when_asked():
    plain = UNet(depth=3, base_width=2, batch_norm=True)
    regularised = UNet(depth=3, base_width=2, batch_norm=True, dropblock_rate=0.1, dropblock_size=3)
    assert not any(isinstance(m, DropBlock) for m in plain.modules())
    assert sum(isinstance(m, DropBlock) for m in regularised.modules()) == 2 * 3 - 1  # encoder, bottleneck, decoder
    assert count_parameters(plain) == count_parameters(regularised)


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_one_exported_program_serves_every_input_size(padding):
    """torch.export with dynamic batch, height and width (retina-seg-export's .pt2): sizes on both sides of every
    size branch (odd and even; for "valid" with and without extra bottom/right pixels) run and match eager."""
    torch.manual_seed(0)
    net = UNet(depth=3, base_width=2, padding=padding).eval()
    dynamic = {"x": {0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}}
    program = torch.export.export(net, (torch.randn(2, 3, 37, 29),), dynamic_shapes=dynamic).module()
    for size in [(1, 3, 36, 36), (3, 3, 37, 21), (1, 3, 20, 44)]:
        image = torch.randn(*size)
        with torch.no_grad():
            torch.testing.assert_close(program(image), net(image))
