"""Input validation for :func:`gbp_torch.grid.solve`: shapes (always), values (one host sync)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import blocks
from .system import GridSystem, right_hand_side


class _ValueChecks:
    """Value conditions gathered as device flags and read back in one host synchronisation.

    ``require(bad, message)``: ``bad`` a bool tensor (any True = error); ``message`` a string
    or a callable building it (run only on failure). :meth:`raise_first` raises the first
    failing condition in the order added.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.flags: list[Tensor] = []
        self.messages: list[str | Callable[[], str]] = []

    def require(self, bad: Callable[[], Tensor], message: str | Callable[[], str]) -> None:
        if self.enabled:
            self.flags.append(bad().detach().any())
            self.messages.append(message)

    def finite(self, x: Tensor, name: str) -> None:
        def bad() -> Tensor:
            low, high = extremes(x)
            return ~(torch.isfinite(low) & torch.isfinite(high))

        self.require(bad, f"{name} contains NaN or infinite values")

    def nonneg(self, x: Tensor, name: str) -> None:
        """(after :meth:`finite`: a NaN passes here)"""
        self.require(lambda: extremes(x)[0] < 0,
                     lambda: f"{name} must be >= 0 everywhere (found {float(x.detach().min()):.3g})")

    def within(self, x: Tensor, low: float, high: float, message: str) -> None:
        """Every value in [low, high] (NaN fails)."""
        def bad() -> Tensor:
            lo, hi = extremes(x)
            return ~((lo >= low) & (hi <= high))

        self.require(bad, message)

    def raise_first(self) -> None:
        if not self.flags:
            return
        for hit, message in zip(torch.stack(self.flags).tolist(), self.messages):
            if hit:
                raise ValueError(message() if callable(message) else message)


def extremes(x: Tensor) -> tuple[Tensor, Tensor]:
    """(min, max) of x as 0-dim tensors, in one pass (NaN propagates; one op where ``isfinite(x).all()``
    takes four full passes); (0, 0) for an empty x."""
    if x.numel() == 0:
        zero = x.new_zeros(())
        return zero, zero
    return torch.aminmax(x.detach())


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


def _shape(x: Tensor, name: str, expected: tuple, text: str) -> Tensor:
    """Broadcast a 0-dim tensor to ``expected``; otherwise require that exact shape."""
    if x.dim() == 0:
        return x.expand(expected)
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {text} = {tuple(expected)}, got {tuple(x.shape)}")
    return x


def _z(z) -> tuple[Tensor, int]:
    """z as (B, D, H, W) and D."""
    if not isinstance(z, Tensor):
        raise ValueError(f"z must be a torch.Tensor, got {type(z).__name__}")
    if not z.is_floating_point():
        raise ValueError(f"z must be floating point, got dtype {z.dtype}")
    if z.dim() == 3:
        zz = z.unsqueeze(1)
    elif z.dim() == 4 and z.shape[1] in (1, 2):
        zz = z
    else:
        raise ValueError("z must have shape (B, H, W) or (B, 1, H, W) for D=1 or (B, 2, H, W) for D=2, "
                         f"got {tuple(z.shape)}")
    if min(zz.shape[0], zz.shape[2], zz.shape[3]) < 1:
        raise ValueError(f"z must have B, H, W >= 1, got {tuple(z.shape)}")
    return zz, zz.shape[1]


def _blocks(a: Tensor, shape: tuple, checks: _ValueChecks) -> Tensor:
    """(B, 2, 2, H, W) data precision blocks -> lam field, with symmetry / PSD checks."""
    a = _shape(a, "data_precision", shape, "(B, 2, 2, H, W)")
    checks.finite(a, "data_precision")

    def asymmetric() -> Tensor:
        ad = a.detach()
        return (ad[:, 0, 1] - ad[:, 1, 0]).abs() > 1e-5 * ad[:, 1, 0].abs() + 1e-8 * ad.abs().amax() + 1e-30

    def negative() -> Tensor:
        ad = a.detach()
        det = ad[:, 0, 0] * ad[:, 1, 1] - ad[:, 0, 1] * ad[:, 1, 0]
        tr = ad[:, 0, 0] + ad[:, 1, 1]
        return (ad[:, 0, 0] < 0) | (ad[:, 1, 1] < 0) | (det < -1e-6 * tr * tr)

    checks.require(asymmetric, "data_precision blocks (B, 2, 2, H, W) must be symmetric")
    checks.require(negative, "data_precision blocks (B, 2, 2, H, W) must be positive semi-definite "
                             "(negative precision found)")
    return blocks.from_matrix(a)


def _edges(edge_weights, z: Tensor, bsz: int, h: int, w: int, checks: _ValueChecks) -> tuple[Tensor, Tensor]:
    names = ("edge_weights[0] (horizontal)", "edge_weights[1] (vertical)")
    if isinstance(edge_weights, (tuple, list)):
        if len(edge_weights) != 2:
            raise ValueError("edge_weights must be a pair (w_horizontal (B, H, W-1), w_vertical (B, H-1, W))")
        wh, wv = _tensor(edge_weights[0], names[0], z), _tensor(edge_weights[1], names[1], z)
    else:
        wh = wv = _tensor(edge_weights, "edge_weights", z)
        if wh.dim() != 0:
            raise ValueError("edge_weights must be a number or a pair (w_horizontal (B, H, W-1), "
                             f"w_vertical (B, H-1, W)), got a tensor of shape {tuple(wh.shape)}")
    wh = _shape(wh, names[0], (bsz, h, w - 1), "(B, H, W-1)")
    wv = _shape(wv, names[1], (bsz, h - 1, w), "(B, H-1, W)")
    for t, n in zip((wh, wv), names):
        checks.finite(t, n)
        checks.nonneg(t, n)
    return wh, wv


def _offsets(offsets, z: Tensor, bsz: int, d: int, h: int, w: int,
             checks: _ValueChecks) -> tuple[Tensor, Tensor] | None:
    """Edge offsets as ((B, D, H, W-1), (B, D, H-1, W)); for D = 1 also given as (B, H, W-1), (B, H-1, W)."""
    if offsets is None:
        return None
    if not isinstance(offsets, (tuple, list)) or len(offsets) != 2:
        raise ValueError("offsets must be a pair (c_horizontal (B, D, H, W-1), c_vertical (B, D, H-1, W)), "
                         f"got {type(offsets).__name__}")
    out = []
    for c, name, size in ((offsets[0], "offsets[0] (horizontal)", (h, w - 1)),
                          (offsets[1], "offsets[1] (vertical)", (h - 1, w))):
        c = _tensor(c, name, z)
        if d == 1 and c.dim() == 3:
            c = c.unsqueeze(1)
        text = "(B, H, W-1) or (B, 1, H, W-1)" if size[1] == w - 1 else "(B, H-1, W) or (B, 1, H-1, W)"
        if d == 2:
            text = "(B, 2, H, W-1)" if size[1] == w - 1 else "(B, 2, H-1, W)"
        c = _shape(c, name, (bsz, d, *size), text)
        checks.finite(c, name)
        out.append(c)
    return out[0], out[1]


def check_inputs(z: Tensor, data_precision, edge_weights, mask=None,
                 validate: bool = True, x0: Tensor | None = None,
                 offsets=None) -> tuple[GridSystem, Tensor, int]:
    """Validate and normalise the inputs of a grid solve.

    Args:
        z: (B, H, W) or (B, 1, H, W) for D = 1, (B, 2, H, W) for D = 2, floating point.
        data_precision: number, (B, H, W) (scalar / isotropic) or, for D = 2,
            (B, 2, 2, H, W) symmetric positive semi-definite blocks.
        edge_weights: number or pair (wh (B, H, W-1), wv (B, H-1, W)), >= 0.
        mask: optional (B, H, W) in [0, 1]; data precision is multiplied by it.
        validate: check values (finite, non-negative, symmetric PSD blocks, some data
            in every batch item) with one host synchronisation; shapes are always checked.
        x0: optional warm start (its shape is the caller's business); with ``validate``, checked finite.
        offsets: optional edge offsets (see :class:`~.system.GridSystem`), a pair ((B, D, H, W-1),
            (B, D, H-1, W)); for D = 1 also (B, H, W-1), (B, H-1, W). Checked finite with ``validate``.

    Returns:
        (system, z as (B, D, H, W), D).
    """
    zz, d = _z(z)
    bsz, _, h, w = zz.shape
    checks = _ValueChecks(validate)
    checks.finite(zz, "z")
    a = _tensor(data_precision, "data_precision", z)
    if d == 2 and a.dim() == 5:
        a = _blocks(a, (bsz, 2, 2, h, w), checks)
    else:
        text = "(B, H, W)" if d == 1 else "(B, H, W) or (B, 2, 2, H, W)"
        if a.dim() not in (0, 3):
            raise ValueError(f"data_precision must have shape {text}, got {tuple(a.shape)}")
        a = _shape(a, "data_precision", (bsz, h, w), text)
        checks.finite(a, "data_precision")
        checks.nonneg(a, "data_precision")
    if mask is not None:
        m = _shape(_tensor(mask, "mask", z), "mask", (bsz, h, w), "(B, H, W)")
        checks.within(m, 0.0, 1.0, "mask must lie in [0, 1] (found values outside or NaN)")
        a = blocks.scale(a, m)
    wh, wv = _edges(edge_weights, z, bsz, h, w, checks)
    c = _offsets(offsets, z, bsz, d, h, w, checks)

    def empty() -> Tensor:
        return blocks.trace(a, d).detach().flatten(1).sum(1) <= 0

    checks.require(empty, lambda: f"data_precision (after mask) is zero everywhere in batch item "
                   f"{int(empty().nonzero()[0])}: the system is singular")
    if x0 is not None:
        checks.finite(x0, "x0")
    checks.raise_first()
    return GridSystem(a=a, wh=wh, wv=wv, b=right_hand_side(a, zz, wh, wv, c), offsets=c), zz, d
