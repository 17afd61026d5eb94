import pytest
import torch

from gbp_torch.tasks.denoise.noise import add_salt_pepper
from train.denoise.datamodule import DenoiseDataModule
from train.denoise.datasets import FixedNoiseDataset, NoiseSpec, augment, load_dataset


def test_train_patches_shapes_and_blind_sigma_range():
    dm = DenoiseDataModule(noise={"kind": "blind", "sigma_min": 5, "sigma_max": 55}, patch_size=40,
                           batch_size=6, patches_per_epoch=12, train_limit=3, val_limit=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["clean"].shape == batch["noisy"].shape == (6, 1, 40, 40)
    assert batch["sigma"].shape == (6,)
    assert bool(((batch["sigma"] >= 5 / 255) & (batch["sigma"] <= 55 / 255)).all())
    assert batch["sigma"].unique().numel() == 6  # one sigma per patch
    assert 0 <= float(batch["clean"].min()) and float(batch["clean"].max()) <= 1
    # noise of the right size: the residual std follows each patch's sigma
    resid = (batch["noisy"] - batch["clean"]).flatten(1).std(1)
    torch.testing.assert_close(resid, batch["sigma"], rtol=0.15, atol=0.0)


def test_val_and_test_noise_is_fixed_per_image():
    images = load_dataset("set12", limit=2)
    a = FixedNoiseDataset(images, NoiseSpec("blind", val_sigma=15), seed=3)
    b = FixedNoiseDataset(images, NoiseSpec("blind", val_sigma=15), seed=3)
    torch.testing.assert_close(a[1]["noisy"], b[1]["noisy"], rtol=0, atol=0)
    assert float(a[1]["sigma"]) == pytest.approx(15 / 255)  # blind is validated at val_sigma
    assert not torch.equal(a[1]["noisy"], FixedNoiseDataset(images, NoiseSpec(), seed=4)[1]["noisy"])
    dm = DenoiseDataModule(test_sets=["set12", "bsd68"], test_limit=1)
    dm.setup("test")
    loaders = dm.test_dataloader()
    first = [next(iter(dl)) for dl in loaders]
    again = [next(iter(dl)) for dl in loaders]
    assert [f["set"][0] for f in first] == ["set12", "bsd68"]
    assert first[1]["noisy"].shape == (1, 1, 481, 321)
    assert all(torch.equal(f["noisy"], g["noisy"]) for f, g in zip(first, again))


def test_salt_pepper_rate_and_augment_is_a_symmetry():
    clean = torch.full((1, 1, 100, 100), 0.5)
    noisy = add_salt_pepper(clean, 0.2, torch.Generator().manual_seed(0))
    hit = noisy != 0.5
    assert abs(float(hit.float().mean()) - 0.2) < 0.02
    assert set(noisy[hit].unique().tolist()) == {0.0, 1.0}
    p = torch.arange(12.0).reshape(1, 3, 4)
    outs = {tuple(augment(p, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(40)}
    assert len(outs) == 8 and all(sorted(o) == list(range(12)) for o in outs)


def test_salt_pepper_rate_range_per_image_and_fixed_for_eval():
    spec = NoiseSpec("saltpepper", rate=0.2, rate_min=0.0, rate_max=0.4)
    clean = torch.full((64, 1, 40, 40), 0.5)
    noisy, _ = spec.apply(clean, torch.Generator().manual_seed(0))
    rates = (noisy != 0.5).float().mean(dim=(1, 2, 3))
    assert rates.min() < 0.1 and rates.max() > 0.3 and rates.max() < 0.45  # U[0, 0.4] per image
    fixed, _ = spec.for_eval().apply(clean, torch.Generator().manual_seed(0))
    rates = (fixed != 0.5).float().mean(dim=(1, 2, 3))
    assert torch.all((rates - 0.2).abs() < 0.04)
    with pytest.raises(ValueError, match="rate"):
        add_salt_pepper(clean[:2], torch.tensor([0.1, 1.5]))


def test_missing_data_root_is_a_clear_error(tmp_path):
    dm = DenoiseDataModule(root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="data.root"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="noise kind"):
        NoiseSpec("poisson")


def test_ssim_is_unaffected_by_bfloat16_autocast():
    from train.metrics import ssim

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 1, 40, 40, generator=g)
    est = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    ref = ssim(est, clean)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = ssim(est, clean)
    torch.testing.assert_close(mixed, ref)
    assert float(ssim(clean, clean).min()) > 0.999 and float(ref.max()) < 0.97
