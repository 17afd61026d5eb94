"""The shipped-data main job: classical GBP denoising, image IO and data paths."""

import re

import pytest
import torch

from gbp_torch.demo import run_demo
from gbp_torch.io import read_gray, write_image
from gbp_torch.metrics import psnr_db
from gbp_torch.paths import DATA_ROOT_ENV, dataset_dir, samples_dir
from gbp_torch.tasks.denoise.classical import ClassicalDenoiser


def test_classical_denoiser_improves_psnr_on_a_shipped_crop():
    clean = read_gray(samples_dir() / "denoise" / "set12_01_cameraman.png")[64:128, 64:128]
    sigma = 25 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    mean, var = ClassicalDenoiser()(noisy[None], sigma)
    assert psnr_db(mean[0], clean) > psnr_db(noisy, clean) + 4.0
    # GBP's variance is below the noise variance (the data alone) and positive everywhere
    assert (var > 0).all() and (var < sigma**2).all()


def test_write_then_read_roundtrip(tmp_path):
    img = torch.rand(7, 9, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "sub" / "x.png", img)
    back = read_gray(tmp_path / "sub" / "x.png")
    assert back.shape == (7, 9)
    assert (back - img).abs().max() <= 0.5 / 255 + 1e-6


def test_missing_image_and_dataset_errors_say_where(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_gray(tmp_path / "nope.png")
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"denoise/bsd68.*GBP_DATA_ROOT"):
        dataset_dir("denoise/bsd68")


def test_shared_data_root_resolves_bsd68():
    path = dataset_dir("denoise/bsd68")
    assert len(list(path.glob("*.png"))) == 68


def test_demo_writes_images_and_the_learned_model_beats_the_baselines(tmp_path):
    rows = run_demo(tmp_path, sigma255=25.0)
    assert {r["image"] for r in rows} == {p.stem for p in (samples_dir() / "denoise").glob("*.png")}
    for r in rows:
        assert r["learned_db"] > r["classical_db"] > r["median_db"] > r["noisy_db"]
        assert 0.5 < r["coverage95"] <= 1.0
        for kind in ("noisy", "classical", "learned", "std"):
            assert (tmp_path / f"{r['image']}_{kind}.png").is_file()


def test_demo_stereo_and_flow_rows_on_the_shipped_pairs(tmp_path):
    from gbp_torch.demo import run_flow_demo, run_stereo_demo

    torch.set_num_threads(1)
    st = run_stereo_demo(tmp_path)
    bad1, mae = (float(v) for v in st["value"].split(" / "))
    assert bad1 < 10.0 and mae < 0.8 and 0.9 < st["coverage95"] <= 1.0  # hand-set: 4.19 % / 0.485 px
    fl = run_flow_demo(tmp_path)
    assert float(fl["value"]) < 0.3 and 0.8 < fl["coverage95"] <= 1.0  # learned: 0.123 px (DIS: 0.23 on the full frame)
    for name in ("tsukuba_disparity.png", "tsukuba_std.png", "rubberwhale_flow.png", "rubberwhale_std.png"):
        assert read_gray(tmp_path / name).std() > 0.05  # a picture, not a blank


@pytest.mark.parametrize("argv,match", [
    (["--sigma", "-3"], r"--sigma must be in \(0, 255\)"),  # reached the denoiser before
    (["--sigma", "300"], r"--sigma must be in \(0, 255\)"),  # ran, on noise of std 300/255
    (["--model", "gbp_flow"], "is not a shipped denoiser"),  # a traceback after the noisy images were written
    (["--out", "afile"], "is a file"),  # a FileExistsError traceback
])
def test_demo_bad_arguments_stop_before_any_work(tmp_path, monkeypatch, capsys, argv, match):
    from gbp_torch.demo import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # nothing written


def test_demo_colour_row_gains_from_the_opponent_space(tmp_path):
    from gbp_torch.demo import run_colour_demo

    row = run_colour_demo(tmp_path, sigma255=25.0)
    assert row["opponent_db"] > row["separate_db"] + 0.5 > row["noisy_db"] + 4.0
    assert 0.9 < row["coverage95"] <= 1.0
    for name in ("rubberwhale_noisy.png", "rubberwhale_denoised.png"):
        assert (tmp_path / name).is_file()
