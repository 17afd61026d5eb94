"""gbp_torch.io for stereo and flow: PFM, Middlebury .flo, KITTI 16-bit flow PNGs, disparity maps by
extension, 16-bit image reading, colour coding. Oracles: byte layouts written here from the format
specs, numpy readers written here, a 16-bit PNG encoder written here, Pillow."""

import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from gbp_torch.io import (
    colorize,
    flow_to_color,
    flow_valid,
    read_disparity,
    read_flo,
    read_flow,
    read_gray,
    read_image,
    read_kitti_flow,
    read_pfm,
    turbo,
    write_disparity,
    write_disparity_color,
    write_flo,
    write_flow,
    write_image,
    write_kitti_flow,
    write_pfm,
    write_std_map,
)
from gbp_torch.paths import data_root, samples_dir

RNG = np.random.default_rng(0)


def _png16(path, samples: np.ndarray) -> None:
    """The test's own 16-bit PNG encoder (spec: IHDR bit depth 16, big-endian samples, filter byte per
    row; here filter 1 'Sub', so that it is not the library's filter-0 layout)."""
    h, w = samples.shape[:2]
    c = 1 if samples.ndim == 2 else samples.shape[2]
    raw = samples.astype(">u2").reshape(h, w * c).view(np.uint8).reshape(h, w * c * 2).astype(np.int64)
    sub = raw.copy()
    sub[:, 2 * c:] = (raw[:, 2 * c:] - raw[:, :-2 * c]) % 256  # bpp = 2c bytes
    rows = np.concatenate([np.ones((h, 1), np.int64), sub], 1).astype(np.uint8)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 0 if c == 1 else 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows.tobytes()))
                     + chunk(b"IEND", b""))


def _numpy_flo(path) -> np.ndarray:
    """A .flo reader from the Middlebury spec: float32 magic, int32 w, h, (u, v) interleaved, little-endian."""
    with open(path, "rb") as f:
        assert np.fromfile(f, "<f4", 1)[0] == 202021.25
        w, h = np.fromfile(f, "<i4", 2)
        return np.fromfile(f, "<f4", 2 * w * h).reshape(h, w, 2)


# ------------------------------------------------------------------------------------------ PFM


def test_pfm_gray_reads_a_hand_written_bottom_row_first_file_in_both_byte_orders(tmp_path):
    img = np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5  # top row [0.5, 1.5, 2.5]
    little = b"Pf\n3 2\n-1.0\n" + img[::-1].astype("<f4").tobytes()
    (tmp_path / "le.pfm").write_bytes(little)
    (tmp_path / "be.pfm").write_bytes(b"Pf\n3 2\n1.0\n" + img[::-1].astype(">f4").tobytes())
    for name in ("le.pfm", "be.pfm"):
        got = read_pfm(tmp_path / name)
        assert got.dtype == torch.float32 and torch.equal(got, torch.from_numpy(img))
    write_pfm(tmp_path / "w.pfm", torch.from_numpy(img))
    assert (tmp_path / "w.pfm").read_bytes() == little


def test_pfm_colour_byte_layout_and_round_trip_with_inf_and_nan(tmp_path):
    img = RNG.standard_normal((3, 4, 5)).astype(np.float32)  # (C, H, W)
    img[0, 1, 2], img[2, 3, 4] = np.inf, np.nan
    expected = b"PF\n5 4\n-1.0\n" + img.transpose(1, 2, 0)[::-1].astype("<f4").tobytes()  # RGB interleaved
    write_pfm(tmp_path / "c.pfm", torch.from_numpy(img))
    assert (tmp_path / "c.pfm").read_bytes() == expected
    got = read_pfm(tmp_path / "c.pfm")
    assert got.shape == (3, 4, 5)
    np.testing.assert_array_equal(got.numpy(), img)  # NaN == NaN positions too
    write_pfm(tmp_path / "g.pfm", torch.from_numpy(img[:1]))  # (1, H, W) -> Pf
    assert (tmp_path / "g.pfm").read_bytes()[:2] == b"Pf" and read_pfm(tmp_path / "g.pfm").shape == (4, 5)


@pytest.mark.parametrize("data, match", [
    (b"P6\n3 2\n255\n" + bytes(18), "bad header"),
    (b"Pf\n3 2\n-1.0\n" + bytes(20), "truncated"),
    (b"Pf\n3 2\n-1.0\n" + bytes(28), "trailing"),
    (b"Pf\n0 2\n-1.0\n", "absurd size"),
    (b"Pf\n3 2\n0\n" + bytes(24), "scale"),
    (b"", "bad header"),
])
def test_pfm_reader_rejects_bad_files_with_one_line(tmp_path, data, match):
    (tmp_path / "x.pfm").write_bytes(data)
    with pytest.raises(ValueError, match=match) as e:
        read_pfm(tmp_path / "x.pfm")
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ .flo


def test_flo_writes_the_spec_layout_and_round_trips_unknown_as_nan(tmp_path):
    flow = torch.from_numpy(RNG.standard_normal((2, 3, 4)).astype(np.float32))
    flow[:, 1, 2] = float("nan")
    write_flo(tmp_path / "f.flo", flow)
    data = (tmp_path / "f.flo").read_bytes()
    uv = flow.permute(1, 2, 0).numpy().copy()
    uv[1, 2] = 1e10  # the Middlebury UNKNOWN_FLOW
    assert data == b"PIEH" + struct.pack("<ii", 4, 3) + uv.astype("<f4").tobytes()
    got = read_flo(tmp_path / "f.flo")
    np.testing.assert_array_equal(got.numpy(), flow.numpy())
    assert flow_valid(got).sum() == 11 and not flow_valid(got)[1, 2]


def test_flo_reader_matches_a_numpy_reader_on_the_shared_middlebury_ground_truth():
    root = data_root() / "flow" / "middlebury"
    if not root.is_dir():
        pytest.skip("shared Middlebury flow data not present")
    for scene in ("RubberWhale", "Dimetrodon", "Grove2"):
        expected = _numpy_flo(root / scene / "flow10.flo")
        got = read_flo(root / scene / "flow10.flo").permute(1, 2, 0).numpy()
        unknown = (np.abs(expected) > 1e9).any(-1)
        assert np.isnan(got[unknown]).all() and not np.isnan(got[~unknown]).any()
        np.testing.assert_array_equal(got[~unknown], expected[~unknown])


def test_shipped_flow_sample_is_the_documented_crop_of_the_shared_original():
    info = json.loads((samples_dir() / "flow" / "scenes.json").read_text())["rubberwhale"]
    x0, y0, w, h = info["crop_xywh"]
    sample = _numpy_flo(samples_dir() / "flow" / info["files"]["flow"])
    assert sample.shape == (h, w, 2) and (samples_dir() / "flow" / info["files"]["flow"]).stat().st_size < 1 << 20
    original = data_root() / "flow" / "middlebury" / "RubberWhale"
    if not original.is_dir():
        pytest.skip("shared Middlebury flow data not present")
    np.testing.assert_array_equal(sample, _numpy_flo(original / "flow10.flo")[y0:y0 + h, x0:x0 + w])
    for ours, theirs in (("frame1", "frame10.png"), ("frame2", "frame11.png")):
        crop = np.asarray(Image.open(original / theirs).convert("RGB"))[y0:y0 + h, x0:x0 + w]
        np.testing.assert_array_equal(np.asarray(Image.open(samples_dir() / "flow" / info["files"][ours])), crop)


@pytest.mark.parametrize("data, match", [
    (b"PIEG" + struct.pack("<ii", 2, 2) + bytes(32), "magic"),
    (b"PIEH" + struct.pack("<ii", 2, 2) + bytes(31), "truncated"),
    (b"PIEH" + struct.pack("<ii", 2, 2) + bytes(36), "trailing"),
    (b"PIEH" + struct.pack("<ii", -1, 2), "absurd"),
    (b"PIEH" + struct.pack("<ii", 1 << 30, 1 << 30), "absurd"),
    (b"PIEH\x02", "truncated"),
])
def test_flo_reader_rejects_bad_files_with_one_line(tmp_path, data, match):
    (tmp_path / "x.flo").write_bytes(data)
    with pytest.raises(ValueError, match=match) as e:
        read_flo(tmp_path / "x.flo")
    assert "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError):
        read_flo(tmp_path / "missing.flo")


# ------------------------------------------------------------------------------------ KITTI PNG


def test_kitti_flow_png_decodes_as_the_spec_says(tmp_path):
    rgb = np.stack([RNG.integers(0, 65536, (5, 7)), RNG.integers(0, 65536, (5, 7)),
                    RNG.integers(0, 2, (5, 7))], -1).astype(np.uint16)
    _png16(tmp_path / "k.png", rgb)
    got = read_kitti_flow(tmp_path / "k.png").numpy()
    valid = rgb[..., 2] == 1
    expected = (rgb[..., :2].astype(np.float64) - 2**15) / 64.0
    assert np.isnan(got[:, ~valid]).all()
    np.testing.assert_array_equal(got.transpose(1, 2, 0)[valid], expected[valid])
    assert torch.equal(torch.from_numpy(valid), flow_valid(read_flow(tmp_path / "k.png")))
    with pytest.raises(ValueError, match="16-bit RGB"):  # an 8-bit PNG is not a KITTI flow file
        Image.fromarray(rgb[..., 0].astype(np.uint8)).save(tmp_path / "8.png")
        read_kitti_flow(tmp_path / "8.png")


def test_kitti_flow_writer_round_trips_on_the_1_64_pixel_grid(tmp_path):
    flow = torch.from_numpy(RNG.integers(-20000, 20000, (2, 6, 5)) / 64.0).float()
    flow[:, 0, 0] = float("nan")
    write_kitti_flow(tmp_path / "k.png", flow)
    np.testing.assert_array_equal(read_kitti_flow(tmp_path / "k.png").numpy(), flow.numpy())


def test_shared_kitti_flow_has_the_documented_valid_fraction():
    path = data_root() / "flow" / "kitti" / "training" / "flow_occ" / "000010_10.png"
    if not path.is_file():
        pytest.skip("shared KITTI data not present")
    flow = read_kitti_flow(path)
    assert flow.shape == (2, 375, 1242) and 0.22 < float(flow_valid(flow).float().mean()) < 0.26
    assert float(flow[:, flow_valid(flow)].abs().max()) < 512


# ----------------------------------------------------------------------------------- disparity


def test_disparity_png_is_16_bit_times_256_with_zero_for_unknown(tmp_path):
    d = torch.from_numpy(RNG.uniform(0.01, 250.0, (6, 8))).float()
    d[2, 3] = float("nan")
    write_disparity(tmp_path / "d.png", d)
    raw = np.asarray(Image.open(tmp_path / "d.png")).astype(np.int64)  # Pillow: 16-bit gray, full values
    expected = np.round(d.double().numpy() * 256)
    expected[2, 3] = 0
    np.testing.assert_array_equal(raw, expected)
    got = read_disparity(tmp_path / "d.png")
    assert torch.isnan(got[2, 3]) and flow_valid(torch.stack([got, got])).sum() == 47
    assert (got - d).nan_to_num(0).abs().max() <= 0.5 / 256 + 1e-6
    exact = torch.arange(1, 49).reshape(6, 8) / 256.0 * 37  # on the 1/256 grid: exact
    write_disparity(tmp_path / "e.png", exact)
    assert torch.equal(read_disparity(tmp_path / "e.png"), exact.float())


def test_disparity_png_clips_out_of_range_values_with_a_warning(tmp_path):
    with pytest.warns(UserWarning, match="clipped"):
        write_disparity(tmp_path / "d.png", torch.tensor([[300.0, 0.0, 5.0]]))
    assert read_disparity(tmp_path / "d.png").tolist() == [[65535 / 256, 1 / 256, 5.0]]


@pytest.mark.parametrize("ext", [".pfm", ".npy"])
def test_disparity_float_formats_round_trip_exactly(tmp_path, ext):
    d = torch.from_numpy(RNG.uniform(-1, 300, (5, 7))).float()
    d[0, 0] = float("nan")
    write_disparity(tmp_path / f"d{ext}", d[None, None])  # leading 1s are accepted
    np.testing.assert_array_equal(read_disparity(tmp_path / f"d{ext}").numpy(), d.numpy())
    if ext == ".npy":
        a = np.load(tmp_path / "d.npy")
        assert a.dtype == np.float32 and a.shape == (5, 7)
    else:  # unknown is written as inf (Middlebury), read back as NaN
        assert np.isinf(_pfm_numpy(tmp_path / "d.pfm")[0, 0])


def _pfm_numpy(path):
    data = open(path, "rb").read()
    lines = data.split(b"\n", 3)
    w, h = map(int, lines[1].split())
    return np.frombuffer(lines[3], "<f4").reshape(h, w)[::-1]


def test_disparity_rejects_unknown_extensions_and_8_bit_png_without_scale(tmp_path):
    with pytest.raises(ValueError, match="extension"):
        write_disparity(tmp_path / "d.jpg", torch.zeros(2, 2))
    gt = samples_dir() / "stereo" / "tsukuba_disp_left.png"
    with pytest.raises(ValueError, match="scale"):
        read_disparity(gt)
    got = read_disparity(gt, scale=16)
    raw = np.asarray(Image.open(gt)).astype(np.float32)
    np.testing.assert_array_equal(got.numpy(), np.where(raw > 0, raw / 16, np.nan))
    assert 5.0 <= float(got.nan_to_num(10).min()) and float(got.nan_to_num(0).max()) <= 14.0  # scenes.json range


def test_flow_by_extension(tmp_path):
    flow = torch.from_numpy(RNG.standard_normal((2, 4, 6)).astype(np.float32))
    write_flow(tmp_path / "f.npy", flow)
    a = np.load(tmp_path / "f.npy")
    assert a.shape == (4, 6, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, flow.permute(1, 2, 0).numpy())
    assert torch.equal(read_flow(tmp_path / "f.npy"), flow)
    write_flow(tmp_path / "f.flo", flow)
    assert torch.equal(read_flow(tmp_path / "f.flo"), flow)
    write_flow(tmp_path / "f.png", flow)  # colour coding
    assert np.asarray(Image.open(tmp_path / "f.png")).shape == (4, 6, 3)
    with pytest.raises(ValueError, match="extension"):
        write_flow(tmp_path / "f.pfm", flow)
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        write_flow(tmp_path / "g.flo", flow[:1])


# ------------------------------------------------------------------------------------ images


def test_16_bit_gray_png_is_scaled_by_65535(tmp_path):
    gray = RNG.integers(0, 65536, (9, 7)).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "g16.png")  # Pillow writes 16-bit gray ('I;16')
    got, bits = read_gray(tmp_path / "g16.png", return_bits=True)
    assert bits == 16 and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), gray / 65535.0, atol=1e-7)
    img = read_image(tmp_path / "g16.png")
    assert img.shape == (1, 9, 7) and torch.allclose(img[0], got)


def test_16_bit_rgb_png_is_scaled_by_65535_and_written_back_at_16_bits(tmp_path):
    rgb = RNG.integers(0, 65536, (9, 7, 3)).astype(np.uint16)
    _png16(tmp_path / "c16.png", rgb)
    got, bits = read_image(tmp_path / "c16.png", return_bits=True)
    assert bits == 16 and got.shape == (3, 9, 7)
    np.testing.assert_allclose(got.numpy(), rgb.transpose(2, 0, 1) / 65535.0, atol=1e-7)
    gray = read_gray(tmp_path / "c16.png")
    assert 0 <= float(gray.min()) and float(gray.max()) <= 1 and float(gray.mean()) > 0.3  # not all white / black
    write_image(tmp_path / "out.png", got, bits=16)
    assert torch.equal(read_image(tmp_path / "out.png"), got)
    assert read_image(tmp_path / "c16.png", return_bits=True)[1] == 16
    _, bits8 = read_image(samples_dir() / "stereo" / "tsukuba_left.png", return_bits=True)
    assert bits8 == 8


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"hello, not an image", "not a readable image"),
                                            (None, "not a readable image")])
def test_image_readers_reject_empty_truncated_and_non_image_files(tmp_path, content, match):
    if content is None:  # a PNG cut in half
        content = (samples_dir() / "stereo" / "tsukuba_left.png").read_bytes()[:5000]
    (tmp_path / "x.png").write_bytes(content)
    for reader in (read_image, read_gray):
        with pytest.raises(ValueError, match=match) as e:
            reader(tmp_path / "x.png")
        assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------ colour


def test_turbo_runs_from_dark_blue_through_green_to_dark_red():
    c = turbo(torch.tensor([0.0, 0.5, 1.0]))
    assert c.shape == (3, 3) and 0 <= float(c.min()) and float(c.max()) <= 1
    assert c[2, 0] > c[0, 0] and c[1, 1] > 0.9 and c[0, 2] > c[2, 2]  # blue-ish, green-ish, red-ish
    ramp = turbo(torch.linspace(0, 1, 256))
    assert (ramp[:, 1:] - ramp[:, :-1]).abs().max() < 0.05  # continuous


def test_colour_writers_give_8_bit_rgb_with_unknown_black(tmp_path):
    d = torch.linspace(0, 15, 40).reshape(5, 8)
    d[1, 1] = float("nan")
    write_disparity_color(tmp_path / "c.png", d, vmax=15)
    rgb = np.asarray(Image.open(tmp_path / "c.png"))
    assert rgb.shape == (5, 8, 3) and (rgb[1, 1] == 0).all() and rgb[0, 0, 2] > rgb[0, 0, 0]
    assert torch.allclose(colorize(d, 0, 15)[:, 4, 7], turbo(torch.tensor(1.0)))
    d[2, 2] = float("inf")
    assert write_std_map(tmp_path / "s.png", d) == pytest.approx(float(torch.quantile(d[torch.isfinite(d)], 0.99)))
    s = np.asarray(Image.open(tmp_path / "s.png"))
    assert s.shape == (5, 8, 3) and (s[0, 0] == 0).all() and (s[4, 7] == 255).all()
    assert (s[1, 1] == 0).all() and (s[2, 2] == 255).all()  # NaN (unknown) black, inf (nothing known) white
    f = torch.ones(2, 3, 4)
    f[:, 0, 0] = float("nan")
    img = flow_to_color(f)
    assert img.dtype == torch.uint8 and (img[:, 0, 0] == 0).all() and (img[:, 1, 1] > 0).any()


def test_finite_quantile_of_a_big_map_samples_all_of_it():
    """More values than ``limit``: an even subsample of the whole map (not its first rows) sets the quantile."""
    from gbp_torch.io import finite_quantile

    x = torch.arange(10.0).repeat_interleave(1000).reshape(100, 100)  # rows 0-9 hold 0, ..., rows 90-99 hold 9
    x[0, 0] = float("inf")
    assert finite_quantile(x, 0.99, limit=1000) == 9.0
    assert abs(finite_quantile(x, 0.5, limit=1000) - float(x[torch.isfinite(x)].quantile(0.5))) <= 0.5
    assert finite_quantile(torch.full((3, 3), float("nan"))) == 1.0
