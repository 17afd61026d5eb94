"""match_exposure against the affine change it undoes, per item and channel; small changes left alone; flat images;
bad shapes."""

import pytest
import torch

from gbp_torch.vision import match_exposure
from gbp_torch.vision.exposure import exposure_change


def test_an_affine_change_per_item_and_channel_is_undone():
    g = torch.Generator().manual_seed(0)
    reference = 0.2 + 0.5 * torch.rand(2, 3, 20, 24, generator=g, dtype=torch.float64)
    gain = torch.tensor([[1.3, 0.8, 1.1], [0.7, 1.0, 1.25]], dtype=torch.float64).view(2, 3, 1, 1)
    bias = torch.tensor([[0.02, -0.05, 0.0], [0.1, 0.0, -0.03]], dtype=torch.float64).view(2, 3, 1, 1)
    changed = gain * reference + bias  # inside [0, 1]: nothing clipped
    assert changed.min() >= 0 and changed.max() <= 1
    torch.testing.assert_close(match_exposure(reference, changed), reference, rtol=0, atol=1e-12)
    found_gain, found_bias = exposure_change(reference, changed)
    torch.testing.assert_close(found_gain, 1 / gain, rtol=1e-12, atol=0)
    torch.testing.assert_close(found_bias, -bias / gain, rtol=1e-12, atol=1e-12)


def test_changes_under_the_least_are_left_alone_item_by_item():
    g = torch.Generator().manual_seed(2)
    reference = 0.2 + 0.5 * torch.rand(2, 1, 16, 16, generator=g, dtype=torch.float64)
    changed = reference * torch.tensor([1.04, 1.06], dtype=torch.float64).view(2, 1, 1, 1)
    out = match_exposure(reference, changed)  # default least 0.05: the first item stays, the second is matched
    assert torch.equal(out[0], changed[0])
    torch.testing.assert_close(out[1], reference[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(match_exposure(reference, changed, least=0.0), reference, rtol=0, atol=1e-12)


def test_a_flat_channel_keeps_its_gain_and_the_result_is_clamped():
    reference = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    flat = torch.full((1, 1, 8, 8), 0.3)
    out = match_exposure(reference, flat)
    torch.testing.assert_close(out, torch.full_like(flat, float(reference.mean())))
    bright = match_exposure(torch.ones(1, 1, 4, 4) * 0.99 + torch.eye(4) * 0.01, torch.rand(1, 1, 4, 4) * 0.1)
    assert bright.min() >= 0 and bright.max() <= 1


def test_shapes_must_match():
    with pytest.raises(ValueError, match="one shape"):
        match_exposure(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8))
