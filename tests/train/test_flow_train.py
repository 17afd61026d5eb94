"""The flow training house: the real configs compose, one fast_dev_run step trains, resume, export + load."""

import functools
import math

import pytest
import torch
from hydra.utils import instantiate
from train_helpers import compose_experiment

from gbp_torch.tasks.flow import LearnedFlow
from train.flow.datamodule import FlowDataModule
from train.flow.lit_module import FlowLitModule
from train.train import train

#: tiny flow settings: 40 px crops, 2 pairs a batch, one validation pair, a narrow net
TINY_FLOW = [
    "data.crop=40", "data.batch_size=2", "data.val_pairs=1", "data.pairs_per_epoch=4",
    "model.net.factors.width=8", "model.net.factors.context_width=8",
    "trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "trainer.log_every_n_steps=1",
]


_compose = functools.partial(compose_experiment, experiment="flow_learned")


def test_experiment_config_composes_and_builds(tmp_path):
    cfg = _compose(tmp_path)
    assert cfg.task == "flow" and cfg.optimized_metric == "val/epe" and cfg.optimized_mode == "min"
    dm = instantiate(cfg.data)
    model = instantiate(cfg.model, _recursive_=False)
    assert isinstance(dm, FlowDataModule) and isinstance(model, FlowLitModule)
    assert isinstance(model.net, LearnedFlow) and dm.task == model.task == "flow"
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_synthetic_training_pairs_are_seeded():
    from train.flow.datamodule import SyntheticFlowDataset, load_textures

    ds = SyntheticFlowDataset(load_textures()[:3], crop=40, length=5, seed=7)
    a, b = ds[2], ds[2]
    assert torch.equal(a["frame1"], b["frame1"]) and torch.equal(a["flow"], b["flow"])
    assert a["frame1"].shape == (1, 40, 40) and a["flow"].shape == (2, 40, 40) and a["valid"].dtype == torch.bool
    assert not torch.equal(ds[3]["frame1"], a["frame1"])


def test_large_motion_fraction_draws_large_motion_pairs_and_zero_changes_nothing():
    from train.flow.datamodule import FlowDataModule, SyntheticFlowDataset, load_textures

    textures = load_textures()[:3]
    default = SyntheticFlowDataset(textures, crop=64, length=12, seed=7)
    none = SyntheticFlowDataset(textures, crop=64, length=12, seed=7, large_motion=0.0)
    large = SyntheticFlowDataset(textures, crop=64, length=12, seed=7, large_motion=1.0)
    for i in range(12):
        assert torch.equal(default[i]["flow"], none[i]["flow"])  # fraction 0: the same pairs as before the option
    mean_max = [sum(float(ds[i]["flow"].abs().amax()) for i in range(12)) / 12 for ds in (default, large)]
    assert mean_max[1] > 1.5 * mean_max[0]  # translations to 16 px instead of 7 (same crops and seeds)
    with pytest.raises(ValueError, match="large_motion"):
        FlowDataModule(large_motion=1.5)


def test_tint_gives_colour_training_and_validation_pairs_also_with_large_motions():
    from train.flow.datamodule import FlowDataModule

    dm = FlowDataModule(crop=48, pairs_per_epoch=4, val_pairs=2, tint=0.3, large_motion=0.5)
    dm.setup("fit")
    items = [dm.train_ds[i] for i in range(4)] + [dm.val_ds[0]]
    for item in items:
        f = item["frame1"]
        assert f.shape[0] == 3 and float((f[0] - f[1]).abs().max()) > 0.01, item["name"]
    assert dm.train_ds.large.tint == 0.3 and dm.train_ds.large.max_translation > dm.train_ds.config.max_translation
    with pytest.raises(ValueError, match="tint"):
        FlowDataModule(tint=2.0)


def test_defocus_reaches_every_pair_kind():
    """data.defocus: the training pairs (default and large motions) and the validation pairs carry the optical blur
    (smoother frames than the same items without it: smaller mean gradient, same flow); negative is refused."""
    from train.flow.datamodule import FlowDataModule

    sharp, soft = (FlowDataModule(crop=48, pairs_per_epoch=4, val_pairs=2, large_motion=0.5, defocus=d)
                   for d in (0.0, 2.0))
    for dm in (sharp, soft):
        dm.setup("fit")
    assert soft.train_ds.config.defocus == soft.train_ds.large.defocus == 2.0
    def roughness(item):
        return float((item["frame1"][..., 1:] - item["frame1"][..., :-1]).abs().mean())

    pairs = [(sharp.train_ds[i], soft.train_ds[i]) for i in range(4)]
    pairs += [(sharp.val_ds[i], soft.val_ds[i]) for i in (0, 1)]
    assert all(torch.equal(a["flow"], b["flow"]) for a, b in pairs)
    # one sigma per pair, uniform in [0, 2] (one may be tiny, and the noise draws move): smoother on average
    assert sum(roughness(b) for _, b in pairs) < 0.9 * sum(roughness(a) for a, _ in pairs)
    assert sum(roughness(b) for _, b in pairs[4:]) < sum(roughness(a) for a, _ in pairs[4:])  # validation too
    with pytest.raises(ValueError, match="defocus"):
        FlowDataModule(defocus=-1.0)


@pytest.mark.parametrize("gamma", [0.0, 0.8])
def test_fast_dev_run_trains_one_step(tmp_path, gamma):
    cfg = _compose(tmp_path, "debug=fast_dev_run", "logger=none", f"model.sequence_gamma={gamma}", *TINY_FLOW)
    metrics = train(cfg)
    assert metrics["global_step"] == 1 and math.isfinite(metrics["train/loss"])
    assert 0 <= metrics["val/epe"] < 5 and 0 <= metrics["val/coverage95"] <= 1


def test_two_steps_change_the_net_resume_and_export(tmp_path):
    from gbp_torch.pretrained import load
    from train.flow.export import export_flow

    metrics = train(_compose(tmp_path / "a", "logger=none", "trainer.max_steps=2", "trainer.val_check_interval=2",
                             *TINY_FLOW))
    ckpt = metrics["last_ckpt"]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["task"] == "flow" and state["global_step"] == 2
    assert state["state_dict"]["net.factors.body.8.weight"].abs().sum() > 0  # the zero-initialised layer moved
    resumed = train(_compose(tmp_path / "b", "logger=none", "trainer.max_steps=3", f"ckpt_path={ckpt}",
                             "trainer.val_check_interval=2", *TINY_FLOW))
    assert resumed["global_step"] == 3
    entry = export_flow(ckpt, "tiny_flow", "test", directory=tmp_path, pairs=1)
    assert entry["task"] == "flow" and entry["class"] == "gbp_torch.tasks.flow.learned.LearnedFlow"
    assert entry["calibration"]["var_scale"] > 0 and entry["calibration"]["boundary_var"] >= 0
    model = load("tiny_flow", directory=tmp_path)
    assert isinstance(model, LearnedFlow) and not model.training
    assert model.config.var_scale == entry["calibration"]["var_scale"]
    assert model.config.boundary_var == entry["calibration"]["boundary_var"]


def test_recalibrating_a_shipped_model_keeps_its_weights_and_refits_the_calibration(tmp_path):
    """After a change of the warping loop the shipped weights stay and only the covariance calibration is
    refit: the same flow, the refit calibration (the one a fresh fit on the same pairs gives) and the old
    hash kept."""
    import json

    from train_helpers import ship_random_model

    from gbp_torch.pretrained import load, sha256
    from gbp_torch.tasks.flow.calibrate import fit_variance_model
    from train.flow.export import calibration_pairs, recalibrate

    kwargs = {"factors": {"width": 8, "depth": 3, "context_width": 8, "context_depth": 2},
              "config": {"warps": 1, "var_scale": 1e6, "boundary_var": 5.0}}
    net = LearnedFlow(**kwargs)
    old_sha = ship_random_model(tmp_path, "old_flow", "flow", net, kwargs)
    path = tmp_path / "old_flow.pt"
    g = torch.Generator().manual_seed(1)
    entry = recalibrate("old_flow", "test", pairs=1, directory=tmp_path)
    model = load("old_flow", directory=tmp_path)
    f1, f2 = torch.rand(2, 1, 1, 32, 40, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(model(f1, f2).flow, net.eval()(f1, f2).flow, rtol=0, atol=0)
    unit = LearnedFlow(**{**kwargs, "config": {"warps": 1, "var_scale": 1.0, "boundary_var": 0.0}})
    unit.load_state_dict(net.state_dict())
    expected = fit_variance_model(unit.eval(), calibration_pairs(1))
    assert model.config.var_scale == entry["calibration"]["var_scale"] == pytest.approx(expected.var_scale, rel=1e-6)
    assert model.config.boundary_var == entry["calibration"]["boundary_var"] == pytest.approx(expected.boundary_var,
                                                                                              rel=1e-6)
    assert model.config.var_scale != 1e6 and model.config.boundary_var != 5.0
    manifest = json.loads((tmp_path / "MANIFEST").read_text())["old_flow"]
    assert manifest["reexports"] == [{"previous_sha256": old_sha, "reason": "test"}]
    assert manifest["sha256"] == sha256(path) != old_sha


def test_calibration_pairs_are_half_default_half_large_motions():
    """The calibration sees the training range and larger motions, as two regimes: ``n - n // 2`` pairs of the
    generator's default, ``n // 2`` of :data:`LARGE_MOTION` (the same pairs an independent call renders)."""
    from gbp_torch.tasks.flow.synthetic import LARGE_MOTION, SyntheticFlowConfig, synthetic_flow_pair
    from train.flow.datamodule import load_textures
    from train.flow.export import CALIBRATION_SEED, calibration_pairs

    regimes = calibration_pairs(5)
    textures = load_textures(None)[-40:]
    assert list(regimes) == ["default motions", "large motions"]
    assert [len(p) for p in regimes.values()] == [3, 2]
    for pairs, config in zip(regimes.values(), (SyntheticFlowConfig(), LARGE_MOTION)):
        for i, (f1, f2, flow, valid) in enumerate(pairs):
            ref = synthetic_flow_pair(textures[(53 * i + 11) % 40],
                                      torch.Generator().manual_seed(CALIBRATION_SEED + i), config)
            for got, want in ((f1, ref.frame1), (f2, ref.frame2), (flow, ref.flow), (valid, ref.valid)):
                torch.testing.assert_close(got[0], want, rtol=0, atol=0)
    largest = [[float(p[2].abs().amax()) for p in pairs] for pairs in regimes.values()]
    assert min(largest[1]) > max(largest[0][:2])  # same textures and seeds: only the motion ranges differ
    assert list(calibration_pairs(1)) == ["default motions"]  # an empty regime is left out


def test_recalibrating_with_a_loop_setting_stores_it_and_fits_with_it(tmp_path):
    """``recalibrate(..., config={"irls": 1})`` ships the setting in the model's kwargs and fits the calibration
    on flows made with it (the fit a fresh model with that setting gives); unknown or calibration fields are
    refused before anything is written."""
    import json

    from gbp_torch.pretrained import load, sha256
    from gbp_torch.tasks.flow.calibrate import fit_variance_model
    from train.export import atomic_save, write_manifest_entry
    from train.flow.export import calibration_pairs, recalibrate

    kwargs = {"factors": {"width": 8, "depth": 3, "context_width": 8, "context_depth": 2},
              "config": {"warps": 1, "var_scale": 1e6, "boundary_var": 5.0}}
    net = LearnedFlow(**kwargs)
    path = tmp_path / "flow_cfg.pt"
    atomic_save({"target": "gbp_torch.tasks.flow.learned.LearnedFlow", "kwargs": kwargs,
                 "state_dict": net.state_dict()}, path)
    write_manifest_entry("flow_cfg", {"task": "flow", "file": path.name, "sha256": sha256(path),
                                      "class": "gbp_torch.tasks.flow.learned.LearnedFlow", "kwargs": kwargs},
                         tmp_path)
    before = (tmp_path / "MANIFEST").read_text()
    for bad in ({"irlss": 1}, {"var_scale": 2.0}):
        with pytest.raises(ValueError, match="not settable"):
            recalibrate("flow_cfg", "test", pairs=1, directory=tmp_path, config=bad)
    assert (tmp_path / "MANIFEST").read_text() == before
    entry = recalibrate("flow_cfg", "test", pairs=1, directory=tmp_path, config={"irls": 1})
    model = load("flow_cfg", directory=tmp_path)
    assert model.config.irls == 1 and model.config.warps == 1
    assert json.loads((tmp_path / "MANIFEST").read_text())["flow_cfg"]["kwargs"]["config"]["irls"] == 1
    unit = LearnedFlow(**{**kwargs, "config": {"warps": 1, "irls": 1, "var_scale": 1.0, "boundary_var": 0.0}})
    unit.load_state_dict(net.state_dict())
    expected = fit_variance_model(unit.eval(), calibration_pairs(1))
    assert entry["calibration"]["var_scale"] == pytest.approx(expected.var_scale, rel=1e-6)
    assert entry["calibration"]["boundary_var"] == pytest.approx(expected.boundary_var, rel=1e-6)
