"""Geometric self-ensemble."""

import torch

from gbp_torch.tasks.denoise.ensemble import SelfEnsemble, _inverse, _transform
from gbp_torch.tasks.denoise.output import DenoiseOutput


def test_transforms_are_the_8_symmetries_and_invert():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    seen = {(tuple(_transform(x, k).shape), tuple(_transform(x, k).flatten().tolist())) for k in range(8)}
    assert len(seen) == 8
    for k in range(8):
        assert torch.equal(_inverse(_transform(x, k), k), x)


def test_ensemble_of_an_equivariant_denoiser_is_the_denoiser_and_averages_otherwise():
    x = torch.rand(2, 1, 5, 7)
    blur = lambda y, s: DenoiseOutput(0.5 * y, torch.ones_like(y))  # noqa: E731  (equivariant)
    out = SelfEnsemble(blur)(x, None)
    torch.testing.assert_close(out.mean, 0.5 * x)
    torch.testing.assert_close(out.var, torch.ones_like(x))
    # a position-dependent denoiser: the ensemble is the mean over the 8 symmetric images of its bias
    ramp = lambda y, s: y + torch.arange(y.shape[-1], dtype=y.dtype)  # noqa: E731
    expected = torch.stack([_inverse(ramp(_transform(x, k), None), k) for k in range(8)]).mean(0)
    ens = SelfEnsemble(ramp)(x, None)
    torch.testing.assert_close(ens.mean, expected)
    assert ens.var is None and not torch.allclose(ens.mean, ramp(x, None))
