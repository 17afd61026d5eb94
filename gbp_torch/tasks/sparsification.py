"""How well an uncertainty ranks the errors: the sparsification error (AUSE), shared by the tasks' metrics.

Remove the pixels with the largest uncertainty a fraction f at a time, and compare the mean error of those left
with the oracle that removes the largest errors first; the area between the two curves, divided by the mean error
of all pixels, is 0 when the uncertainty orders the errors perfectly and about 0.5-1 when it is unrelated to them
(heavier-tailed errors score higher). It says nothing about the uncertainty's scale (that is the coverage).
"""

from __future__ import annotations

import torch
from torch import Tensor


def sparsification_error(error: Tensor, uncertainty: Tensor, mask: Tensor, steps: int = 10) -> Tensor:
    """Per item (B,): the mean over f = 0, 1/steps, ..., (steps - 1)/steps of (mean error left after removing the
    f most uncertain pixels - the same after removing the f largest errors), over the mean error of all pixels.

    Args:
        error: (B, ...) nonnegative errors; uncertainty: (B, ...) the same shape, larger = less certain (a variance
            or a standard deviation rank the same); mask: (B, ...) bool, the pixels that count.
    Returns:
        (B,) float64; NaN for an item without counted pixels or with all errors 0.
    """
    if not error.shape == uncertainty.shape == mask.shape:
        raise ValueError(f"error, uncertainty and mask must have one shape, got {tuple(error.shape)}, "
                         f"{tuple(uncertainty.shape)} and {tuple(mask.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    out = []
    for err, unc, keep in zip(error.double().flatten(1), uncertainty.double().flatten(1), mask.bool().flatten(1)):
        err, unc = err[keep], unc[keep]
        if err.numel() == 0 or float(err.mean()) == 0.0:
            out.append(err.new_tensor(float("nan")))
            continue
        # tail sums: entry k is the sum of the errors left after removing the first k of each order
        by_unc = err[unc.argsort(descending=True, stable=True)].flip(0).cumsum(0).flip(0)
        by_err = err.sort(descending=True).values.flip(0).cumsum(0).flip(0)
        n = err.numel()
        removed = [int(i * n / steps) for i in range(steps)]
        left = err.new_tensor([n - k for k in removed])
        out.append(((by_unc[removed] - by_err[removed]) / left).mean() / err.mean())
    return torch.stack(out)
