"""Denoising data: which noise (:class:`NoiseSpec`), the named image sets (Train400, BSD68, Set12),
random noisy patches for training and whole images with fixed per-image noise for validation and testing.

Every sample is a dict: ``clean`` and ``noisy`` (1, H, W) in [0, 1] (noisy not clipped),
``sigma`` () the noise std on the [0, 1] scale, and for whole images ``set`` and ``name``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gbp_torch.paths import dataset_dir
from gbp_torch.tasks.denoise.noise import add_gaussian_noise, add_salt_pepper

from .regular import composite, regular_texture

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

    With ``regular`` > 0, that share of the patches is a regular texture rendered from a random image's
    pixels (:func:`~.regular.regular_texture`), half of them inside a region of the natural crop
    (:func:`~.regular.composite`).

    Uses the global torch RNG (seeded by ``seed_everything(workers=True)`` per worker), or, with
    ``fixed``, a generator seeded by the sample index (the same patches every epoch: overfit checks).
    """

    def __init__(self, images: Sequence[Tensor], patch_size: int, length: int, noise: NoiseSpec,
                 augment: bool = True, fixed: bool = False, regular: float = 0.0):
        small = [tuple(im.shape) for im in images if min(im.shape) < patch_size]
        if small:
            raise ValueError(f"patch_size {patch_size} exceeds image size {small[0]}")
        if not 0.0 <= regular <= 1.0:
            raise ValueError(f"regular must be a share in [0, 1], got {regular!r}")
        self.images, self.patch_size, self.length, self.noise = images, patch_size, length, noise
        self.augment, self.fixed, self.regular = augment, fixed, regular

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        gen = torch.Generator().manual_seed(index) if self.fixed else None
        img = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
        p = self.patch_size
        y = int(torch.randint(img.shape[0] - p + 1, (1,), generator=gen))
        x = int(torch.randint(img.shape[1] - p + 1, (1,), generator=gen))
        clean = img[y:y + p, x:x + p].float().div(255.0)[None]
        if self.regular > 0 and float(torch.rand((), generator=gen)) < self.regular:
            source = self.images[int(torch.randint(len(self.images), (1,), generator=gen))]
            texture = regular_texture(source, p, gen)
            clean = composite(texture, clean, gen) if float(torch.rand((), generator=gen)) < 0.5 else texture
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
