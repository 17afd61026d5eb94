"""The refinement's contrast normalisation against a per-pixel numpy loop over edge-padded windows."""

import numpy as np
import pytest
import torch

from gbp_torch.tasks.stereo.refine import local_contrast


@pytest.mark.parametrize("radius", [1, 3])
def test_local_contrast_matches_a_loop(radius):
    image = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
    got = local_contrast(image, radius, eps=0.01).numpy()
    x = image.numpy()
    padded = np.pad(x, ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="edge")
    ref = np.empty_like(x)
    k = 2 * radius + 1
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            window = padded[:, :, i:i + k, j:j + k].reshape(2, 3, -1)
            ref[:, :, i, j] = (x[:, :, i, j] - window.mean(-1)) / (window.std(-1) + 0.01)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
