"""Warm starts (init_weights): exact copies, widened input convolutions, clear errors."""

import pytest
import torch

from gbp_torch.tasks.denoise.gbp import GBPDenoiser
from train.export import atomic_save
from train.init_weights import load_init_weights


def _save_lightning_style(net, path):
    atomic_save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "epoch": 3}, path)


def _random_source(seed: int, **kwargs) -> GBPDenoiser:
    """A small GBPDenoiser with every weight drawn from N(0, 0.1^2) (no zero-initialised layer)."""
    torch.manual_seed(seed)
    src = GBPDenoiser(width=8, depth=3, iters=2, **kwargs)
    for p in src.parameters():
        p.data.normal_(0, 0.1)
    return src


def _assert_same_output(dst, src, h=12, w=12):
    x, s = torch.rand(2, 1, h, w), torch.full((2,), 0.1)
    torch.testing.assert_close(dst(x, s).mean, src(x, s).mean)


def test_fine_tune_start_reproduces_the_source_network(tmp_path):
    src = _random_source(0)
    _save_lightning_style(src, tmp_path / "a.ckpt")
    dst = GBPDenoiser(width=8, depth=3, iters=2)
    load_init_weights(dst, tmp_path / "a.ckpt")
    _assert_same_output(dst, src)


def test_widened_input_conv_computes_what_the_source_did(tmp_path):
    """A sigma-map channel added to a sigma-25 network: zeros for the new channel, same output."""
    src = _random_source(1, sigma_input=False)
    atomic_save({"state_dict": src.state_dict()}, tmp_path / "exported.pt")
    dst = GBPDenoiser(width=8, depth=3, iters=2, sigma_input=True)
    load_init_weights(dst, tmp_path / "exported.pt")
    first = dst.factors.body[0].weight
    assert first.shape[1] == 2 and torch.all(first[:, 1] == 0)
    _assert_same_output(dst, src)


def test_added_context_branch_starts_from_the_source_network(tmp_path):
    """A zero-initialised ContextBranch added to a trained net: the rest copied, same output."""
    src = _random_source(2)
    _save_lightning_style(src, tmp_path / "a.ckpt")
    dst = GBPDenoiser(width=8, depth=3, iters=2, context_width=6, context_depth=3)
    load_init_weights(dst, tmp_path / "a.ckpt")
    _assert_same_output(dst, src, 13, 11)  # odd sizes: the branch pads
    assert dst.factors.context.body[0].weight.abs().sum() > 0  # fresh init kept, not zeroed


def test_mismatched_networks_are_refused(tmp_path):
    _save_lightning_style(GBPDenoiser(width=8, depth=3), tmp_path / "a.ckpt")
    with pytest.raises(ValueError, match="needs"):
        load_init_weights(GBPDenoiser(width=6, depth=3), tmp_path / "a.ckpt")
    with pytest.raises(ValueError, match="needs"):
        load_init_weights(GBPDenoiser(width=8, depth=4), tmp_path / "a.ckpt")
    _save_lightning_style(GBPDenoiser(width=8, depth=3, context_width=4, context_depth=2), tmp_path / "b.ckpt")
    with pytest.raises(ValueError, match="unexpected"):
        load_init_weights(GBPDenoiser(width=8, depth=3), tmp_path / "b.ckpt")
    with pytest.raises(FileNotFoundError, match="no file"):
        load_init_weights(GBPDenoiser(width=8, depth=3), tmp_path / "nothing.ckpt")


def test_two_sources_fill_a_model_and_its_submodule(tmp_path):
    """A learned stereo model: its factor net from one file, its matching features (submodule) from another."""
    from gbp_torch.tasks.stereo.features import MatchingFeatures
    from gbp_torch.tasks.stereo.learned import LearnedStereo
    from train.init_weights import load_init_sources

    kw = {"factors": {"width": 4, "depth": 2, "context_width": 0}, "features": {"channels": 2, "width": 4, "depth": 2}}
    torch.manual_seed(0)
    factors_src = LearnedStereo(factors=kw["factors"])
    for p in factors_src.parameters():
        p.data.normal_(0, 0.1)
    features_src = MatchingFeatures(**kw["features"])
    atomic_save({"state_dict": factors_src.state_dict()}, tmp_path / "factors.pt")
    _save_lightning_style(features_src, tmp_path / "features.ckpt")
    torch.manual_seed(1)
    dst = LearnedStereo(**kw)
    load_init_sources(dst, [tmp_path / "factors.pt", tmp_path / "features.ckpt"], [None, "matching"])
    for name, value in factors_src.state_dict().items():
        assert torch.equal(dst.state_dict()[name], value)
    for name, value in features_src.state_dict().items():
        assert torch.equal(dst.matching.state_dict()[name], value)
    with pytest.raises(ValueError, match="names"):
        load_init_sources(dst, [tmp_path / "factors.pt"], [None, "matching"])
    # the features of a whole model (a shipped one) into a fresh model's features, its factor net untouched
    atomic_save({"state_dict": dst.state_dict()}, tmp_path / "whole.pt")
    torch.manual_seed(2)
    fresh = LearnedStereo(**kw)
    factors_before = {k: v.clone() for k, v in fresh.factors.state_dict().items()}
    load_init_sources(fresh, [tmp_path / "whole.pt"], ["matching"])
    for name, value in features_src.state_dict().items():
        assert torch.equal(fresh.matching.state_dict()[name], value)
    for name, value in factors_before.items():
        assert torch.equal(fresh.factors.state_dict()[name], value)
