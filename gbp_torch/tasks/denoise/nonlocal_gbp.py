"""Non-local GBP denoiser: the local model's factors plus factors between self-similar pixels.

Two stages, as in block-matching denoisers, in one factor graph:

1. The local :class:`~.gbp.GBPDenoiser` predicts the grid factors ``(z, a, wh, wv)`` and solves
   them: the pilot estimate.
2. :func:`~gbp_torch.vision.block_matching.block_match` finds, on the pilot, ``k`` partners per
   pixel spread over a search window. :class:`MatchWeights` turns each match's patch distance
   into a pairwise factor ``v/2 |x_i - x_n|^2`` (and a robust threshold), the noisy pixel is
   added as a second data factor of learned precision ``c / sigma^2``, and the grid and
   non-local factors are solved jointly (:func:`~gbp_torch.grid.extra_edges.solve_with_edges`,
   implicit gradient). With ``robust``, a second solve reweights the non-local factors by the
   Huber weight ``min(1, t / |x_i - x_n|)`` of the first solution (an IRLS step), so that a
   false match stops pulling.

Through the non-local factors each pixel pools the noisy values of the pixels it resembles,
which is what a grid model with a bounded receptive field cannot do on repeated texture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...grid.extra_edges import edge_differences, solve_with_edges
from ...tiling import Tiling, map_tiles
from ...vision.block_matching import block_match
from .features import checked_input, denoiser_input
from .gbp import REFERENCE_SIGMA, GBPDenoiser
from .noise_level import estimate_noise_sigma
from .output import DenoiseOutput


class MatchWeights(nn.Module):
    """Per-match factor parameters from the match's patch distance, rank and the noise level.

    Features per match: ``log(d / sigma^2 + 1e-3)``, ``d / sigma^2`` and ``log(sigma / 25)``
    (sigma on the 0-255 scale), plus a learned bias per rank. Outputs the weight ``v = s
    softplus(o_0)`` (``s = 1 / sigma^2``) and the robust threshold ``t = sigma softplus(o_1)``.
    """

    def __init__(self, k: int, hidden: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))
        self.rank_bias = nn.Parameter(torch.zeros(k))
        with torch.no_grad():  # start weak: v ~ 0.05 s, t ~ 2 sigma
            self.mlp[-1].weight.mul_(0.1)
            self.mlp[-1].bias.copy_(torch.tensor([-3.0, 2.0]))

    #: Points of the lookup table that replaces the MLP without autograd (see :meth:`forward`).
    TABLE = 16384

    def forward(self, dist: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """dist (B, K, H, W) (inf: no partner), sigma (B,) on the 0-1 scale -> weight, threshold (B, K, H, W).

        Without autograd the MLP, a function of one scalar per match and image, is evaluated on
        :attr:`TABLE` points spanning the image's values, the weight table once per rank, and read by
        linear interpolation (relative errors near 1e-6, at a fraction of the cost of running it per match)."""
        with torch.autocast(dist.device.type, enabled=False):  # float32 or wider under a caller's autocast too
            dtype = torch.promote_types(dist.dtype, torch.float32)
            return self._weights(dist.to(dtype), sigma.to(dtype))

    def _weights(self, dist: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        s2 = sigma.view(-1, 1, 1, 1).square()
        valid = torch.isfinite(dist)
        d = dist.masked_fill(~valid, 0.0).div_(s2)
        if not torch.is_grad_enabled():
            return self._tabulated(d.add_(1e-3).log_(), valid, sigma)  # u in d's storage
        u = torch.log(d + 1e-3)
        log_sigma = torch.log(sigma * 255.0 / 25.0).view(-1, 1, 1, 1)
        o = self._mlp(torch.stack((u, d, log_sigma.expand_as(u)), -1))
        weight = torch.where(valid, F.softplus(o[..., 0] + self.rank_bias.view(1, -1, 1, 1)) / s2, torch.zeros_like(u))
        threshold = F.softplus(o[..., 1]) * sigma.view(-1, 1, 1, 1) + 1e-4
        return weight, threshold

    def _mlp(self, x: Tensor) -> Tensor:
        """The MLP in its parameters' dtype, the result in x's (float64 images with the float32 weights)."""
        return self.mlp(x.to(self.mlp[0].weight.dtype)).to(x.dtype)

    def _tabulated(self, u: Tensor, valid: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward`'s outputs from tables: u, valid (B, K, H, W), sigma (B,) -> weight, threshold."""
        k = u.shape[1]
        weights, thresholds = [], []
        for ub, vb, sb in zip(u, valid, sigma):
            lo, hi = ub.min(), ub.max().clamp_min(ub.min() + 1e-6)
            grid = torch.linspace(0.0, 1.0, self.TABLE, dtype=u.dtype, device=u.device) * (hi - lo) + lo
            log_sigma = torch.log(sb * 255.0 / 25.0).expand_as(grid)
            table = self._mlp(torch.stack((grid, grid.exp() - 1e-3, log_sigma), -1))  # (T, 2)
            w_table = (F.softplus(table[:, 0] + self.rank_bias.view(-1, 1)) / sb.square()).flatten()  # (K T,)
            t_table = F.softplus(table[:, 1]) * sb + 1e-4  # (T,)
            pos = ub.sub_(lo).mul_((self.TABLE - 1) / (hi - lo)).clamp_(0, self.TABLE - 1)  # u's storage
            left = pos.floor().long().clamp_max_(self.TABLE - 2)
            frac = pos.sub_(left)
            rows = left + (torch.arange(k, device=u.device) * self.TABLE).view(-1, 1, 1)
            weights.append(torch.lerp(w_table.take(rows), w_table.take(rows + 1), frac).masked_fill_(~vb, 0.0))
            thresholds.append(torch.lerp(t_table.take(left), t_table.take(left + 1), frac))
        return torch.stack(weights), torch.stack(thresholds)


class NonLocalGBPDenoiser(nn.Module):
    """Noisy image -> local factors -> pilot -> block matching -> joint grid + non-local GBP solve.

    Args:
        width, depth, context_width, context_depth, iters, levels, sigma_input: the local
            :class:`~.gbp.GBPDenoiser` (``self.local``; load the shipped weights into it to fine-tune).
        k, patch, radius, cell: block matching (see :func:`~gbp_torch.vision.block_matching.block_match`).
        hidden: width of :class:`MatchWeights`.
        solve_iters: FCG steps of each joint solve (at most, with ``solve_tol``).
        solve_tol: stop each joint solve at this relative residual (None: always ``solve_iters`` steps);
            the first solve starts from the pilot, the reweighted one from the first one's solution.
        robust: one IRLS reweighting of the non-local factors (two joint solves).
        train_local: let gradients reach the local network (else it is frozen inside this model).
        var_scale, var_slope: variance calibration, as in :class:`~.gbp.GBPDenoiser`.

    Big images: with ``factors.tile`` set, the network runs tile by tile (exact) and the non-local stage
    (block matching, the joint solves) on tiles :attr:`STAGE_TILE_FACTOR` times as big grown by :attr:`HALO`
    pixels (within about 1/255 of the whole-image result), so its K-per-pixel arrays stay those of one tile.
    """

    #: The non-local stage's tiles are this many times the network's (``factors.tile``): its margin is
    #: wider (1024 x 1024 on 2 threads with 256-pixel network tiles: 3.0 s with 512-pixel stage tiles, 3.5 s
    #: with 256, 3.1 s with 768).
    STAGE_TILE_FACTOR = 2
    #: Margin of the tiles of the non-local stage on big images: block matching there is exact
    #: (partners and patches lie within ``radius + patch // 2``); the joint solve's response to what
    #: lies beyond the margin decays over a few smoothness lengths (tiled vs whole image: see the tests).
    HALO = 48

    def __init__(self, width: int = 48, depth: int = 8, context_width: int = 64, context_depth: int = 8,
                 iters: int = 8, levels: int | None = None, sigma_input: bool = True, k: int = 8, patch: int = 7,
                 radius: int = 9, cell: int = 3, hidden: int = 16, solve_iters: int = 10, robust: bool = True,
                 train_local: bool = False, var_scale: float = 1.0, var_slope: float = 0.0,
                 solve_tol: float | None = None):
        super().__init__()
        self.local = GBPDenoiser(width=width, depth=depth, iters=iters, levels=levels, sigma_input=sigma_input,
                                 var_scale=var_scale, var_slope=var_slope, context_width=context_width,
                                 context_depth=context_depth)
        self.match = MatchWeights(k, hidden)
        self.noisy_gain = nn.Parameter(torch.tensor(-3.0))  # c = softplus(.): the noisy pixel's extra precision
        self.k, self.patch, self.radius, self.cell = k, patch, radius, cell
        self.solve_iters, self.solve_tol, self.robust, self.train_local = solve_iters, solve_tol, robust, train_local

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> DenoiseOutput:
        """noisy (B, 1, H, W) in [0, 1] (uint8 / uint16: scaled); sigma (B,) noise std on the 0-1 scale, or None
        (blind)."""
        noisy, sigma = checked_input(noisy, sigma)
        local = self.local
        if sigma is None and local.sigma_input and noisy.dim() == 4:
            sigma = estimate_noise_sigma(noisy)
        feats = denoiser_input(noisy, sigma, local.sigma_input, "NonLocalGBPDenoiser")
        if sigma is None:  # a model without sigma input: the reference level, like the local model's blind scale
            sigma = noisy.new_full(noisy.shape[:1], REFERENCE_SIGMA)
        sigma = sigma.to(noisy).clamp_min(1e-3)
        scale = 1.0 / sigma.square()
        with torch.set_grad_enabled(self.train_local and torch.is_grad_enabled()):
            f = local.factors(feats, noisy, data_scale=scale, smooth_scale=scale)
            del feats  # big images: not needed by the solves
            pilot = local.gbp(f.z[:, 0], f.data_precision, (f.wh, f.wv)).mean.unsqueeze(1)
        a = f.data_precision
        tile = None if local.factors.tile is None else self.STAGE_TILE_FACTOR * local.factors.tile
        if tile is None or max(noisy.shape[-2:]) <= tile:
            mean, var = self._joint(noisy, pilot, f.z, a, f.wh, f.wv, sigma)
        else:  # the non-local stage tile by tile: its edge arrays (K per pixel) stay those of one tile

            def stage(part: Tensor) -> Tensor:  # (B, 6, h, w) -> mean and variance (B, 2, h, w)
                n, p, z, at, wh, wv = part.split(1, 1)
                m, v = self._joint(n, p, z, at[:, 0], wh[:, 0, :, :-1], wv[:, 0, :-1], sigma)
                return torch.cat((m, v.unsqueeze(1)), 1)

            fields = torch.cat((noisy, pilot, f.z, a.unsqueeze(1), F.pad(f.wh, (0, 1)).unsqueeze(1),
                                F.pad(f.wv, (0, 0, 0, 1)).unsqueeze(1)), 1)
            del f
            out = map_tiles(stage, fields, Tiling(tile=tile, margin=self.HALO, align=1),
                            progress=local.factors.progress, desc="non-local tiles")
            mean, var = out[:, :1], out[:, 1]
        return DenoiseOutput(mean, local.variance_factor(sigma, var) * var.unsqueeze(1))

    def _joint(self, noisy: Tensor, pilot: Tensor, z: Tensor, a: Tensor, wh: Tensor, wv: Tensor,
               sigma: Tensor) -> tuple[Tensor, Tensor]:
        """Block matching on the pilot and the joint grid + non-local solve(s): mean (B, 1, H, W), variance
        (B, H, W) before calibration. noisy, pilot, z (B, 1, H, W); a (B, H, W); wh, wv the grid weights."""
        scale = 1.0 / sigma.square()
        tile = self.local.factors.tile  # bounds the matching's (B, squares, H, W) winners; a stage tile stays whole
        matches = block_match(pilot.detach(), self.k, self.patch, self.radius, self.cell,
                              tile=None if tile is None else self.STAGE_TILE_FACTOR * tile + 2 * self.HALO)
        weight, threshold = self.match(matches.dist, sigma)
        c = F.softplus(self.noisy_gain) * scale.view(-1, 1, 1)
        b = a + c
        z = (a.unsqueeze(1) * z + c.unsqueeze(1) * noisy) / b.unsqueeze(1)
        res = solve_with_edges(z, b, wh, wv, matches.index, weight, self.solve_iters, self.solve_tol, x0=pilot)
        if self.robust:
            gap = edge_differences(matches.index, res.mean)[:, 0].abs()
            huber = torch.minimum(torch.ones_like(gap), threshold / gap.clamp_min(1e-12))
            res = solve_with_edges(z, b, wh, wv, matches.index, weight * huber, self.solve_iters,
                                   self.solve_tol, x0=res.mean)
        return res.mean, res.var

    @property
    def factors(self) -> nn.Module:
        """The local factor network (its ``tile`` attribute sets tiled inference)."""
        return self.local.factors

    @property
    def sigma_input(self) -> bool:
        return self.local.sigma_input

    @property
    def var_scale(self) -> float:
        return self.local.var_scale

    @property
    def var_slope(self) -> float:
        return self.local.var_slope
