"""The non-local GBP denoiser: reduces to its local model without non-local factors; gradients of its
learned non-local parameters agree with finite differences; it loads and tiles like the local model."""

import torch

from gbp_torch.tasks.denoise.gbp import GBPDenoiser
from gbp_torch.tasks.denoise.nonlocal_gbp import NonLocalGBPDenoiser

DT = torch.float64


def small_model(**kwargs) -> NonLocalGBPDenoiser:
    torch.manual_seed(0)
    model = NonLocalGBPDenoiser(width=8, depth=3, context_width=0, context_depth=0, iters=30, k=4, patch=3,
                                radius=4, solve_iters=40, **kwargs).double()
    for p in model.local.factors.parameters():  # the last conv starts at zero: give the factors some shape
        torch.nn.init.normal_(p, std=0.2)
    return model


def noisy_image(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(0, 1, 24, dtype=DT)
    clean = (0.5 + 0.4 * torch.sin(6.0 * x)[None, :] * torch.cos(5.0 * x)[:, None]).expand(1, 1, 24, 24)
    return clean + 0.1 * torch.randn(1, 1, 24, 24, generator=g, dtype=DT)


def test_without_non_local_factors_it_is_the_local_model():
    model = small_model(robust=False)
    with torch.no_grad():
        model.match.mlp[-1].bias.fill_(-60.0)  # softplus -> ~1e-26: no non-local weight
        model.match.mlp[-1].weight.zero_()
        model.noisy_gain.fill_(-60.0)
    local = GBPDenoiser(width=8, depth=3, iters=30, sigma_input=True).double()
    local.load_state_dict(model.local.state_dict())
    noisy, sigma = noisy_image(), torch.tensor([0.1], dtype=DT)
    with torch.no_grad():
        ours, ref = model(noisy, sigma), local(noisy, sigma)
    torch.testing.assert_close(ours.mean, ref.mean, rtol=1e-6, atol=1e-8)


def test_non_local_factors_change_the_result():
    model = small_model()
    noisy, sigma = noisy_image(), torch.tensor([0.1], dtype=DT)
    with torch.no_grad():
        before = model(noisy, sigma).mean
        model.match.mlp[-1].bias[0] = 2.0  # strong non-local weights
        after = model(noisy, sigma).mean
    assert (after - before).abs().max() > 1e-3


def test_gradient_of_learned_parameters_matches_finite_differences():
    model = small_model(robust=True)
    noisy, sigma = noisy_image(1), torch.tensor([0.1], dtype=DT)
    target = noisy_image(2)
    params = [model.noisy_gain, model.match.rank_bias]

    def loss() -> torch.Tensor:
        return (model(noisy, sigma).mean - target).square().sum()

    grads = torch.autograd.grad(loss(), params)
    eps = 1e-6
    for p, g in zip(params, grads):
        for i in range(p.numel()):
            with torch.no_grad():
                p.view(-1)[i] += eps
                up = float(loss())
                p.view(-1)[i] -= 2 * eps
                down = float(loss())
                p.view(-1)[i] += eps
            assert abs((up - down) / (2 * eps) - float(g.view(-1)[i])) <= 1e-5 * max(1.0, abs(float(g.view(-1)[i])))


def test_variance_is_positive_and_blind_input_works():
    model = small_model().eval()
    with torch.no_grad():
        out = model(noisy_image())  # no sigma: estimated from the image
    assert out.mean.shape == out.var.shape == (1, 1, 24, 24) and (out.var > 0).all()


def test_tabulated_match_weights_equal_the_mlp():
    """Without autograd the MLP is read from a table: the same weights and thresholds to 1e-4 (relative)."""
    model = small_model().float()
    torch.nn.init.normal_(model.match.mlp[0].weight, std=1.0)  # a wiggly function of the distance
    g = torch.Generator().manual_seed(5)
    dist = torch.rand(2, 4, 9, 11, generator=g) ** 3 * 0.05
    dist[0, 1, 2, 3] = float("inf")
    sigma = torch.tensor([0.1, 0.02])
    with torch.no_grad():
        table = model.match(dist, sigma)
    direct = model.match(dist, sigma)
    for t, d in zip(table, direct):
        torch.testing.assert_close(t, d.detach(), rtol=1e-4, atol=1e-6)


def test_shipped_non_local_model_beats_the_local_one_on_a_repeated_texture():
    """The house of Set12 (a shipped sample: roof tiles and bricks), sigma 25: the non-local factors help."""
    from gbp_torch.io import read_image
    from gbp_torch.metrics import psnr
    from gbp_torch.paths import samples_dir
    from gbp_torch.pretrained import denoiser

    clean = read_image(samples_dir() / "denoise" / "set12_02_house.png")[:1][None]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([25 / 255])
    with torch.no_grad():
        ours, local = denoiser("gbp_denoiser_nonlocal")(noisy, sigma), denoiser("gbp_denoiser_gaussian")(noisy, sigma)
    assert float(psnr(ours.mean, clean)) > float(psnr(local.mean, clean)) + 0.1
    assert ours.var.shape == clean.shape and (ours.var > 0).all()


def test_big_images_run_the_non_local_stage_tile_by_tile(monkeypatch):
    """With ``factors.tile`` set, block matching and the joint solves see one grown tile (twice the network's
    side) at a time, so their K-per-pixel arrays stay that size, and the result is the whole-image one to within
    1/255."""
    from gbp_torch.io import read_image
    from gbp_torch.paths import samples_dir
    from gbp_torch.pretrained import denoiser
    from gbp_torch.tasks.denoise import nonlocal_gbp

    clean = read_image(samples_dir() / "denoise" / "set12_02_house.png")[:1][None]  # 256 x 256
    noisy = clean + 50 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    model = denoiser("gbp_denoiser_nonlocal")
    solved = []
    real_solve = nonlocal_gbp.solve_with_edges

    def recording_solve(z, *args, **kwargs):
        solved.append(tuple(z.shape[-2:]))
        return real_solve(z, *args, **kwargs)

    matched = []
    real_match = nonlocal_gbp.block_match

    def recording_match(image, *args, tile=None, **kwargs):
        matched.append((tuple(image.shape[-2:]), tile))
        return real_match(image, *args, tile=tile, **kwargs)

    monkeypatch.setattr(nonlocal_gbp, "solve_with_edges", recording_solve)
    monkeypatch.setattr(nonlocal_gbp, "block_match", recording_match)
    outs = {}
    for tile in (None, 48):
        model.factors.tile = tile
        solved.clear()
        matched.clear()
        with torch.no_grad():
            outs[tile] = model(noisy, torch.tensor([50 / 255]))
        sizes = set(solved)
    largest = 2 * 48 + 2 * model.HALO
    assert max(h * w for h, w in sizes) <= largest**2 and len(solved) == 2 * 9  # 3 x 3 tiles, two solves each
    # each stage tile is matched in one piece (no second tiling inside it), and no bigger image would be
    assert len(matched) == 9 and all(tile == largest and max(size) <= tile for size, tile in matched)
    assert (outs[48].mean - outs[None].mean).abs().max() <= 1 / 255
    assert (outs[48].var.sqrt() - outs[None].var.sqrt()).abs().max() <= 1 / 255
