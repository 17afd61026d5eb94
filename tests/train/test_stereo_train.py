"""The stereo training house: the real configs compose, one fast_dev_run step trains, export + load work."""

import functools
import math

import pytest
import torch
from hydra.utils import instantiate
from train_helpers import compose_experiment

from gbp_torch.tasks.stereo import LearnedStereo
from train.stereo.datamodule import StereoDataModule
from train.stereo.lit_module import StereoLitModule
from train.train import train

#: tiny stereo settings: 48 px crops of 4 textures, 2 pairs a batch, one small validation pair
TINY_STEREO = [
    "data.crop=48", "data.batch_size=2", "data.max_disp=12", "data.train_limit=4", "data.val_pairs=1",
    "data.pairs_per_epoch=4", "model.net.factors.width=8", "model.net.factors.context_width=8",
    "trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "trainer.log_every_n_steps=1",
]


_compose = functools.partial(compose_experiment, experiment="stereo_learned")


def test_experiment_config_composes_and_builds(tmp_path):
    cfg = _compose(tmp_path)
    assert cfg.task == "stereo" and cfg.optimized_metric == "val/bad1" and cfg.optimized_mode == "min"
    dm = instantiate(cfg.data)
    model = instantiate(cfg.model, _recursive_=False)
    assert isinstance(dm, StereoDataModule) and isinstance(model, StereoLitModule)
    assert isinstance(model.net, LearnedStereo) and dm.task == model.task == "stereo"
    assert sum(p.numel() for p in model.parameters()) < 100_000


def test_synthetic_training_pairs_are_seeded():
    from train.stereo.datamodule import SyntheticStereoDataset, load_textures

    ds = SyntheticStereoDataset(load_textures(limit=3), crop=40, max_disp=10, length=5, seed=7)
    a, b = ds[2], ds[2]
    assert torch.equal(a["left"], b["left"]) and torch.equal(a["gt"], b["gt"])
    assert a["left"].shape == (1, 40, 40) and a["nonocc"].dtype == torch.bool
    assert 0 <= float(a["gt"].min()) and float(a["gt"].max()) <= 10
    assert not torch.equal(ds[3]["left"], a["left"])


def test_floor_share_gives_floors_and_zero_changes_nothing():
    """data.floor: 0 renders the pairs of a module without the option; 1 gives every scene a floor (the bottom rows'
    disparity rises row by row)."""
    plain, none, floors = (StereoDataModule(train_limit=3, crop=48, max_disp=12, val_pairs=2, **kw)
                           for kw in ({}, {"floor": 0.0}, {"floor": 1.0}))
    for dm in (plain, none, floors):
        dm.setup("fit")
    for i in range(3):
        assert torch.equal(plain.train_ds[i]["gt"], none.train_ds[i]["gt"])
        assert torch.equal(plain.val_ds[0]["left"], none.val_ds[0]["left"])
    def floor_share(gt):  # bottom-row pixels that rise from the row above by a floor's 0.3-1 px
        step = gt[0, -1] - gt[0, -2]
        return float(((step > 0.29) & (step < 1.01)).float().mean())

    # nearer layers may hide a floor's bottom rows (item 1 here), so the mean over items
    assert sum(floor_share(floors.train_ds[i]["gt"]) for i in range(6)) / 6 > 0.5
    assert max(floor_share(none.train_ds[i]["gt"]) for i in range(6)) < 0.1
    with pytest.raises(ValueError, match="floor"):
        StereoDataModule(floor=1.5)


def test_tint_gives_colour_pairs():
    """data.tint: colour pairs (3 channels that differ) for training and validation; 0 stays gray."""
    gray, colour = (StereoDataModule(train_limit=3, crop=48, max_disp=12, val_pairs=2, tint=t) for t in (0.0, 0.3))
    for dm in (gray, colour):
        dm.setup("fit")
    g, c = gray.train_ds[1], colour.train_ds[1]
    assert g["left"].shape[0] == 1 and c["left"].shape[0] == 3 and colour.val_ds[0]["left"].shape[0] == 3
    assert float((c["left"][0] - c["left"][1]).abs().max()) > 0.01
    assert c["gt"].shape == g["gt"].shape and float(c["gt"].max()) <= 12
    with pytest.raises(ValueError, match="tint"):
        StereoDataModule(tint=-0.1)


def test_supersample_reaches_training_and_validation_pairs():
    """data.supersample: the same scenes (disparities equal, drawn first), views with mixed pixels on depth edges
    (they differ from the point-sampled ones there); an even value is refused."""
    point, area = (StereoDataModule(train_limit=3, crop=48, max_disp=12, val_pairs=1, supersample=s) for s in (1, 3))
    for dm in (point, area):
        dm.setup("fit")
    assert area.train_ds.config.supersample == 3 and point.train_ds.config.supersample == 1
    for a, b in ((point.train_ds[2], area.train_ds[2]), (point.val_ds[0], area.val_ds[0])):
        assert torch.equal(a["gt"], b["gt"]) and not torch.equal(a["left"], b["left"])
    with pytest.raises(ValueError, match="supersample"):
        StereoDataModule(supersample=2)


def test_scene_options_reach_the_generator():
    """data.layers / camouflage / thin: passed to the training and validation scenes (a list from a config file becomes
    the tuple the generator takes); a probability outside [0, 1] is refused."""
    dm = StereoDataModule(train_limit=3, crop=48, max_disp=12, val_pairs=1, layers=[2, 8], camouflage=0.7, thin=0.5)
    dm.setup("fit")
    config = dm.train_ds.config
    assert (config.layers, config.camouflage, config.thin) == ((2, 8), 0.7, 0.5)
    assert StereoDataModule().scene.get("layers") is None  # the generator's default
    with pytest.raises(ValueError, match="thin"):
        StereoDataModule(thin=2.0)


def test_fast_dev_run_trains_one_step(tmp_path):
    cfg = _compose(tmp_path, "debug=fast_dev_run", "logger=none", *TINY_STEREO)
    metrics = train(cfg)
    assert metrics["global_step"] == 1 and math.isfinite(metrics["train/loss"])
    assert 0 <= metrics["val/bad1"] <= 100 and metrics["val/mae"] >= 0


def test_two_steps_change_the_net_and_resume(tmp_path):
    from gbp_torch.pretrained import load
    from train.export import export

    metrics = train(_compose(tmp_path / "a", "logger=none", "trainer.max_steps=2", "trainer.val_check_interval=2",
                             *TINY_STEREO))
    ckpt = metrics["last_ckpt"]
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["task"] == "stereo" and state["global_step"] == 2
    last = state["state_dict"]["net.factors.body.8.weight"]
    assert last.abs().sum() > 0  # the zero-initialised last layer moved
    resumed = train(_compose(tmp_path / "b", "logger=none", "trainer.max_steps=3", f"ckpt_path={ckpt}",
                             "trainer.val_check_interval=2", *TINY_STEREO))
    assert resumed["global_step"] == 3
    # export + load round trip (into a temporary checkpoint folder)
    entry = export(ckpt, "tiny_stereo", "test", directory=tmp_path)
    assert entry["task"] == "stereo" and entry["class"] == "gbp_torch.tasks.stereo.learned.LearnedStereo"
    model = load("tiny_stereo", directory=tmp_path)
    assert isinstance(model, LearnedStereo) and not model.training


def test_features_train_then_carry_into_the_learned_model_and_its_export(tmp_path):
    """experiment=stereo_features trains the features (validated in the hand-set model); a learned model
    started from that run keeps them frozen, and its export loads with the same features."""
    from gbp_torch.pretrained import load
    from train.export import export

    tiny = ["data.crop=48", "data.batch_size=2", "data.max_disp=12", "data.train_limit=4", "data.val_pairs=1",
            "data.pairs_per_epoch=4", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]
    feats = {"channels": 2, "width": 4, "depth": 2}
    run = train(compose_experiment(tmp_path / "f", "logger=none", "trainer.max_steps=2", "trainer.val_check_interval=2",
                                   "model.net.channels=2", "model.net.width=4", "model.net.depth=2", *tiny,
                                   experiment="stereo_features"))
    assert run["global_step"] == 2 and 0 <= run["val/bad1"] <= 100 and run["train/loss"] > 0
    trained = torch.load(run["last_ckpt"], map_location="cpu", weights_only=False)["state_dict"]
    learned = train(_compose(tmp_path / "l", "logger=none", "trainer.max_steps=1", "trainer.val_check_interval=1",
                             "+model.net.features={channels:2,width:4,depth:2}", f"init_weights=[{run['last_ckpt']}]",
                             "init_weights_module=[matching]", *TINY_STEREO))
    state = torch.load(learned["last_ckpt"], map_location="cpu", weights_only=False)["state_dict"]
    for key, value in trained.items():
        if key.startswith("net."):
            assert torch.equal(state["net.matching." + key[len("net."):]], value)  # loaded, then frozen
    export(learned["last_ckpt"], "tiny_features", "test", directory=tmp_path)
    model = load("tiny_features", directory=tmp_path)
    assert model.matching is not None and model.matching.net[0].out_channels == feats["width"]



def test_synth_bench_means_every_measure_over_the_pairs():
    """train.stereo.synth_bench.evaluate_on: each measure the mean of pair_measures over the pairs (a measure a pair
    lacks, NaN, left out), plus bad > 1 on all pixels and the seconds."""
    from gbp_torch.tasks.stereo import HandsetStereo
    from gbp_torch.tasks.stereo.metrics import bad_pixels, pair_measures
    from gbp_torch.tasks.stereo.synthetic import SyntheticConfig, synthetic_pair
    from train.stereo.synth_bench import evaluate_on

    g = torch.Generator().manual_seed(4)
    pairs = []
    for _ in range(2):
        left, right, gt, nonocc = synthetic_pair(torch.rand(48, 72, generator=g), g, 8, SyntheticConfig())
        pairs.append((left[None], right[None], gt[None], nonocc[None], 8))
    model = HandsetStereo()
    got = evaluate_on(model, pairs)
    outs = [model(p[0], p[1], 8) for p in pairs]
    for name in ("bad1", "bad2", "mae", "coverage", "ause"):
        values = [float(pair_measures(o.disparity, p[2], p[3], o.var)[name][0]) for o, p in zip(outs, pairs)]
        assert got[name] == pytest.approx(sum(values) / 2, rel=1e-9)
    everywhere = [float(bad_pixels(o.disparity, p[2], torch.ones_like(p[3]), 1.0)[0]) for o, p in zip(outs, pairs)]
    assert got["bad1_all"] == pytest.approx(sum(everywhere) / 2, rel=1e-9)
    assert got["seconds"] > 0 and all(math.isfinite(v) for v in got.values())


def test_scene_options_of_the_tuning_scripts_build_the_synthetic_config():
    """train.stereo.synth_bench.add_scene_options / scene_config (synth_bench, tune): the command line's scene options
    replace :data:`TUNING`'s fields, and their defaults leave it as it is."""
    import argparse
    import dataclasses

    from train.stereo.synth_bench import EDGES, TUNING, add_scene_options, scene_config

    ap = argparse.ArgumentParser()
    add_scene_options(ap)
    assert scene_config(ap.parse_args([])) == TUNING
    edges = ap.parse_args("--tint 0.3 --layers 2 8 --camouflage 0.7 --thin 0.5 --supersample 3 --floor 0.3".split())
    assert scene_config(edges) == EDGES
    assert EDGES == dataclasses.replace(TUNING, tint=0.3, layers=(2, 8), camouflage=0.7, thin=0.5, supersample=3,
                                        floor=0.3)


def test_recalibrating_a_shipped_stereo_model_refits_its_factor_only(tmp_path):
    """train.stereo.calibrate.recalibrate: the shipped model's var_scale becomes the fit of a var_scale-1 copy on
    EDGES pairs (the fit computed here independently), its disparities stay the same, and the file and manifest record
    the rewrite (new hash, the old one and the reason in ``reexports``)."""
    import json

    from train_helpers import ship_random_model

    from gbp_torch.pretrained import load, sha256
    from train.stereo.calibrate import fit_var_scale, recalibrate
    from train.stereo.synth_bench import EDGES, synthetic_set

    kwargs = {"factors": {"width": 4, "depth": 2, "context_width": 4, "context_depth": 2}, "var_scale": 1e3}
    net = LearnedStereo(**kwargs)
    old_sha = ship_random_model(tmp_path, "old_stereo", "stereo", net, kwargs)
    path = tmp_path / "old_stereo.pt"
    g = torch.Generator().manual_seed(1)
    entry = recalibrate("old_stereo", "test", n=1, directory=tmp_path)
    model = load("old_stereo", directory=tmp_path)
    unit = LearnedStereo(**{**kwargs, "var_scale": 1.0})
    unit.load_state_dict(net.state_dict())
    expected = fit_var_scale(unit.eval(), synthetic_set(1, 200, config=EDGES))
    assert model.var_scale == entry["calibration"]["var_scale"] == pytest.approx(expected, rel=1e-6) != 1e3
    assert "EDGES" in entry["calibration"]["data"]
    left, right = torch.rand(2, 1, 1, 24, 40, generator=g)
    with torch.no_grad():
        expected = net.eval()(left, right, 6).disparity
        torch.testing.assert_close(model(left, right, 6).disparity, expected, rtol=0, atol=0)
    manifest = json.loads((tmp_path / "MANIFEST").read_text())["old_stereo"]
    assert manifest["reexports"] == [{"previous_sha256": old_sha, "reason": "test"}]
    assert manifest["sha256"] == sha256(path) != old_sha and manifest["kwargs"]["var_scale"] == model.var_scale
