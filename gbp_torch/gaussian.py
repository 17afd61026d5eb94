"""Canonical-form Gaussian algebra on batches.

A Gaussian N(mu, Sigma) over a D-vector is held as ``(eta, lam)`` with
``lam = Sigma^-1`` (the precision) and ``eta = lam mu`` (the information
vector). Shapes: ``eta`` (..., D), ``lam`` (..., D, D); leading dims are any
batch. Products add canonical parameters, quotients subtract them,
marginalising is a Schur complement, conditioning is slicing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from .linalg import matvec, spd_inverse, spd_solve, symmetrize

Index = Union[int, Sequence[int], Tensor]


def check_canonical(eta: Tensor, lam: Tensor, *, name: str = "gaussian", psd_ok: bool = False) -> None:
    """Raise ``ValueError`` unless ``(eta, lam)`` is a valid batch of canonical Gaussians.

    Checks: shapes (..., D) and (..., D, D) with matching batch; finite values;
    symmetric ``lam``; positive definite ``lam`` (positive semi-definite when
    ``psd_ok``, as for factors that constrain only some directions).
    """
    if lam.dim() < 2 or lam.shape[-1] != lam.shape[-2]:
        raise ValueError(f"{name}: precision must have shape (..., D, D), got {tuple(lam.shape)}")
    if eta.dim() < 1 or eta.shape[-1] != lam.shape[-1]:
        raise ValueError(
            f"{name}: information vector must have shape (..., {lam.shape[-1]}) to match precision "
            f"{tuple(lam.shape)}, got {tuple(eta.shape)}"
        )
    if eta.shape[:-1] != lam.shape[:-2]:
        raise ValueError(f"{name}: batch shapes differ: eta {tuple(eta.shape)} vs lam {tuple(lam.shape)}")
    check_precision(lam, name=name, psd_ok=psd_ok)
    if not torch.isfinite(eta).all():
        raise ValueError(f"{name}: information vector contains NaN or inf")


def check_precision(lam: Tensor, *, name: str = "precision", psd_ok: bool = False) -> None:
    """Raise ``ValueError`` unless ``lam`` (..., D, D) is finite, symmetric and PD (or PSD)."""
    if not torch.isfinite(lam).all():
        raise ValueError(f"{name}: precision contains NaN or inf")
    scale = lam.detach().abs().amax(dim=(-1, -2), keepdim=True).clamp_min(1e-300)
    if ((lam - lam.transpose(-1, -2)).detach().abs() > 1e-6 * scale).any():
        raise ValueError(f"{name}: precision matrix is not symmetric")
    eig_min = torch.linalg.eigvalsh(lam.detach()).amin(-1)
    bad = eig_min < -1e-8 * scale[..., 0, 0] if psd_ok else eig_min <= 0
    if bad.any():
        kind = "positive semi-definite" if psd_ok else "positive definite"
        raise ValueError(f"{name}: precision must be {kind}; smallest eigenvalue {eig_min.min().item():.3g}")


@dataclass
class Gaussian:
    """A batch of Gaussians in canonical form: ``eta`` (..., D), ``lam`` (..., D, D)."""

    eta: Tensor
    lam: Tensor

    @classmethod
    def from_moments(cls, mean: Tensor, cov: Tensor) -> "Gaussian":
        """From mean (..., D) and SPD covariance (..., D, D)."""
        check_canonical(mean, cov, name="from_moments")
        lam = symmetrize(spd_inverse(cov))
        return cls(matvec(lam, mean), lam)

    def validate(self, *, psd_ok: bool = False) -> "Gaussian":
        """Check shapes and values (see :func:`check_canonical`); returns self."""
        check_canonical(self.eta, self.lam, psd_ok=psd_ok)
        return self

    @property
    def dim(self) -> int:
        return self.eta.shape[-1]

    @property
    def mean(self) -> Tensor:
        """(..., D) = lam^-1 eta."""
        return spd_solve(self.lam, self.eta.unsqueeze(-1)).squeeze(-1)

    @property
    def cov(self) -> Tensor:
        """(..., D, D) = lam^-1."""
        return symmetrize(spd_inverse(self.lam))

    def __mul__(self, other: "Gaussian") -> "Gaussian":
        """Product of densities (unnormalised): canonical parameters add."""
        _same_dim(self, other, "product")
        return Gaussian(self.eta + other.eta, self.lam + other.lam)

    def __truediv__(self, other: "Gaussian") -> "Gaussian":
        """Quotient of densities: canonical parameters subtract (result may be improper)."""
        _same_dim(self, other, "division")
        return Gaussian(self.eta - other.eta, self.lam - other.lam)

    def marginalise(self, keep: Index) -> "Gaussian":
        """Marginal over the components ``keep`` (Schur complement of the rest)."""
        a, b = _split(self.dim, keep, self.eta.device)
        if b.numel() == 0:
            return Gaussian(self.eta[..., a], self.lam[..., a, :][..., :, a])
        lam_ab = self.lam[..., a, :][..., :, b]
        lam_bb = self.lam[..., b, :][..., :, b]
        rhs = torch.cat((lam_ab.transpose(-1, -2), self.eta[..., b].unsqueeze(-1)), -1)
        x = spd_solve(lam_bb, rhs)
        lam = self.lam[..., a, :][..., :, a] - lam_ab @ x[..., :-1]
        eta = self.eta[..., a] - matvec(lam_ab, x[..., -1])
        return Gaussian(eta, symmetrize(lam))

    def condition(self, index: Index, value: Tensor) -> "Gaussian":
        """Conditional over the other components given ``x[index] = value`` (..., len(index))."""
        b, a = _split(self.dim, index, self.eta.device)
        if value.shape[-1] != b.numel():
            raise ValueError(f"condition: value must have last dim {b.numel()}, got {tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError("condition: value contains NaN or inf")
        lam_ab = self.lam[..., a, :][..., :, b]
        return Gaussian(self.eta[..., a] - matvec(lam_ab, value), self.lam[..., a, :][..., :, a])


def _same_dim(g1: Gaussian, g2: Gaussian, op: str) -> None:
    if g1.dim != g2.dim:
        raise ValueError(f"{op}: Gaussians have different dimensions {g1.dim} and {g2.dim}")


def _split(dim: int, keep: Index, device: torch.device) -> tuple[Tensor, Tensor]:
    """Index tensors (kept, rest) of ``range(dim)``; checks range and duplicates."""
    keep_t = torch.as_tensor([keep] if isinstance(keep, int) else keep, dtype=torch.long).flatten()
    if keep_t.numel() == 0 or keep_t.min() < 0 or keep_t.max() >= dim or keep_t.unique().numel() != keep_t.numel():
        raise ValueError(f"indices {keep_t.tolist()} must be distinct and in [0, {dim})")
    mask = torch.ones(dim, dtype=torch.bool)
    mask[keep_t] = False
    return keep_t.to(device), torch.arange(dim)[mask].to(device)
