"""A pixel grid as a general factor graph (one scalar variable per pixel).

Useful for images with the general engine, and as an independent oracle for
the grid fast path: unary factors ``a_i (x_i - z_i)^2 / 2`` and pairwise
factors ``w_ij (x_i - x_j)^2 / 2`` on 4-neighbour edges.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..robust import RobustKernel
from .base import VariableGroup
from .linear import DifferenceFactors, PriorFactors


def pixel_grid_graph(
    z: Tensor,
    data_precision: Tensor,
    w_horizontal: Tensor,
    w_vertical: Tensor,
    robust_data: RobustKernel | None = None,
    robust_smooth: RobustKernel | None = None,
):
    """Factor graph of a (B, H, W) scalar grid; pixels are numbered row-major.

    Args:
        z: (B, H, W) targets.
        data_precision: (B, H, W) unary precisions a_i > 0.
        w_horizontal: (B, H, W-1) weights of edges (i, i+1) along rows.
        w_vertical: (B, H-1, W) weights of edges (i, i+W) along columns.
        robust_data, robust_smooth: optional kernels of the two factor kinds.
    Returns:
        (graph, pixels): the :class:`~gbp_torch.FactorGraph` and its group of H*W
        variables; ``result.mean(pixels)`` is (B, H*W, 1).
    """
    from ..factor_graph import FactorGraph  # factor_graph imports this package

    if z.dim() != 3:
        raise ValueError(f"z must be (B, H, W), got {tuple(z.shape)}")
    b, h, w = z.shape
    expected = {"data_precision": (data_precision, (b, h, w)), "w_horizontal": (w_horizontal, (b, h, w - 1)),
                "w_vertical": (w_vertical, (b, h - 1, w))}
    for name, (t, shape) in expected.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    graph = FactorGraph()
    pixels: VariableGroup = graph.add_variables(h * w, 1, init=z.reshape(b, h * w, 1))
    graph.add(PriorFactors(pixels.all(), z.reshape(b, h * w, 1), data_precision.reshape(b, h * w), robust=robust_data))
    ids = torch.arange(h * w).reshape(h, w)
    left, right = ids[:, :-1].reshape(-1), ids[:, 1:].reshape(-1)
    up, down = ids[:-1, :].reshape(-1), ids[1:, :].reshape(-1)
    weights = torch.cat((w_horizontal.reshape(b, -1), w_vertical.reshape(b, -1)), 1)
    zeros = z.new_zeros(b, weights.shape[1], 1)
    graph.add(DifferenceFactors(pixels[torch.cat((left, up))], pixels[torch.cat((right, down))], zeros, weights,
                                robust=robust_smooth))
    return graph, pixels
