"""Hypothesis-fuzzed readers: any byte string (random, or a valid file cut short / with flipped bytes) gives
either an array of the documented shape or a one-line ValueError, never another exception or a crash."""


import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gbp_torch.io import read_flo, read_image, read_pfm, write_flo, write_image, write_pfm


def _valid_files(tmp_path):
    g = torch.Generator().manual_seed(0)
    write_image(tmp_path / "v.png", torch.rand(3, 5, 4, generator=g))
    write_pfm(tmp_path / "v.pfm", torch.rand(5, 4, generator=g))
    write_flo(tmp_path / "v.flo", torch.randn(2, 5, 4, generator=g))
    pixels = (torch.rand(5, 4, 3, generator=g) * 255).to(torch.uint8).numpy()
    Image.fromarray(pixels).save(tmp_path / "v.bmp")  # the formats read through Pillow
    Image.fromarray(pixels).save(tmp_path / "v.tif")
    return {ext: (tmp_path / f"v.{ext}").read_bytes() for ext in READERS}


READERS = {"png": read_image, "pfm": read_pfm, "flo": read_flo, "bmp": read_image, "tif": read_image}
HEADERS = {"png": b"\x89PNG\r\n\x1a\n", "pfm": b"Pf\n4 5\n-1\n", "flo": np.float32(202021.25).tobytes(),
           "bmp": b"BM", "tif": b"II*\x00"}


def _check(reader, ext, data, path):
    path.write_bytes(data)
    try:
        out = reader(path)
    except ValueError as err:
        assert str(err).strip() and "\n" not in str(err).strip(), err
        return
    assert isinstance(out, torch.Tensor) and out.dim() in (2, 3) and out.numel() > 0
    if ext == "flo":
        assert out.shape[0] == 2


@pytest.mark.parametrize("ext", sorted(READERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_files_read_or_raise_one_line(tmp_path, ext, data):
    valid = _valid_files(tmp_path)[ext]
    kind = data.draw(st.sampled_from(["random", "cut", "flip", "header"]))
    if kind == "random":
        blob = data.draw(st.binary(max_size=200))
    elif kind == "cut":
        blob = valid[: data.draw(st.integers(0, len(valid) - 1))]
    elif kind == "flip":
        blob = bytearray(valid)
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    else:  # a plausible header followed by junk
        blob = HEADERS[ext] + data.draw(st.binary(max_size=100))
    _check(READERS[ext], ext, blob, tmp_path / f"f.{ext}")


def _png_with_damaged_idat(tmp_path):
    """A PNG whose IDAT bytes are damaged but whose checksums are recomputed (passes a CRC check)."""
    import struct
    import zlib

    write_image(tmp_path / "v.png", torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0)))
    raw = (tmp_path / "v.png").read_bytes()
    out, i = bytearray(raw[:8]), 8
    while i < len(raw):
        n = struct.unpack(">I", raw[i:i + 4])[0]
        kind, body = raw[i + 4:i + 8], bytearray(raw[i + 8:i + 8 + n])
        if kind == b"IDAT":
            body[len(body) // 2] ^= 0x5A
            body[len(body) // 3] ^= 0xA5
        out += struct.pack(">I", n) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        i += 12 + n
    (tmp_path / "bad.png").write_bytes(bytes(out))
    return tmp_path / "bad.png"


def test_png_with_valid_checksums_but_broken_data_is_an_error_not_a_crash(tmp_path):
    import subprocess
    import sys

    bad = _png_with_damaged_idat(tmp_path)
    code = (f"from gbp_torch.io import read_image\ntry:\n    read_image({str(bad)!r})\nexcept ValueError as e:\n"
            "    print('ValueError', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]  # torchvision alone: -11 (segmentation fault)
    assert r.stdout.startswith("ValueError not a readable image") and "damaged" in r.stdout, r.stdout
