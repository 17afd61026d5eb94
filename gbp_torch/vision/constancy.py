"""Brightness and gradient constancy, linearised into per-pixel Gaussian data terms.

The constancy residual r_c(u) = I2_c(x + u) - I1_c(x) is nonlinear in the flow u.
Around the current estimate u0 it is r_c ~ It_c + g_c^T (u - u0), with It_c the
residual of I2 warped by u0 and g_c the gradient of I2 at x + u0. Then
1/2 sum_c r_c^2 = 1/2 (u - z)^T a (u - z) + const with a = sum_c g_c g_c^T (rank
one per channel, singular where the gradients are parallel: the aperture
problem) and a z = eta = a u0 - sum_c g_c It_c. Stereo is the same with the
scalar unknown d and g_c = -dI2_c/dx, since left(x) matches right(x - d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ._checks import as_disparity, check_field, check_image, check_mode
from .gradients import image_gradients
from .sampling import sample
from .warp import pixel_grid


@dataclass
class DataTerm:
    """A linearised data term, ready for :func:`gbp_torch.grid.solve`.

    Its energy per pixel is 1/2 (x - z)^T a (x - z) (+ const), with x the flow
    (D = 2) or the disparity (D = 1).

    Attributes:
        z: regularised target, (B, 2, H, W) for flow, (B, H, W) for disparity;
            ``(a + eps_b I) z = eta + eps_b x0`` with the small ``eps_b`` of the
            data-term function, so z is finite where ``a`` is singular (it
            falls back to x0 along the directions ``a`` does not constrain).
        a: data precision, (B, 2, 2, H, W) symmetric PSD blocks for flow,
            (B, H, W) for disparity; zero where ``valid`` is False. No noise
            scale: multiply by 1 / sigma^2 or robust weights as needed.
        eta: information vector ``a x0 - sum_c g_c It_c``, shaped like z;
            exact (no eps), zero where ``valid`` is False.
        residual: (B, H, W), sqrt(sum_c It_c^2), the root of twice the data
            energy at x0 (``|It|`` for one channel); zero where invalid. Feed it
            to a robust kernel for IRLS weights.
        valid: (B, H, W) bool, True where the warp sampled inside image2.
    """

    z: Tensor
    a: Tensor
    eta: Tensor
    residual: Tensor
    valid: Tensor


def flow_data_term(image1: Tensor, image2: Tensor, flow0: Tensor, gradient_weight: float = 0.0,
                   eps: float = 1e-3, blend: float = 0.0, mode: str = "bilinear", normalise: float = 0.0) -> DataTerm:
    """Brightness (+ gradient) constancy for optical flow, linearised at ``flow0``.

    Args:
        image1: (B, C, H, W) first frame (images or feature maps, any C).
        image2: (B, C, H, W) second frame, same dtype.
        flow0: (B, 2, H, W) linearisation point, u right and v down, pixels.
        gradient_weight: gamma >= 0; adds gamma times the same construction on
            the 2C gradient images dI/dx, dI/dy (their Jacobians are the second
            derivatives); gradient constancy resists illumination changes.
        eps: relative regulariser of ``z`` only: eps_b = eps * mean_pixels(trace a)
            of batch item b (plus the dtype's machine epsilon). ``a`` and
            ``eta`` are exact.
        blend: g = (1 - blend) * grad(I2)(x + u0) + blend * grad(I1)(x); 0.5
            averages the two frames' gradients.
        mode: warp interpolation (``"bilinear"``, ``"bicubic"``, ``"bspline"``, ``"nearest"``; see
            :mod:`.sampling`). ``"bspline"`` warps the constancy channels by B-spline and their Jacobians by Keys'
            cubic: the Jacobian's interpolation does not move the fixed point (zero residual), so it costs
            no accuracy.
        normalise: zeta > 0: constraint normalisation (Zimmer, Bruhn and Weickert, "Optic flow in harmony",
            IJCV 2011): each channel (brightness, and each gradient image before its sqrt(gamma) scaling) is
            divided by ``sqrt(|its gradient|^2 + zeta^2)``, so that its residual measures the flow error along
            that gradient in pixels and strong edges do not outweigh weak texture; then every textured
            channel weighs 1 (gradient channels gamma), whatever its contrast. 0: raw channels.

    Returns:
        :class:`DataTerm` with z (B, 2, H, W), a (B, 2, 2, H, W), eta
        (B, 2, H, W), residual (B, H, W), valid (B, H, W).

    Gradients are those of image2 (:func:`image_gradients`), warped by ``flow0``
    with the image, not those of the warped image.
    """
    _check_pair(image1, image2, "image1", "image2")
    check_field(flow0, "flow0", 2, image1)
    _check_settings(gradient_weight, eps, blend, mode, normalise)
    coords = pixel_grid(image1.shape[-2], image1.shape[-1], image1) + flow0
    jac, it, valid = _linearise(image1, image2, coords, gradient_weight, blend, mode)
    if normalise > 0:
        jac, it = _normalised(jac, it, image1.shape[1], gradient_weight, normalise)
    return _data_term(jac, it, valid, flow0, eps)


def _normalised(jac: Tensor, it: Tensor, channels: int, gradient_weight: float, zeta: float) -> tuple[Tensor, Tensor]:
    """jac (B, K, 2, H, W) and It (B, K, H, W) with each channel divided by ``sqrt(|grad|^2 + zeta^2)`` of its
    unscaled image (the first ``channels`` are the images, the rest gradient images scaled by sqrt(gamma))."""
    scale = jac.new_ones(1, jac.shape[1], 1, 1)
    scale[:, channels:] = math.sqrt(gradient_weight)
    factor = scale / (jac.square().sum(2) + (scale * zeta) ** 2).sqrt()
    return jac * factor[:, :, None], it * factor


def disparity_data_term(left: Tensor, right: Tensor, disparity0: Tensor, gradient_weight: float = 0.0,
                        eps: float = 1e-3, blend: float = 0.0, mode: str = "bilinear") -> DataTerm:
    """Brightness (+ gradient) constancy for stereo, linearised at ``disparity0``.

    Convention: left(x, y) matches right(x - d, y). The Jacobian of
    right(x - d) in d is -d right / dx at x - d0.

    Args:
        left, right: (B, C, H, W) rectified pair, same dtype.
        disparity0: (B, 1, H, W) or (B, H, W) linearisation point, pixels.
        gradient_weight, eps, blend, mode: as in :func:`flow_data_term`
            (``blend`` mixes in d left / dx at x).

    Returns:
        :class:`DataTerm` in the grid solver's D = 1 shapes: z, a, eta,
        residual and valid all (B, H, W).
    """
    _check_pair(left, right, "left", "right")
    d0 = as_disparity(disparity0, "disparity0", left)
    _check_settings(gradient_weight, eps, blend, mode)
    base = pixel_grid(left.shape[-2], left.shape[-1], left)
    coords = torch.cat((base[:, :1] - d0, base[:, 1:].expand_as(d0)), dim=1)
    jac, it, valid = _linearise(left, right, coords, gradient_weight, blend, mode)
    term = _data_term(-jac[:, :, :1], it, valid, d0, eps)
    return DataTerm(term.z[:, 0], term.a[:, 0, 0], term.eta[:, 0], term.residual, term.valid)


def _channels(image: Tensor, gradient_weight: float, jacobian: bool = True) -> tuple[Tensor, Tensor | None]:
    """Constancy channels of ``image`` (B, C, H, W) and (if ``jacobian``) their spatial Jacobians.

    Returns values (B, K, H, W) and jac (B, K, 2, H, W) or None; K = C, or 3C
    with the gradient images scaled by sqrt(gradient_weight).
    """
    if gradient_weight == 0:
        return image, image_gradients(image) if jacobian else None
    grad = image_gradients(image)
    batch, channels, _, height, width = grad.shape
    grad_images = math.sqrt(gradient_weight) * grad.reshape(batch, 2 * channels, height, width)
    values = torch.cat((image, grad_images), dim=1)
    return values, torch.cat((grad, image_gradients(grad_images)), dim=1) if jacobian else None


def _linearise(image1: Tensor, image2: Tensor, coords: Tensor, gradient_weight: float, blend: float,
               mode: str) -> tuple[Tensor, Tensor, Tensor]:
    """Warp image2's constancy channels to ``coords``; return jac (B, K, 2, H, W), It (B, K, H, W), valid."""
    values2, jac2 = _channels(image2, gradient_weight)
    batch, k, _, height, width = jac2.shape
    jac2 = jac2.reshape(batch, 2 * k, height, width)
    if mode == "bspline":  # the constancy channels only: the Jacobian's interpolation does not move the fixed point
        warped, valid = sample(values2, coords, mode)
        warped = torch.cat((warped, sample(jac2, coords, "bicubic")[0]), dim=1)
    else:
        warped, valid = sample(torch.cat((values2, jac2), dim=1), coords, mode)
    values1, jac1 = _channels(image1, gradient_weight, jacobian=blend > 0)
    jac = warped[:, k:].reshape(batch, k, 2, height, width)
    if blend > 0:
        jac = (1 - blend) * jac + blend * jac1
    return jac, warped[:, :k] - values1, valid


def _data_term(jac: Tensor, it: Tensor, valid: Tensor, x0: Tensor, eps: float) -> DataTerm:
    """Information form from Jacobians jac (B, K, D, H, W), residuals It (B, K, H, W), x0 (B, D, H, W)."""
    mask = valid.to(jac.dtype)  # (B, 1, H, W)
    jac = jac * mask[:, :, None]
    it = it * mask
    a = torch.einsum("bkdhw,bkehw->bdehw", jac, jac)
    eta = torch.einsum("bdehw,behw->bdhw", a, x0) - torch.einsum("bkdhw,bkhw->bdhw", jac, it)
    trace = torch.diagonal(a, dim1=1, dim2=2).sum(-1)  # (B, H, W)
    reg = (eps * trace.mean(dim=(1, 2)) + torch.finfo(a.dtype).eps).view(-1, 1, 1)
    z = _regularised_solve(a, eta + reg[:, None] * x0, reg)
    energy = it.square().sum(1)
    residual = torch.where(energy > 0, energy, 1).sqrt() * (energy > 0)  # gradient 0, not NaN, at 0
    return DataTerm(z, a, eta, residual, valid[:, 0])


def _regularised_solve(a: Tensor, rhs: Tensor, reg: Tensor) -> Tensor:
    """Solve (a + reg I) z = rhs per pixel; a (B, D, D, H, W) PSD, D in {1, 2}; reg (B, 1, 1)."""
    if a.shape[1] == 1:
        return rhs / (a[:, 0] + reg[:, None])
    a00, a01, a11 = a[:, 0, 0] + reg, a[:, 0, 1], a[:, 1, 1] + reg
    # det(a + reg I) = det(a) + reg trace(a) + reg^2; det(a) >= 0 is clamped
    # against rounding (it cancels to zero for rank-one blocks).
    det = (a[:, 0, 0] * a[:, 1, 1] - a01 * a01).clamp_min(0) + reg * (a[:, 0, 0] + a[:, 1, 1]) + reg * reg
    r0, r1 = rhs[:, 0], rhs[:, 1]
    return torch.stack((a11 * r0 - a01 * r1, a00 * r1 - a01 * r0), dim=1) / det[:, None]


def _check_pair(image1: Tensor, image2: Tensor, name1: str, name2: str) -> None:
    check_image(image1, name1)
    check_image(image2, name2)
    if image2.shape != image1.shape or image2.dtype != image1.dtype:
        raise ValueError(f"{name2} must match {name1}: (B, C, H, W) = {tuple(image1.shape)} and dtype "
                         f"{image1.dtype}, got {tuple(image2.shape)} and {image2.dtype}")


def _check_settings(gradient_weight: float, eps: float, blend: float, mode: str, normalise: float = 0.0) -> None:
    if gradient_weight < 0:
        raise ValueError(f"gradient_weight must be >= 0, got {gradient_weight}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if not 0 <= blend <= 1:
        raise ValueError(f"blend must lie in [0, 1], got {blend}")
    if not (isinstance(normalise, (int, float)) and math.isfinite(normalise) and normalise >= 0):
        raise ValueError(f"normalise must be a finite number >= 0, got {normalise!r}")
    check_mode(mode)
