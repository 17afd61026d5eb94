"""Tiled evaluation equals whole-image evaluation when the margin covers the receptive field."""

import pytest
import torch
from torch import nn

from gbp_torch.nets import ContextBranch, GridFactorNet, body_plus_context, conv_stack
from gbp_torch.tiling import Tiling, map_tiles, tile_spans

DT = torch.float64


@pytest.mark.parametrize("size,tile,margin,align", [(100, 32, 5, 2), (7, 4, 3, 1), (64, 64, 8, 4), (65, 16, 0, 8)])
def test_spans_cover_once_with_margins(size, tile, margin, align):
    spans = tile_spans(size, tile, margin, align)
    covered = torch.zeros(size, dtype=torch.long)
    for start, stop, c0, c1 in spans:
        covered[c0:c1] += 1
        assert start % align == 0 and 0 <= start <= c0 < c1 <= stop <= size
        assert c0 - start >= min(margin, c0) and stop - c1 >= min(margin, size - c1)
    assert (covered == 1).all()


def conv_net(depth: int, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for i in range(depth):
        layers += [nn.Conv2d(2 if i == 0 else 4, 4, 3, padding=1), nn.Tanh()]
    return nn.Sequential(*layers).double()


def test_map_tiles_equals_whole_image():
    net = conv_net(5)  # receptive radius 5
    x = torch.randn(2, 2, 53, 71, dtype=DT)
    with torch.no_grad():
        ref = net(x)
        out = map_tiles(net, x, Tiling(tile=16, margin=5, align=1))
        short = map_tiles(net, x, Tiling(tile=16, margin=3, align=1))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    assert (short - ref).abs().max() > 1e-6  # a margin below the receptive radius shows at the seams


def test_factor_net_with_context_branch_tiles_exactly():
    """The shipped denoiser's architecture (body + half-resolution context branch), odd image sizes."""
    torch.manual_seed(0)
    net = GridFactorNet(in_channels=2, width=8, depth=4, context_width=8, context_depth=3, tile=None).double()
    for p in net.parameters():  # the last convs start at zero: give every weight a value
        nn.init.normal_(p, std=0.3)
    x = torch.rand(1, 2, 61, 45, dtype=DT)
    meas = x[:, :1]
    with torch.no_grad():
        ref = net(x, meas, 3.0, 2.0)
        net.tile = 16
        assert net.tiling().margin >= net.receptive_radius == 8
        out = net(x, meas, 3.0, 2.0)
    for name in ("z", "data_precision", "wh", "wv"):
        torch.testing.assert_close(getattr(out, name), getattr(ref, name), rtol=1e-12, atol=1e-12)


def test_fn_that_changes_size_is_refused():
    with pytest.raises(ValueError, match="tile size"):
        map_tiles(lambda t: t[..., 1:, :], torch.zeros(1, 1, 40, 40), Tiling(tile=16, margin=2))


def test_bad_tiling_is_refused():
    with pytest.raises(ValueError, match="multiple of align"):
        Tiling(tile=15, margin=2, align=2)


@pytest.mark.parametrize("context_depth", [0, 3])
def test_body_plus_context_tiles_exactly_and_gradients_flow(context_depth):
    torch.manual_seed(0)
    body = conv_stack(3, 6, 4, 2).double()
    nn.init.normal_(body[-1].weight, std=0.3)
    context = ContextBranch(3, 6, context_depth, 2).double() if context_depth else None
    if context is not None:
        nn.init.normal_(context.body[-1].weight, std=0.3)
    x = torch.randn(1, 3, 45, 58, dtype=DT, requires_grad=True)
    ref = body(x) + (context(x) if context is not None else 0)
    out = body_plus_context(body, context, x, tile=12)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    g_ref, = torch.autograd.grad(ref.square().sum(), x)
    g_out, = torch.autograd.grad(out.square().sum(), x)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-10, atol=1e-12)


def test_factor_net_progress_bar_over_tiles(capsys):
    pytest.importorskip("tqdm")
    net = GridFactorNet(in_channels=1, width=4, depth=2, tile=16).double()
    x = torch.rand(1, 1, 40, 40, dtype=DT)
    with torch.no_grad():
        quiet = net(x, x, 1.0, 1.0)
        assert "tiles" not in capsys.readouterr().err
        net.progress = True
        shown = net(x, x, 1.0, 1.0)
    assert "tiles" in capsys.readouterr().err  # tqdm writes its bar (9 tiles) to stderr
    torch.testing.assert_close(shown.z, quiet.z, rtol=0, atol=0)
