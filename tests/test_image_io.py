"""gbp_torch.io against Pillow's own decoding: gray / gray+alpha / colour / colour+alpha / palette PNGs; BMP, TIFF and
PNM files (8- and 16-bit) written by Pillow."""

import numpy as np
import pytest
import torch
from PIL import Image

from gbp_torch.io import read_alpha, read_gray, read_image, read_samples, write_image

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


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_encode_png_writes_what_libpng_reads(tmp_path, bits, channels):
    """Gray, gray + alpha, RGB and RGBA at 8 and 16 bits, decoded by torchvision's libpng reader (and Pillow)."""
    from torchvision.io import ImageReadMode, decode_image, read_file

    from gbp_torch.io import encode_png

    samples = torch.from_numpy(RNG.integers(0, 1 << bits, (channels, 9, 7)).astype(np.int32))
    (tmp_path / "x.png").write_bytes(encode_png(samples, bits))
    got = decode_image(read_file(str(tmp_path / "x.png")), mode=ImageReadMode.UNCHANGED)
    assert got.shape == samples.shape and got.dtype == (torch.uint8 if bits == 8 else torch.uint16)
    assert torch.equal(got.to(torch.int32), samples)
    if bits == 8:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
        with Image.open(tmp_path / "x.png") as im:
            assert im.mode == mode
            assert np.array_equal(np.asarray(im).reshape(9, 7, channels), samples.permute(1, 2, 0).numpy())
    with pytest.raises(ValueError, match=f"{bits}-bit PNG samples"):
        encode_png(samples + (1 << bits), bits)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_read_alpha_reads_the_alpha_channel_and_write_image_stores_it(tmp_path, mode, suffix):
    from gbp_torch.io import read_alpha

    image, _ = _expected(mode)
    if suffix == ".webp":
        image = image.convert("RGBA")
    image.save(tmp_path / f"x{suffix}", **({"lossless": True} if suffix == ".webp" else {}))
    alpha = read_alpha(tmp_path / f"x{suffix}")
    assert alpha.shape == (1, 9, 7) and alpha.dtype == torch.float32
    assert torch.equal((alpha[0] * 255).round().to(torch.uint8), torch.from_numpy(ALPHA))
    # written back with the image: the same alpha, the same image
    rgb = read_image(tmp_path / f"x{suffix}")
    write_image(tmp_path / "y.png", rgb, alpha=alpha)
    assert torch.equal(read_alpha(tmp_path / "y.png"), alpha)
    assert torch.equal(read_image(tmp_path / "y.png"), rgb)
    write_image(tmp_path / "y16.png", rgb, bits=16, alpha=alpha)
    assert (read_alpha(tmp_path / "y16.png") - alpha).abs().max() < 1e-7
    with pytest.raises(ValueError, match="alpha must be"):
        write_image(tmp_path / "z.png", rgb, alpha=alpha[:, :4])


def test_files_without_alpha_or_opaque_give_none(tmp_path):
    from gbp_torch.io import read_alpha

    Image.fromarray(RGB).save(tmp_path / "rgb.png")
    Image.fromarray(RGB).save(tmp_path / "rgb.jpg")
    Image.fromarray(np.dstack([RGB, np.full((9, 7), 255, np.uint8)])).save(tmp_path / "opaque.png")
    Image.fromarray(GRAY).save(tmp_path / "gray.tif")
    Image.fromarray(RGB).convert("P", palette=Image.ADAPTIVE, colors=16).save(tmp_path / "palette.png")
    for name in ("rgb.png", "rgb.jpg", "opaque.png", "gray.tif", "palette.png"):
        assert read_alpha(tmp_path / name) is None, name


def test_palette_png_alpha_comes_from_its_transparency_chunk(tmp_path):
    """A palette PNG has an alpha only through tRNS (torchvision's RGB_ALPHA decoding invents one without it):
    with one transparent palette entry, alpha is 0 exactly where Pillow's RGBA conversion says so."""
    from gbp_torch.io import read_alpha

    palette = Image.fromarray(RGB).convert("P", palette=Image.ADAPTIVE, colors=16)
    index = int(np.asarray(palette)[0, 0])
    palette.save(tmp_path / "p.png", transparency=index)
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGBA"))[..., 3]
    assert (expected == 0).any() and (expected == 255).any()
    assert np.array_equal((read_alpha(tmp_path / "p.png")[0] * 255).round().numpy().astype(np.uint8), expected)


def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


# JPEG stores gray or RGB only; torchvision's GIF decoder refuses a GIF with a transparent palette entry
DECODED = [(mode, fmt) for mode in ("1", "L", "LA", "P", "P+tRNS", "RGB", "RGBA")
           for fmt in ("PNG", "JPEG", "WEBP", "GIF")
           if (fmt != "JPEG" or mode in ("L", "RGB")) and (fmt, mode) != ("GIF", "P+tRNS")]


@pytest.mark.parametrize(("mode", "fmt"), DECODED)
def test_read_image_decodes_as_torchvision_does(tmp_path, mode, fmt):
    """The readers decode through Pillow (torchvision's import costs a CLI run 2 s); torchvision's decoder is the
    oracle for the samples of every 8-bit PNG colour type, JPEG, lossless WEBP and GIF."""
    from torchvision.io import ImageReadMode, decode_image

    if mode == "1":
        image = Image.fromarray(GRAY > 127)
    elif mode.startswith("P"):
        image = Image.fromarray(RGB).quantize(16)
        if mode == "P+tRNS":
            image.info["transparency"] = 3
    elif mode in ("L", "LA"):
        image = Image.fromarray(GRAY) if mode == "L" else Image.fromarray(np.dstack([GRAY, ALPHA]), "LA")
    else:
        image = Image.fromarray(RGB if mode == "RGB" else np.dstack([RGB, ALPHA]))
    data = _saved(image, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(data)
    oracle = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    got = read_samples(path)
    assert torch.equal(got.expand_as(oracle), oracle)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_colour_or_alpha_pngs_keep_16_bits(tmp_path, channels):
    """Pillow cuts these to 8 bits; they go to torchvision's decoder: the samples come back exactly."""
    from gbp_torch.io import encode_png

    samples = torch.from_numpy(RNG.integers(0, 65536, (channels, 9, 7)).astype(np.int32))
    (tmp_path / "x.png").write_bytes(encode_png(samples, 16))
    got, bits = read_image(tmp_path / "x.png", return_bits=True)
    colour = samples[:1].expand(3, -1, -1) if channels == 2 else samples[:3]
    assert bits == 16 and torch.equal((got * 65535).round().to(torch.int32), colour if channels > 2 else samples[:1])
    alpha = read_alpha(tmp_path / "x.png")
    if channels == 3:
        assert alpha is None
    else:
        assert torch.equal((alpha * 65535).round().to(torch.int32), samples[-1:])


def test_reading_and_writing_8_bit_images_does_not_import_torchvision(tmp_path):
    """Importing torchvision takes about 2 s, a third of a CLI run on a 584 x 388 pair: the readers and the 8-bit
    writer must not need it (a fresh interpreter, so that no other test has imported it)."""
    import subprocess
    import sys

    Image.fromarray(RGB).save(tmp_path / "x.png")
    Image.fromarray(RGB).save(tmp_path / "x.jpg")
    code = ("import sys; from gbp_torch.io import read_image, read_alpha, write_image, write_flow_color; "
            f"x = read_image({str(tmp_path / 'x.png')!r}); read_image({str(tmp_path / 'x.jpg')!r}); "
            f"read_alpha({str(tmp_path / 'x.png')!r}); write_image({str(tmp_path / 'y.png')!r}, x); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torchvision'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "y.png")), RGB)
