"""The gradient-domain example (examples/poisson_blend.py): grid.solve's edge offsets solve the Poisson equation of
the pasted region and remove the seam."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

from poisson_blend import REGION, main, poisson_blend  # noqa: E402

from gbp_torch.io import read_gray  # noqa: E402


def _scene(seed=0, h=40, w=48):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(1, h, w, generator=g, dtype=torch.float64)
    source = torch.rand(1, h, w, generator=g, dtype=torch.float64) + 0.5
    region = torch.zeros(1, h, w, dtype=torch.bool)
    region[..., 10:30, 12:40] = True
    return target, source, region


def test_a_source_with_the_target_s_gradients_leaves_the_target_unchanged():
    target, _, region = _scene()
    out = poisson_blend(target, target + 0.3, region, iters=80)
    torch.testing.assert_close(out, target, rtol=0, atol=1e-6)


def test_inside_the_region_the_blend_solves_the_poisson_equation_of_the_source():
    """Discrete Laplacian of the result = that of the source at pixels whose 4 neighbours are all inside (numpy)."""
    target, source, region = _scene(1)
    x = poisson_blend(target, source, region, iters=80)[0].numpy()
    s = source[0].numpy()

    def lap(f):
        return f[:-2, 1:-1] + f[2:, 1:-1] + f[1:-1, :-2] + f[1:-1, 2:] - 4 * f[1:-1, 1:-1]

    inner = region[0].numpy().copy()
    inner[1:-1, 1:-1] &= region[0, :-2, 1:-1].numpy() & region[0, 2:, 1:-1].numpy() \
        & region[0, 1:-1, :-2].numpy() & region[0, 1:-1, 2:].numpy()
    mask = inner[1:-1, 1:-1]
    np.testing.assert_allclose(lap(x)[mask], lap(s)[mask], rtol=0, atol=1e-5)
    outside = ~region[0].numpy()
    np.testing.assert_allclose(x[outside], target[0].numpy()[outside], rtol=0, atol=1e-3)
    assert np.abs(x[region[0].numpy()] - s[region[0].numpy()]).mean() > 0.1  # not a copy: the offset level moved


def test_the_example_writes_a_blend_without_the_copy_s_seam(tmp_path):
    out = tmp_path / "blend.png"
    main(["-o", str(out)])
    pair = read_gray(out)
    w = (pair.shape[-1] - 4) // 2
    copy, blend = pair[:, :w], pair[:, w + 4:]
    rows, cols = REGION
    # the jump across the region's left and right borders
    jump = {name: float((img[rows, cols.start] - img[rows, cols.start - 1]).abs().mean()
                        + (img[rows, cols.stop] - img[rows, cols.stop - 1]).abs().mean())
            for name, img in (("copy", copy), ("blend", blend))}
    assert jump["blend"] < 0.3 * jump["copy"], jump
