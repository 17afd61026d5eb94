"""Input validation for :func:`gbp_torch.grid.solve`: shapes, values, dtypes."""

from __future__ import annotations

import torch
from torch import Tensor

from . import blocks
from .system import GridSystem


def _tensor(x, name: str, like: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        try:
            x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be a tensor or a number, got {type(x).__name__}") from err
    if x.device != like.device:
        raise ValueError(f"{name} is on {x.device} but z is on {like.device}; put all inputs on one device")
    if x.is_complex():
        raise ValueError(f"{name} must be real, got {x.dtype}")
    return x.to(like.dtype)


def _finite(x: Tensor, name: str) -> None:
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} contains NaN or infinite values")


def _nonneg(x: Tensor, name: str) -> None:
    if bool((x.detach() < 0).any()):
        raise ValueError(f"{name} must be >= 0 everywhere (found {float(x.detach().min()):.3g})")


def _shape(x: Tensor, name: str, expected: tuple, text: str) -> Tensor:
    """Broadcast a 0-dim tensor to ``expected``; otherwise require that exact shape."""
    if x.dim() == 0:
        return x.expand(expected)
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {text} = {tuple(expected)}, got {tuple(x.shape)}")
    return x


def check_inputs(z: Tensor, data_precision, edge_weights, mask=None) -> tuple[GridSystem, Tensor, int]:
    """Validate and normalise the inputs of a grid solve.

    Args:
        z: (B, H, W) for D = 1 or (B, 2, H, W) for D = 2, floating point.
        data_precision: number, (B, H, W) (scalar / isotropic) or, for D = 2,
            (B, 2, 2, H, W) symmetric positive semi-definite blocks.
        edge_weights: number or pair (wh (B, H, W-1), wv (B, H-1, W)), >= 0.
        mask: optional (B, H, W); data precision is zeroed where it is 0/False.

    Returns:
        (system, z as (B, D, H, W), D).
    """
    if not isinstance(z, Tensor):
        raise ValueError(f"z must be a torch.Tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"z must be floating point, got dtype {z.dtype}")
    if z.dim() == 3:
        d, zz = 1, z.unsqueeze(1)
    elif z.dim() == 4 and z.shape[1] == 2:
        d, zz = 2, z
    else:
        raise ValueError(f"z must have shape (B, H, W) for D=1 or (B, 2, H, W) for D=2, got {tuple(z.shape)}")
    bsz, _, h, w = zz.shape
    if h < 1 or w < 1 or bsz < 1:
        raise ValueError(f"z must have B, H, W >= 1, got {tuple(z.shape)}")
    _finite(zz, "z")

    a = _tensor(data_precision, "data_precision", z)
    if d == 2 and a.dim() == 5:
        a = _shape(a, "data_precision", (bsz, 2, 2, h, w), "(B, 2, 2, H, W)")
        _finite(a, "data_precision")
        ad = a.detach()
        if not torch.allclose(ad[:, 0, 1], ad[:, 1, 0], rtol=1e-5, atol=1e-8 * float(ad.abs().max()) + 1e-30):
            raise ValueError("data_precision blocks (B, 2, 2, H, W) must be symmetric")
        det = ad[:, 0, 0] * ad[:, 1, 1] - ad[:, 0, 1] * ad[:, 1, 0]
        tr = ad[:, 0, 0] + ad[:, 1, 1]
        if bool((ad[:, 0, 0] < 0).any() or (ad[:, 1, 1] < 0).any() or (det < -1e-6 * tr * tr).any()):
            raise ValueError("data_precision blocks (B, 2, 2, H, W) must be positive semi-definite "
                             "(negative precision found)")
        a = blocks.from_matrix(a)
    else:
        text = "(B, H, W)" if d == 1 else "(B, H, W) or (B, 2, 2, H, W)"
        if a.dim() not in (0, 3):
            raise ValueError(f"data_precision must have shape {text}, got {tuple(a.shape)}")
        a = _shape(a, "data_precision", (bsz, h, w), text)
        _finite(a, "data_precision")
        _nonneg(a, "data_precision")

    if mask is not None:
        m = _tensor(mask, "mask", z)
        m = _shape(m, "mask", (bsz, h, w), "(B, H, W)")
        _finite(m, "mask")
        a = blocks.scale(a, m)

    if isinstance(edge_weights, (tuple, list)):
        if len(edge_weights) != 2:
            raise ValueError("edge_weights must be a pair (w_horizontal (B, H, W-1), w_vertical (B, H-1, W))")
        wh = _tensor(edge_weights[0], "edge_weights[0] (horizontal)", z)
        wv = _tensor(edge_weights[1], "edge_weights[1] (vertical)", z)
    else:
        wh = wv = _tensor(edge_weights, "edge_weights", z)
        if wh.dim() != 0:
            raise ValueError("edge_weights must be a number or a pair (w_horizontal (B, H, W-1), "
                             f"w_vertical (B, H-1, W)), got a tensor of shape {tuple(wh.shape)}")
    wh = _shape(wh, "edge_weights[0] (horizontal)", (bsz, h, w - 1), "(B, H, W-1)")
    wv = _shape(wv, "edge_weights[1] (vertical)", (bsz, h - 1, w), "(B, H-1, W)")
    for t, n in ((wh, "edge_weights[0] (horizontal)"), (wv, "edge_weights[1] (vertical)")):
        _finite(t, n)
        _nonneg(t, n)

    total = blocks.trace(a, d).detach().flatten(1).sum(1)
    if bool((total <= 0).any()):
        i = int((total <= 0).nonzero()[0])
        raise ValueError(f"data_precision (after mask) is zero everywhere in batch item {i}: "
                         "the system is singular")
    sys = GridSystem(a=a, wh=wh, wv=wv, b=blocks.mv(a, zz))
    return sys, zz, d
