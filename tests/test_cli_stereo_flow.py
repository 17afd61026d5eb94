"""gbp-stereo, gbp-flow (and gbp-denoise's checks): every bad input is a one-line error with a non-zero
exit, before any model runs, that creates and overwrites nothing; a good run writes each format.
The models are fakes injected through the CLI's resolvers, so these tests do not wait on the tasks."""

import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from gbp_torch import cli, pretrained
from gbp_torch.io import read_disparity, read_flow, read_image, write_image
from gbp_torch.paths import REPO_ROOT, samples_dir
from gbp_torch.tasks.stereo.output import StereoOutput

H, W = 24, 32


class FakeStereo:
    """Disparity 2.0 everywhere, variance 0.25; records its calls."""

    def __init__(self, var=True):
        self.calls, self.var = [], var

    def __call__(self, left, right, max_disp):
        self.calls.append((tuple(left.shape), tuple(right.shape), max_disp))
        d = torch.full((left.shape[0], 1, *left.shape[-2:]), 2.0)
        return StereoOutput(d, torch.full_like(d, 0.25) if self.var else None, None)


class FakeFlow:
    """Flow (1.5, -0.5) everywhere, covariance diag(0.04, 0.09); records its calls."""

    def __init__(self, cov=True):
        self.calls, self.cov = [], cov

    def __call__(self, f1, f2):
        self.calls.append((tuple(f1.shape), tuple(f2.shape)))
        b, _, h, w = f1.shape
        flow = torch.tensor([1.5, -0.5]).view(1, 2, 1, 1).expand(b, 2, h, w).clone()
        cov = torch.zeros(b, 2, 2, h, w)
        cov[:, 0, 0], cov[:, 1, 1] = 0.04, 0.09
        return SimpleNamespace(flow=flow, cov=cov if self.cov else None)


@pytest.fixture
def pair(tmp_path):
    """Two RGB images (right = left shifted by 2 px) and an image of another size; return the folder."""
    g = torch.Generator().manual_seed(0)
    left = torch.rand(3, H, W + 2, generator=g)
    write_image(tmp_path / "a.png", left[..., 2:])
    write_image(tmp_path / "b.png", left[..., :-2])
    write_image(tmp_path / "small.png", torch.rand(3, H - 4, W, generator=g))
    write_image(tmp_path / "thin.png", torch.rand(3, 5, W, generator=g))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image\n")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:200])
    (tmp_path / "folder").mkdir()
    return tmp_path


@pytest.fixture
def fakes(monkeypatch):
    stereo, flow = FakeStereo(), FakeFlow()
    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: stereo)
    monkeypatch.setattr(cli.flow, "_flow_model", lambda name, device: flow)
    return stereo, flow


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _fails(main, argv, capsys, folder, prog):
    """main(argv) exits non-zero with one line on stderr, changing no file in ``folder``."""
    before = _snapshot(folder)
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    assert e.value.code not in (0, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{prog}: error: ") and "Traceback" not in err[0], err
    assert _snapshot(folder) == before
    return err[0]


# ------------------------------------------------------------------------------- stereo: good runs


@pytest.mark.parametrize("ext", [".pfm", ".png", ".npy"])
def test_stereo_writes_disparity_std_and_colour_in_each_format(pair, fakes, ext, capsys):
    stereo, _ = fakes
    cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / f"d{ext}"), "--max-disp", "6",
                     "--uncertainty", str(pair / f"s{ext}"), "--color", str(pair / "c.png")])
    assert stereo.calls == [((1, 3, H, W), (1, 3, H, W), 6)]
    assert torch.equal(read_disparity(pair / f"d{ext}"), torch.full((H, W), 2.0))
    assert torch.equal(read_disparity(pair / f"s{ext}"), torch.full((H, W), 0.5))
    assert np.asarray(Image.open(pair / "c.png")).shape == (H, W, 3)
    assert "wrote" in capsys.readouterr().out


def test_stereo_uncertainty_colour_is_a_colour_map_of_the_std(pair, fakes, capsys, monkeypatch):
    """Black at std 0, white at the 99th percentile of the stds and above (a model whose std is 0 on the left half,
    0.5 on the right one)."""
    stereo, _ = fakes

    def half_certain(left, right, max_disp):
        out = stereo(left, right, max_disp)
        out.var[..., : W // 2] = 0.0
        return out

    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: half_certain)
    cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "d.pfm"), "--max-disp", "6",
                     "--uncertainty-color", str(pair / "s.png")])
    image = np.asarray(Image.open(pair / "s.png"))
    assert image.shape == (H, W, 3) and (image[:, : W // 2] == 0).all() and (image[:, W // 2:] == 255).all()
    assert "white = 0.5 px, the 99th percentile" in capsys.readouterr().out


def test_stereo_says_when_it_resampled_tilted_rows(pair, monkeypatch, capsys):
    def model(left, right, max_disp):
        d = torch.full((1, 1, *left.shape[-2:]), 2.0)
        return StereoOutput(d, None, None, torch.tensor([0.0]), torch.tensor([-1.5]))

    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: model)
    cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "d.pfm"), "--max-disp", "6"])
    said = [line for line in capsys.readouterr().out.splitlines() if "rows are" in line]
    assert said == ["stereo: the right image's rows are +0.00 px off the left's, changing by -1.50 px from the left "
                    "edge to the right (imperfect rectification): resampled before matching"]


def test_stereo_default_max_disp_is_a_quarter_of_the_width_and_gray_meets_colour(pair, fakes):
    stereo, _ = fakes
    write_image(pair / "gray.png", read_image(pair / "b.png").mean(0))
    cli.stereo_main([str(pair / "a.png"), str(pair / "gray.png"), "-o", str(pair / "d.npy")])
    assert stereo.calls == [((1, 3, H, W), (1, 3, H, W), W // 4)]


@pytest.mark.parametrize("offset", [0.0, -1.25])
def test_stereo_says_when_it_resampled_the_right_images_rows(pair, monkeypatch, capsys, offset):
    def model(left, right, max_disp):
        d = torch.full((1, 1, *left.shape[-2:]), 2.0)
        return StereoOutput(d, None, None, torch.tensor([offset]))

    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: model)
    cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "d.pfm"), "--max-disp", "6"])
    said = [line for line in capsys.readouterr().out.splitlines() if "rows are" in line]
    assert said == ([] if offset == 0 else ["stereo: the right image's rows are -1.25 px off the left's (imperfect "
                                            "rectification): resampled before matching"])


@pytest.mark.parametrize("top_rows", [0, 1, 3])
def test_stereo_warns_when_the_disparity_reaches_the_top_of_the_range(pair, monkeypatch, capsys, top_rows):
    """Rows of pixels at max_disp: 1 row of 24 (4 %) and 3 rows warn (the limit is 2 % of the visible pixels); occluded
    pixels at the top do not count."""
    def model(left, right, max_disp):
        d = torch.full((1, 1, *left.shape[-2:]), 2.0)
        d[..., :top_rows, :] = max_disp
        occluded = torch.zeros_like(d, dtype=torch.bool)
        occluded[..., -2:, :] = True
        d[..., -2:, :] = max_disp  # occluded: ignored
        return StereoOutput(d, None, occluded)

    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: model)
    cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "d.pfm"), "--max-disp", "6"])
    err = [line for line in capsys.readouterr().err.splitlines() if "largest disparity" in line]
    share = round(100 * top_rows / (H - 2))
    assert err == ([] if top_rows == 0 else [f"gbp-stereo: warning: {share} % of the pixels lie at the largest "
                                             "disparity searched (6): nearer surfaces may lie beyond it; raise "
                                             "--max-disp"])


def test_stereo_without_variance_writes_the_disparity_then_says_so(pair, monkeypatch, capsys):
    monkeypatch.setattr(cli.stereo, "_stereo_model", lambda name, device: FakeStereo(var=False))
    with pytest.raises(SystemExit) as e:
        cli.stereo_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "d.pfm"),
                         "--uncertainty", str(pair / "s.pfm")])
    assert e.value.code == 2 and "no uncertainty" in capsys.readouterr().err
    assert (pair / "d.pfm").is_file() and not (pair / "s.pfm").exists()


# -------------------------------------------------------------------------------- stereo: bad input


STEREO_BAD = {
    "missing left": (["nope.png", "b.png", "-o", "d.pfm"], "not found"),
    "empty right": (["a.png", "empty.png", "-o", "d.pfm"], "empty"),
    "non-image": (["a.png", "text.png", "-o", "d.pfm"], "not a readable image"),
    "truncated": (["cut.png", "b.png", "-o", "d.pfm"], "not a readable image"),
    "directory input": (["folder", "b.png", "-o", "d.pfm"], "not a file"),
    "sizes differ": (["a.png", "small.png", "-o", "d.pfm"], f"{W}x{H} (WxH) but right image"),
    "output is left": (["a.png", "b.png", "-o", "a.png"], "refusing to overwrite an input"),
    "colour is right": (["a.png", "b.png", "-o", "d.pfm", "--color", "b.png"], "refusing to overwrite"),
    "uncertainty is output": (["a.png", "b.png", "-o", "d.pfm", "--uncertainty", "d.pfm"], "same file"),
    "colour is output": (["a.png", "b.png", "-o", "d.png", "--color", "d.png"], "same file"),
    "output is a directory": (["a.png", "b.png", "-o", "folder"], "is a directory"),
    "output in a missing folder": (["a.png", "b.png", "-o", "nofolder/d.pfm"], "does not exist"),
    "unsupported output": (["a.png", "b.png", "-o", "d.jpg"], "unsupported extension"),
    "unsupported uncertainty": (["a.png", "b.png", "-o", "d.pfm", "--uncertainty", "s.flo"], "unsupported"),
    "colour not png": (["a.png", "b.png", "-o", "d.pfm", "--color", "c.pfm"], "unsupported"),
    "uncertainty colour not png": (["a.png", "b.png", "-o", "d.pfm", "--uncertainty-color", "s.pfm"], "unsupported"),
    "uncertainty colour is left": (["a.png", "b.png", "-o", "d.pfm", "--uncertainty-color", "a.png"],
                                   "refusing to overwrite"),
    "max-disp 0": (["a.png", "b.png", "-o", "d.pfm", "--max-disp", "0"], "> 0"),
    "max-disp negative": (["a.png", "b.png", "-o", "d.pfm", "--max-disp", "-4"], "> 0"),
    "max-disp >= width": (["a.png", "b.png", "-o", "d.pfm", "--max-disp", str(W)], "smaller than the image width"),
    "bad device": (["a.png", "b.png", "-o", "d.pfm", "--device", "tpu9"], "--device"),
}


@pytest.mark.parametrize("case", sorted(STEREO_BAD))
def test_stereo_bad_input_is_one_line_and_touches_nothing(pair, fakes, capsys, case, monkeypatch):
    argv, match = STEREO_BAD[case]
    monkeypatch.chdir(pair)
    line = _fails(cli.stereo_main, argv, capsys, pair, "gbp-stereo")
    assert match in line
    assert fakes[0].calls == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_a_gpu_is_refused_before_computing(pair, fakes, capsys, monkeypatch):
    monkeypatch.chdir(pair)
    for main, prog, argv in ((cli.stereo_main, "gbp-stereo", ["a.png", "b.png", "-o", "d.pfm"]),
                             (cli.flow_main, "gbp-flow", ["a.png", "b.png", "-o", "f.flo"]),
                             (cli.denoise_main, "gbp-denoise", ["a.png", "-o", "o.png", "--sigma", "25"])):
        assert "CUDA is not available" in _fails(main, [*argv, "--device", "cuda"], capsys, pair, prog)
    assert fakes[0].calls == fakes[1].calls == []


def test_stereo_resolver_unknown_model_lists_the_known_ones(pair, capsys, monkeypatch):
    """The real resolver: a pretrained.stereo that does not know the name -> its list, plus 'handset'."""
    def factory(name="default", device="cpu"):
        raise KeyError(f"no pretrained model {name!r}; available: ['stereo_a', 'stereo_b']")

    monkeypatch.setattr(pretrained, "stereo", factory, raising=False)
    monkeypatch.chdir(pair)
    line = _fails(cli.stereo_main, ["a.png", "b.png", "-o", "d.pfm", "--model", "nope"], capsys, pair, "gbp-stereo")
    assert "unknown --model 'nope'" in line and "stereo_a" in line


def test_stereo_resolver_without_any_model_says_so(pair, capsys, monkeypatch):
    monkeypatch.delattr(pretrained, "stereo", raising=False)
    monkeypatch.setitem(sys.modules, "gbp_torch.tasks.stereo.handset", None)  # as if it did not exist
    monkeypatch.chdir(pair)
    line = _fails(cli.stereo_main, ["a.png", "b.png", "-o", "d.pfm"], capsys, pair, "gbp-stereo")
    assert "stereo model not available" in line


def test_stereo_resolver_falls_back_to_the_handset_class(monkeypatch):
    """No pretrained.stereo: no name and 'handset' give the hand-set class; other names are unknown."""
    class Handset(torch.nn.Module):
        pass

    monkeypatch.delattr(pretrained, "stereo", raising=False)
    monkeypatch.setattr(cli.common, "optional_class", lambda module, name: Handset if name == "HandsetStereo" else None)
    assert isinstance(cli.stereo._stereo_model(None, torch.device("cpu")), Handset)
    assert isinstance(cli.stereo._stereo_model("handset", torch.device("cpu")), Handset)
    with pytest.raises(cli.CLIError, match="known: handset"):
        cli.stereo._stereo_model("other", torch.device("cpu"))


# ------------------------------------------------------------------------------------ flow


@pytest.mark.parametrize("ext", [".flo", ".npy", ".png"])
def test_flow_writes_flow_colour_and_std_in_each_format(pair, fakes, ext):
    _, flow = fakes
    std_ext = ".npy" if ext == ".npy" else ".flo"
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / f"f{ext}"), "--png",
                   str(pair / "c.png"), "--uncertainty", str(pair / f"s{std_ext}")])
    assert flow.calls == [((1, 3, H, W), (1, 3, H, W))]
    if ext == ".png":
        assert np.asarray(Image.open(pair / "f.png")).shape == (H, W, 3)
    else:
        expected = torch.tensor([1.5, -0.5]).view(2, 1, 1).expand(2, H, W)
        assert torch.equal(read_flow(pair / f"f{ext}"), expected)
    assert np.asarray(Image.open(pair / "c.png")).shape == (H, W, 3)
    std = read_flow(pair / f"s{std_ext}")
    assert torch.allclose(std, torch.tensor([0.2, 0.3]).view(2, 1, 1).expand(2, H, W))


def test_flow_uncertainty_png_is_a_colour_map_of_the_std_size(pair, fakes, capsys):
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "f.flo"), "--uncertainty",
                   str(pair / "s.png")])
    image = np.asarray(Image.open(pair / "s.png"))
    assert image.shape == (H, W, 3) and (image == 255).all()  # the fake's std is the same everywhere: white
    assert f"white = {(0.2**2 + 0.3**2) ** 0.5:.3g} px, the 99th percentile" in capsys.readouterr().out


def test_flow_uncertainty_png_draws_infinite_std_white_and_scales_by_the_finite_ones(pair, fakes, capsys,
                                                                                      monkeypatch):
    """A model reporting inf on some pixels (motion the frames do not determine): those are white, the rest
    scaled by the 99th percentile of the finite stds (not all black, no NaN), in the demo's colours."""
    _, flow = fakes
    plain = flow.__call__

    def with_inf(f1, f2):
        out = plain(f1, f2)
        out.cov[:, 0, 0, :, : W // 2] = float("inf")
        out.cov[:, 1, 1, :, W // 2:] = 4 * 0.09  # the right half's std size is sqrt(0.04 + 0.36) = 0.632
        out.cov[:, :, :, :2, W // 2:] = 0.0  # two rows of certain flow: black
        return out

    monkeypatch.setattr(cli.flow, "_flow_model", lambda name, device: with_inf)
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "f.flo"), "--uncertainty",
                   str(pair / "s.png")])
    image = np.asarray(Image.open(pair / "s.png"))
    assert (image[:, : W // 2] == 255).all() and (image[2:, W // 2:] == 255).all() and (image[:2, W // 2:] == 0).all()
    assert f"white = {(0.04 + 0.36) ** 0.5:.3g} px" in capsys.readouterr().out
    assert torch.isinf(read_flow(pair / "f.flo")).sum() == 0


FLOW_BAD = {
    "missing frame2": (["a.png", "nope.png", "-o", "f.flo"], "not found"),
    "empty frame1": (["empty.png", "b.png", "-o", "f.flo"], "empty"),
    "non-image": (["text.png", "b.png", "-o", "f.flo"], "not a readable image"),
    "truncated": (["a.png", "cut.png", "-o", "f.flo"], "not a readable image"),
    "sizes differ": (["a.png", "small.png", "-o", "f.flo"], "same size"),
    "frames under 8 px": (["thin.png", "thin.png", "-o", "f.flo"],
                          f"the frames are {W}x5 px (WxH); flow needs at least 8"),
    "output is frame1": (["a.png", "b.png", "-o", "a.png"], "refusing to overwrite an input"),
    "png is frame2": (["a.png", "b.png", "-o", "f.flo", "--png", "b.png"], "refusing to overwrite"),
    "uncertainty is output": (["a.png", "b.png", "-o", "f.flo", "--uncertainty", "f.flo"], "same file"),
    "png is output": (["a.png", "b.png", "-o", "f.png", "--png", "f.png"], "same file"),
    "output is a directory": (["a.png", "b.png", "-o", "folder"], "is a directory"),
    "output in a missing folder": (["a.png", "b.png", "-o", "nofolder/f.flo"], "does not exist"),
    "unsupported output": (["a.png", "b.png", "-o", "f.pfm"], "unsupported extension"),
    "uncertainty as pfm": (["a.png", "b.png", "-o", "f.flo", "--uncertainty", "s.pfm"], "unsupported"),
    "png not png": (["a.png", "b.png", "-o", "f.flo", "--png", "c.jpg"], "unsupported"),
    "negative max motion": (["a.png", "b.png", "-o", "f.flo", "--max-motion", "-1"], "--max-motion must be >= 0"),
    "max motion nan": (["a.png", "b.png", "-o", "f.flo", "--max-motion", "nan"], "--max-motion must be >= 0"),
    "max motion inf": (["a.png", "b.png", "-o", "f.flo", "--max-motion", "inf"], "--max-motion must be >= 0"),
    "max motion, model without a search": (["a.png", "b.png", "-o", "f.flo", "--max-motion", "10"],
                                           "--max-motion: the model 'default' has no setting search_reach"),
    "match exposure, model without it": (["a.png", "b.png", "-o", "f.flo", "--match-exposure"],
                                         "--match-exposure: the model 'default' has no setting match_exposure"),
}


@pytest.mark.parametrize("case", sorted(FLOW_BAD))
def test_flow_bad_input_is_one_line_and_touches_nothing(pair, fakes, capsys, case, monkeypatch):
    argv, match = FLOW_BAD[case]
    monkeypatch.chdir(pair)
    assert match in _fails(cli.flow_main, argv, capsys, pair, "gbp-flow")
    assert fakes[1].calls == []


def test_flow_max_motion_and_match_exposure_set_the_models_config(pair, monkeypatch):
    """--max-motion replaces the model's HandsetFlowConfig.search_reach, --match-exposure its match_exposure (every
    other field kept) before it runs; without them the model's config is used as it is."""
    from gbp_torch.tasks.flow.handset import HandsetFlowConfig

    seen = []

    class Searching(FakeFlow):
        config = HandsetFlowConfig(warps=3)

        def __call__(self, f1, f2):
            seen.append(self.config)
            return super().__call__(f1, f2)

    monkeypatch.setattr(cli.flow, "_flow_model", lambda name, device: Searching())
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "f.flo"), "--max-motion", "120"])
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "f.flo"), "--match-exposure"])
    cli.flow_main([str(pair / "a.png"), str(pair / "b.png"), "-o", str(pair / "f.flo")])
    assert seen == [HandsetFlowConfig(warps=3, search_reach=120.0), HandsetFlowConfig(warps=3, match_exposure=True),
                    HandsetFlowConfig(warps=3)]


def test_flow_resolver_without_any_model_says_so(pair, capsys, monkeypatch):
    monkeypatch.delattr(pretrained, "flow", raising=False)
    monkeypatch.setitem(sys.modules, "gbp_torch.tasks.flow.handset", None)
    monkeypatch.chdir(pair)
    assert "flow model not available" in _fails(cli.flow_main, ["a.png", "b.png", "-o", "f.flo"], capsys, pair,
                                                "gbp-flow")


def test_flow_resolver_unknown_model(pair, capsys, monkeypatch):
    def factory(name="default", device="cpu"):
        raise KeyError(f"no pretrained model {name!r}; available: ['flow_a']")

    monkeypatch.setattr(pretrained, "flow", factory, raising=False)
    monkeypatch.chdir(pair)
    line = _fails(cli.flow_main, ["a.png", "b.png", "-o", "f.flo", "--model", "zzz"], capsys, pair, "gbp-flow")
    assert "unknown --model 'zzz'" in line and "flow_a" in line


# --------------------------------------------------------------------------------- gbp-denoise


class Identity:
    """A denoiser that returns its input, variance 0.01."""

    def __call__(self, x, sigma):
        return SimpleNamespace(mean=x, var=torch.full_like(x, 0.01))


DENOISE_BAD = {
    "missing input": (["nope.png", "-o", "o.png"], "not found"),
    "corrupt input": (["cut.png", "-o", "o.png"], "not a readable image"),
    "empty input": (["empty.png", "-o", "o.png"], "empty"),
    "output is input": (["a.png", "-o", "a.png"], "refusing to overwrite an input"),
    "uncertainty is output": (["a.png", "-o", "o.png", "--uncertainty", "o.png"], "same file"),
    "uncertainty is input": (["a.png", "-o", "o.png", "--uncertainty", "a.png"], "refusing to overwrite"),
    "output is a directory": (["a.png", "-o", "folder"], "is a directory"),
    "output in a missing folder": (["a.png", "-o", "nofolder/o.png"], "does not exist"),
    "output not png": (["a.png", "-o", "o.jpg"], "unsupported extension"),
    "unknown model": (["a.png", "-o", "o.png", "--model", "no_such_model"], "unknown --model 'no_such_model'"),
    "model of another task": (["a.png", "-o", "o.png", "--model", "gbp_flow"], "is a flow model, not a denoise"),
    "uncertainty from a model without one": (["a.png", "-o", "o.png", "--model", "gbp_denoiser_sigma25_nogbp",
                                              "--uncertainty", "u.png"], "gives no uncertainty"),  # once after -o
}


@pytest.mark.parametrize("case", sorted(DENOISE_BAD))
def test_denoise_bad_input_is_one_line_and_touches_nothing(pair, capsys, case, monkeypatch):
    argv, match = DENOISE_BAD[case]
    monkeypatch.chdir(pair)
    line = _fails(cli.denoise_main, [*argv, "--sigma", "25"], capsys, pair, "gbp-denoise")
    assert match in line
    if "model" in case and "uncertainty" not in case:
        assert "gbp_denoiser_gaussian" in line and "gbp_stereo" not in line  # the manifest's denoisers only


@pytest.mark.parametrize("main,prog,argv,other", [
    (cli.stereo_main, "gbp-stereo", ["a.png", "b.png", "-o", "d.pfm"], "gbp_denoiser_gaussian"),
    (cli.flow_main, "gbp-flow", ["a.png", "b.png", "-o", "f.flo"], "gbp_stereo"),
])
def test_a_model_of_another_task_is_refused_before_computing(pair, capsys, monkeypatch, main, prog, argv, other):
    """Once a traceback from the wrong forward signature after loading; now one line naming the task's models."""
    monkeypatch.chdir(pair)
    line = _fails(main, [*argv, "--model", other], capsys, pair, prog)
    task = prog.removeprefix("gbp-")
    assert f"not a {task} model" in line and f"gbp_{task}" in line


def test_denoise_keeps_16_bit_depth(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "denoiser", lambda name, device="cpu": Identity())
    gray = np.random.default_rng(0).integers(0, 65536, (H, W)).astype(np.uint16)
    Image.fromarray(gray).save(tmp_path / "in.png")
    cli.denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--sigma", "5",
                      "--uncertainty", str(tmp_path / "std.png")])
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.dtype == np.uint16 and np.array_equal(out, gray)  # 16 bits in, the same 16 bits out
    assert np.asarray(Image.open(tmp_path / "std.png")).dtype == np.uint16


# ---------------------------------------------------------------------- the real entry point


def test_entry_points_print_one_line_without_traceback(pair):
    """As a user runs them (a fresh interpreter): exit 2, one line, no traceback, the input intact."""
    before = _snapshot(pair)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("GBP_DEBUG", None)
    r = subprocess.run([sys.executable, "-c", "from gbp_torch.cli import stereo_main; stereo_main()",
                        "a.png", "b.png", "-o", "a.png"], cwd=pair, env=env, capture_output=True, text=True,
                       timeout=120)  # one interpreter only: importing torch takes seconds
    lines = [x for x in r.stderr.splitlines() if "Warning" not in x and x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("gbp-stereo: error: -o a.png is the input")
    assert _snapshot(pair) == before


def test_warnings_are_one_line_naming_the_command_and_the_hook_is_restored(capsys):
    """A library warning inside a command (e.g. flow on frames without texture) prints as
    ``PROG: warning: MESSAGE``: no file name, no source line; the process's warning hook is put back."""
    import warnings

    from gbp_torch.cli.common import run

    hook = warnings.showwarning

    def body(argv):
        warnings.warn("pixels the frames do not determine", UserWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        run("gbp-flow", body, [])
    err = capsys.readouterr().err
    assert err == "gbp-flow: warning: pixels the frames do not determine\n", err
    assert warnings.showwarning is hook


def test_stereo_runs_the_handset_model_on_a_crop_of_the_shipped_sample(tmp_path, capsys):
    """End to end with the real resolver, when the hand-set stereo model is installed."""
    pytest.importorskip("gbp_torch.tasks.stereo.handset")
    for side in ("left", "right"):
        img = read_image(samples_dir() / "stereo" / f"tsukuba_{side}.png")
        write_image(tmp_path / f"{side}.png", img[:, 96:192, 128:256])
    cli.stereo_main([str(tmp_path / "left.png"), str(tmp_path / "right.png"), "-o", str(tmp_path / "d.pfm"),
                     "--max-disp", "15", "--model", "handset", "--color", str(tmp_path / "c.png")])
    d = read_disparity(tmp_path / "d.pfm")
    assert d.shape == (96, 128) and float(d.nan_to_num(0).min()) >= -1 and float(d.nan_to_num(0).max()) <= 16
    assert (tmp_path / "c.png").is_file()


def test_flow_runs_the_handset_model_on_a_crop_of_the_shipped_sample(tmp_path):
    """End to end with the real resolver, when the hand-set flow model is installed."""
    pytest.importorskip("gbp_torch.tasks.flow.handset")
    from gbp_torch.io import flow_valid

    for name in ("frame10", "frame11"):
        img = read_image(samples_dir() / "flow" / f"rubberwhale_{name}.png")
        write_image(tmp_path / f"{name}.png", img[:, 96:192, 0:128])
    cli.flow_main([str(tmp_path / "frame10.png"), str(tmp_path / "frame11.png"), "-o", str(tmp_path / "f.flo"),
                   "--model", "handset", "--png", str(tmp_path / "c.png"), "--uncertainty", str(tmp_path / "s.flo")])
    flow, std = read_flow(tmp_path / "f.flo"), read_flow(tmp_path / "s.flo")
    assert flow.shape == std.shape == (2, 96, 128) and flow_valid(flow).all() and (std >= 0).all()
    assert float(flow.abs().max()) < 20 and (tmp_path / "c.png").is_file()


def test_denoise_blind_on_a_one_pixel_image_is_refused_before_computing(tmp_path, capsys, monkeypatch):
    Image.fromarray(np.full((1, 1), 128, np.uint8)).save(tmp_path / "dot.png")
    monkeypatch.chdir(tmp_path)
    line = _fails(cli.denoise_main, ["dot.png", "-o", "o.png", "--blind"], capsys, tmp_path, "gbp-denoise")
    assert "--blind needs an image of at least 2x2 pixels" in line and "give --sigma" in line
