"""Denoising data: random noisy patches of Train400 for training, BSD68 / Set12 with fixed
per-image noise for validation and testing.

Every batch is a dict: ``clean`` and ``noisy`` (B, 1, H, W) in [0, 1] (noisy not clipped),
``sigma`` (B,) the noise std on the [0, 1] scale, and for val/test ``set`` and ``name`` (lists).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gbp_torch.paths import dataset_dir
from gbp_torch.tasks.denoise.noise import add_gaussian_noise, add_salt_pepper

#: Dataset names -> folders under the data root.
DATASETS = {"train400": "denoise/train400", "bsd68": "denoise/bsd68", "set12": "denoise/set12"}

NOISE_KINDS = ("gaussian", "blind", "saltpepper")


@dataclass
class NoiseSpec:
    """Which noise to add (levels on the 0-255 scale, rates as fractions).

    kind: ``gaussian`` (fixed ``sigma``), ``blind`` (sigma ~ U[sigma_min, sigma_max] per image,
        evaluated at ``val_sigma``) or ``saltpepper`` (a fraction ``rate`` of pixels set to 0 or 1;
        ``sigma`` is then the nominal level handed to models that take one). With ``rate_max``
        set, training images draw their rate from U[rate_min, rate_max] and evaluation uses ``rate``.
    """

    kind: str = "gaussian"
    sigma: float = 25.0
    sigma_min: float = 0.0
    sigma_max: float = 55.0
    val_sigma: float = 25.0
    rate: float = 0.1
    rate_min: float = 0.0
    rate_max: float | None = None

    def __post_init__(self):
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {self.kind!r}")

    def for_eval(self) -> "NoiseSpec":
        """The fixed-level noise used on validation/test images (blind -> Gaussian at val_sigma)."""
        if self.kind == "blind":
            return NoiseSpec("gaussian", sigma=self.val_sigma, val_sigma=self.val_sigma)
        if self.kind == "saltpepper":
            return NoiseSpec("saltpepper", sigma=self.sigma, rate=self.rate)
        return self

    def apply(self, clean: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """clean (B, 1, H, W) in [0, 1] -> noisy (B, 1, H, W), sigma (B,) on the [0, 1] scale."""
        b = clean.shape[0]
        if self.kind == "blind":
            u = torch.rand(b, generator=generator, device=generator.device if generator is not None else None)
            sigma = (self.sigma_min + (self.sigma_max - self.sigma_min) * u).to(clean) / 255.0
            return add_gaussian_noise(clean, sigma, generator), sigma
        sigma = clean.new_full((b,), self.sigma / 255.0)
        if self.kind == "gaussian":
            return add_gaussian_noise(clean, sigma, generator), sigma
        rate = self.rate
        if self.rate_max is not None:
            u = torch.rand(b, generator=generator, device=generator.device if generator is not None else None)
            rate = (self.rate_min + (self.rate_max - self.rate_min) * u).to(clean)
        return add_salt_pepper(clean, rate, generator), sigma


def load_gray_folder(folder: Path, limit: int | None = None) -> list[tuple[str, Tensor]]:
    """The PNGs of ``folder`` sorted by name, as (stem, uint8 (H, W)) pairs (first ``limit`` only)."""
    from torchvision.io import ImageReadMode, decode_image

    paths = sorted(Path(folder).glob("*.png"))[:limit]
    if not paths:
        raise FileNotFoundError(f"no PNG images in {folder}")
    return [(p.stem, decode_image(str(p), mode=ImageReadMode.GRAY)[0]) for p in paths]


def load_dataset(name: str, root: str | os.PathLike | None = None, limit: int | None = None):
    """Images of a named dataset (``train400``, ``bsd68``, ``set12``) under the data root."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    return load_gray_folder(dataset_dir(DATASETS[name], root), limit)


def augment(patch: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """One of the 8 flips/rot90s of patch (..., H, W), picked at random."""
    k = int(torch.randint(8, (1,), generator=generator))
    patch = torch.rot90(patch, k % 4, dims=(-2, -1))
    return patch.flip(-1) if k >= 4 else patch


class RandomPatchDataset(Dataset):
    """``length`` random patch_size^2 crops (random image, flip/rot90, fresh noise on each access).

    Uses the global torch RNG (seeded by ``seed_everything(workers=True)`` per worker), or, with
    ``fixed``, a generator seeded by the sample index (the same patches every epoch: overfit checks).
    """

    def __init__(self, images: Sequence[Tensor], patch_size: int, length: int, noise: NoiseSpec,
                 augment: bool = True, fixed: bool = False):
        small = [tuple(im.shape) for im in images if min(im.shape) < patch_size]
        if small:
            raise ValueError(f"patch_size {patch_size} exceeds image size {small[0]}")
        self.images, self.patch_size, self.length, self.noise = images, patch_size, length, noise
        self.augment, self.fixed = augment, fixed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        gen = torch.Generator().manual_seed(index) if self.fixed else None
        img = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
        p = self.patch_size
        y = int(torch.randint(img.shape[0] - p + 1, (1,), generator=gen))
        x = int(torch.randint(img.shape[1] - p + 1, (1,), generator=gen))
        clean = img[y:y + p, x:x + p].float().div(255.0)[None]
        if self.augment:
            clean = augment(clean, gen).contiguous()
        noisy, sigma = self.noise.apply(clean[None], gen)
        return {"clean": clean, "noisy": noisy[0], "sigma": sigma[0]}


def noisy_image(img: Tensor, noise: NoiseSpec, seed: int, index: int) -> tuple[Tensor, Tensor, Tensor]:
    """uint8 (H, W) -> clean (1, H, W) in [0, 1], noisy (1, H, W), sigma (): image ``index`` always
    gets the noise of seed (seed, index)."""
    clean = img.float().div(255.0)[None]
    gen = torch.Generator().manual_seed(seed * 1_000_003 + index)
    noisy, sigma = noise.apply(clean[None], gen)
    return clean, noisy[0], sigma[0]


class FixedNoiseDataset(Dataset):
    """Whole images with deterministic noise: image i always gets the noise of seed (seed, i)."""

    def __init__(self, images: Sequence[tuple[str, Tensor]], noise: NoiseSpec, seed: int = 0, set_name: str = ""):
        self.images, self.noise, self.seed, self.set_name = images, noise.for_eval(), seed, set_name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        name, img = self.images[index]
        clean, noisy, sigma = noisy_image(img, self.noise, self.seed, index)
        return {"clean": clean, "noisy": noisy, "sigma": sigma, "set": self.set_name, "name": name}


class DenoiseDataModule(L.LightningDataModule):
    """Train400 patches for fit; ``val_set`` (whole images, batch 1) for validation;
    each of ``test_sets`` for test (one dataloader per set, in order).

    Args:
        root: data root (None: $GBP_DATA_ROOT or ../shared/data, see gbp_torch.paths).
        noise: a :class:`NoiseSpec` or a mapping of its fields.
        patches_per_epoch: training samples per epoch.
        train_limit / val_limit / test_limit: use only the first N images (None: all).
        seed: seed of the validation/test noise.
        fixed_patches: the same training patches and noise every epoch (for overfit checks).
    """

    def __init__(self, root: str | None = None, noise: NoiseSpec | Mapping | None = None, patch_size: int = 48,
                 batch_size: int = 64, patches_per_epoch: int = 12800, num_workers: int = 0,
                 val_set: str = "set12", test_sets: Sequence[str] = ("bsd68", "set12"),
                 train_limit: int | None = None, val_limit: int | None = None, test_limit: int | None = None,
                 seed: int = 0, augment: bool = True, fixed_patches: bool = False, pin_memory: bool = False):
        super().__init__()
        self.root = root
        self.noise = noise if isinstance(noise, NoiseSpec) else NoiseSpec(**dict(noise or {}))
        self.patch_size, self.batch_size, self.patches_per_epoch = patch_size, batch_size, patches_per_epoch
        self.num_workers, self.pin_memory, self.augment = num_workers, pin_memory, augment
        self.fixed_patches = fixed_patches
        self.val_set, self.test_sets = val_set, list(test_sets)
        self.train_limit, self.val_limit, self.test_limit, self.seed = train_limit, val_limit, test_limit, seed
        self.train_ds = self.val_ds = None
        self.test_ds: list[FixedNoiseDataset] = []

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.train_ds is None:
            images = [im for _, im in load_dataset("train400", self.root, self.train_limit)]
            self.train_ds = RandomPatchDataset(images, self.patch_size, self.patches_per_epoch, self.noise,
                                               self.augment, self.fixed_patches)
        if stage in ("fit", "validate", None) and self.val_ds is None:
            self.val_ds = FixedNoiseDataset(load_dataset(self.val_set, self.root, self.val_limit), self.noise,
                                            self.seed, self.val_set)
        if stage in ("test", None) and not self.test_ds:
            self.test_ds = [FixedNoiseDataset(load_dataset(s, self.root, self.test_limit), self.noise, self.seed, s)
                            for s in self.test_sets]

    def _loader(self, ds: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, self.batch_size, shuffle=False)  # samples are random already

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_ds, 1, shuffle=False)  # images differ in size

    def test_dataloader(self) -> list[DataLoader]:
        return [self._loader(ds, 1, shuffle=False) for ds in self.test_ds]
