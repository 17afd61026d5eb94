"""gbp_torch.io against Pillow's own decoding: gray / gray+alpha / colour / colour+alpha / palette PNGs."""

import numpy as np
import pytest
import torch
from PIL import Image

from gbp_torch.io import read_gray, read_image, write_image

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8)
GRAY = RNG.integers(0, 256, (9, 7), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (9, 7), dtype=np.uint8)


def _expected(mode: str) -> tuple[Image.Image, np.ndarray]:
    """A PIL image of ``mode`` and the (C, H, W) uint8 array read_image should give."""
    if mode == "L":
        return Image.fromarray(GRAY), GRAY[None]
    if mode == "LA":
        return Image.fromarray(np.dstack([GRAY, ALPHA]), "LA"), GRAY[None]
    if mode == "RGB":
        return Image.fromarray(RGB), RGB.transpose(2, 0, 1)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([RGB, ALPHA])), RGB.transpose(2, 0, 1)
    pal = Image.fromarray(RGB).quantize(16)
    return pal, np.asarray(pal.convert("RGB")).transpose(2, 0, 1)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P"])
def test_read_image_keeps_gray_or_colour_and_drops_alpha(tmp_path, mode):
    image, expected = _expected(mode)
    image.save(tmp_path / "x.png")
    got = read_image(tmp_path / "x.png")
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.equal((got * 255).round().to(torch.uint8), torch.from_numpy(expected.copy()))


def test_write_image_round_trips_gray_and_colour_and_rejects_other_shapes(tmp_path):
    colour = torch.rand(3, 9, 7, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "sub" / "c.png", colour)
    assert (read_image(tmp_path / "sub" / "c.png") - colour).abs().max() <= 0.5 / 255 + 1e-6
    write_image(tmp_path / "g.png", colour[0])
    assert (read_gray(tmp_path / "g.png") - colour[0]).abs().max() <= 0.5 / 255 + 1e-6
    assert read_image(tmp_path / "g.png").shape == (1, 9, 7)
    with pytest.raises(ValueError, match="C = 1 or 3"):
        write_image(tmp_path / "bad.png", torch.rand(2, 9, 7))
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image(tmp_path / "missing.png")
