"""gbp_torch.io against Pillow's own decoding: gray / gray+alpha / colour / colour+alpha / palette PNGs; BMP, TIFF and
PNM files (8- and 16-bit) written by Pillow."""

import numpy as np
import pytest
import torch
from PIL import Image

from gbp_torch.io import read_gray, read_image, read_samples, write_image

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
    samples = read_samples(tmp_path / "x.png")  # the same samples, unscaled (what the denoising CLI keeps)
    assert samples.dtype == torch.uint8 and torch.equal(samples, torch.from_numpy(expected.copy()))


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


GRAY16 = RNG.integers(0, 65536, (9, 7), dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".ppm"])
@pytest.mark.parametrize("mode", ["L", "RGB", "P"])
def test_bmp_tiff_and_pnm_are_read_like_png(tmp_path, suffix, mode):
    """Formats torchvision does not decode go through Pillow, with PNG's conventions (gray stays 1 channel)."""
    image, expected = _expected(mode)
    if suffix == ".ppm" and mode == "P":
        image = image.convert("RGB")
    path = tmp_path / f"x{suffix if not (suffix == '.ppm' and mode == 'L') else '.pgm'}"
    image.save(path)
    got, bits = read_image(path, return_bits=True)
    assert bits == 8 and got.shape == expected.shape
    assert torch.equal((got * 255).round().to(torch.uint8), torch.from_numpy(expected.copy()))
    assert read_gray(path).shape == expected.shape[1:]


@pytest.mark.parametrize("suffix", [".tif", ".pgm"])
def test_16_bit_gray_tiff_and_pgm_keep_their_depth(tmp_path, suffix):
    Image.fromarray(GRAY16).save(tmp_path / f"x{suffix}")
    got, bits = read_gray(tmp_path / f"x{suffix}", return_bits=True)
    assert bits == 16
    torch.testing.assert_close(got, torch.from_numpy(GRAY16.astype(np.float32)) / 65535.0, rtol=0, atol=1e-7)
    colour, bits = read_image(tmp_path / f"x{suffix}", return_bits=True)
    assert bits == 16 and colour.shape == (1, 9, 7)
    samples = read_samples(tmp_path / f"x{suffix}")
    assert samples.dtype == torch.uint16
    np.testing.assert_array_equal(samples[0].to(torch.int32).numpy(), GRAY16.astype(np.int32))


def test_truncated_or_float_tiff_is_a_one_line_value_error(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.tif")
    (tmp_path / "cut.tif").write_bytes((tmp_path / "x.tif").read_bytes()[:60])
    with pytest.raises(ValueError, match="cut.tif"):
        read_image(tmp_path / "cut.tif")
    Image.fromarray(GRAY.astype(np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ValueError, match="float"):
        read_gray(tmp_path / "f.tif")


def test_a_jpeg_orientation_tag_is_applied(tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to display) reads as
    displayed, Pillow's ``exif_transpose`` as the oracle; before, it read as stored."""
    from PIL import ImageOps

    stored = np.zeros((20, 30, 3), np.uint8)
    stored[:5, :8] = (255, 40, 0)  # an orange block in the stored top-left corner
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    im.save(path, exif=exif.tobytes(), quality=95)
    with Image.open(path) as opened:
        shown = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    got = read_image(path)
    assert got.shape == (3, 30, 20)
    assert np.abs(got.permute(1, 2, 0).numpy() * 255 - shown).max() <= 1
