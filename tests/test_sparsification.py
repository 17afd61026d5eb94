"""The sparsification error (AUSE) shared by the tasks' metrics: against its definition computed one fraction at a
time in numpy, and its limits (a perfect ranking, a random one)."""

import numpy as np
import pytest
import torch
from helpers import sparsification_loop

from gbp_torch.tasks.sparsification import sparsification_error


@pytest.mark.parametrize("steps", [1, 7, 10])
def test_sparsification_error_matches_its_definition(steps):
    g = torch.Generator().manual_seed(0)
    err = torch.rand(3, 5, 11, generator=g).pow(3)
    unc = err + 0.3 * torch.rand(3, 5, 11, generator=g)
    mask = torch.rand(3, 5, 11, generator=g) > 0.2
    got = sparsification_error(err, unc, mask, steps)
    assert got.dtype == torch.float64 and got.shape == (3,)
    for b in range(3):
        m = mask[b].numpy()
        want = sparsification_loop(err[b].numpy()[m].astype(np.float64), unc[b].numpy()[m].astype(np.float64), steps)
        assert float(got[b]) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_perfect_random_and_empty_rankings():
    """The errors themselves (or any increasing function of them) score 0; a noisy ranking less than a random one;
    an item without counted pixels, or without errors, is NaN; bad shapes and steps are refused."""
    g = torch.Generator().manual_seed(1)
    err = torch.rand(2, 4000, generator=g).pow(4)
    mask = torch.ones_like(err, dtype=torch.bool)
    assert torch.allclose(sparsification_error(err, err.sqrt(), mask), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    noisy = err * torch.exp(0.5 * torch.randn(err.shape, generator=g))
    random = torch.rand(err.shape, generator=g)
    assert bool((sparsification_error(err, noisy, mask) < 0.5 * sparsification_error(err, random, mask)).all())
    assert float(sparsification_error(err, random, mask).min()) > 0.3
    mask[0] = False
    out = sparsification_error(err * torch.tensor([[1.0], [0.0]]), random, mask | torch.tensor([[False], [True]]))
    assert bool(out.isnan().all())
    with pytest.raises(ValueError, match="one shape"):
        sparsification_error(err, random[:, 1:], mask)
    with pytest.raises(ValueError, match="steps"):
        sparsification_error(err, random, mask, 0)
