import pytest
import torch

from train.denoise.datasets import NoiseSpec, RandomPatchDataset
from train.denoise.regular import KINDS, composite, regular_texture


def _source(seed: int = 0, size: int = 96) -> torch.Tensor:
    """A smooth random 'photo' (uint8) to render textures from."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 1, size, size, generator=g), 5, 1, 2)[0, 0]
    return ((x - x.min()) / (x.max() - x.min()) * 255).round().to(torch.uint8)


def _best_self_match(patch: torch.Tensor, reach: int = 18, least: int = 3) -> float:
    """The largest correlation of the patch's central part with itself shifted by an offset of length
    >= least (at most reach along each axis): near 1 for a pattern that repeats, lower for one that does not."""
    p = patch - patch.mean()
    c = p[reach:-reach, reach:-reach]
    h, w = c.shape
    best = -1.0
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            if dy * dy + dx * dx < least * least:
                continue
            s = p[reach + dy:reach + dy + h, reach + dx:reach + dx + w]
            r = float((c * s).sum() / (c.norm() * s.norm()).clamp_min(1e-12))
            best = max(best, r)
    return best


@pytest.mark.parametrize("kind", KINDS)
def test_regular_textures_repeat_and_are_seeded(kind):
    for seed in range(3):
        tex = regular_texture(_source(seed), 96, torch.Generator().manual_seed(seed), kind=kind)
        again = regular_texture(_source(seed), 96, torch.Generator().manual_seed(seed), kind=kind)
        assert tex.shape == (1, 96, 96) and tex.dtype == torch.float32
        assert torch.equal(tex, again)
        assert float(tex.min()) >= 0.0 and float(tex.max()) <= 1.0 and float(tex.std()) > 0.01
        # a shifted copy of the pattern matches it: what block matching finds on real regular textures
        assert _best_self_match(tex[0]) > 0.6, (kind, seed)
    # the source itself (a smooth random field) does not repeat: the check above can fail
    assert _best_self_match(_source(0).float()) < 0.6


def test_regular_texture_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        regular_texture(_source(), 64, kind="waves")
    with pytest.raises(ValueError, match="32 x 32"):
        regular_texture(_source(size=20), 16)


def test_composite_keeps_texture_inside_and_photo_outside():
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        tex = torch.full((1, 64, 64), 0.9)
        nat = torch.full((1, 64, 64), 0.1)
        out = composite(tex, nat, g)
        share = (out - 0.1).div(0.8)  # 1: texture, 0: photo
        assert float(share.min()) >= -1e-6 and float(share.max()) <= 1 + 1e-6
        # a soft edge (a few pixels wide) parts a region of pure texture from one of pure photo
        pure = ((share < 0.02) | (share > 0.98)).float().mean()
        assert pure > 0.45
        assert bool((share > 0.98).any()) and bool((share < 0.02).any())


def test_patch_dataset_mixes_regular_textures():
    images = [_source(s, 96) for s in range(4)]
    noise = NoiseSpec("gaussian", sigma=0.0)
    natural = RandomPatchDataset(images, 64, 40, noise, augment=False, fixed=True)
    mixed = RandomPatchDataset(images, 64, 40, noise, augment=False, fixed=True, regular=1.0)
    crops = torch.stack([natural[i]["clean"] for i in range(40)])
    textured = torch.stack([mixed[i]["clean"] for i in range(40)])
    assert textured.shape == crops.shape == (40, 1, 64, 64)
    # every natural patch is a crop of a source image; textured patches repeat, natural ones do not
    repeats = [_best_self_match(t[0]) for t in textured[:12]]
    assert sum(r > 0.6 for r in repeats) >= 6
    assert max(_best_self_match(c[0]) for c in crops[:6]) < 0.6
    with pytest.raises(ValueError, match="regular"):
        RandomPatchDataset(images, 64, 4, noise, regular=1.5)
