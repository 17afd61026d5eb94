"""The stereo DataModule: synthetic pairs rendered on the fly from Train400 textures (never Middlebury).

Every batch is a dict: ``left``, ``right`` (B, 1, H, W) in [0, 1], ``gt`` (B, 1, H, W) disparity in px,
``nonocc`` (B, 1, H, W) bool, ``max_disp`` (B,) (the same value in a batch) and ``name`` (list).

- fit: item i is rendered with a generator seeded by ``(seed, i)``: a random Train400 texture upscaled
  ``upscale`` times (smoother, weaker texture, like photographs), a random ``crop`` x ``crop`` window,
  random flips, then :func:`gbp_torch.tasks.stereo.synthetic.synthetic_pair` with ``max_disp`` and the
  generator's default ranges (:class:`~gbp_torch.tasks.stereo.synthetic.SyntheticConfig`: 1-4 slanted
  layers, contrast 0.3-1, gain/bias, noise up to 0.02);
- val: a fixed list of ``val_pairs`` whole upscaled textures (seed ``val_seed``, max disparity
  ``val_max_disp``, the generator's default ranges, or with ``val_mild`` the milder tuning ranges of
  ``train.stereo.synth_bench``, on which the hand-set model is already near 1.6 % bad > 1), batch 1.
"""

from __future__ import annotations

from dataclasses import replace

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader, Dataset

from gbp_torch.tasks.stereo.synthetic import SyntheticConfig, synthetic_pair

from ..textures import load_textures, random_crop
from .synth_bench import TUNING, synthetic_set


class SyntheticStereoDataset(Dataset):
    """``length`` synthetic pairs; item i is a pure function of ``(seed, i)``."""

    def __init__(self, textures: list[torch.Tensor], crop: int, max_disp: int, length: int, seed: int = 0,
                 upscale: float = 1.5, config: SyntheticConfig | None = None):
        self.textures, self.crop, self.max_disp, self.length = textures, crop, max_disp, length
        self.seed, self.upscale, self.config = seed, upscale, config or SyntheticConfig()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        tex = random_crop(self.textures, self.crop, g, self.upscale)
        if torch.rand((), generator=g) < 0.5:
            tex = tex.flip(-1)
        if torch.rand((), generator=g) < 0.5:
            tex = tex.flip(-2)
        left, right, gt, nonocc = synthetic_pair(tex.contiguous(), g, self.max_disp, self.config)
        return {"left": left, "right": right, "gt": gt, "nonocc": nonocc, "max_disp": self.max_disp,
                "name": f"train{i}"}


class FixedPairs(Dataset):
    """A list of ``(left, right, gt, nonocc, max_disp)`` tuples (each with a batch dim of 1) as items."""

    def __init__(self, pairs: list[tuple], prefix: str = "val"):
        self.pairs, self.prefix = pairs, prefix

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        left, right, gt, nonocc, max_disp = self.pairs[i]
        return {"left": left[0], "right": right[0], "gt": gt[0], "nonocc": nonocc[0], "max_disp": max_disp,
                "name": f"{self.prefix}{i}"}


class StereoDataModule(L.LightningDataModule):
    """Synthetic stereo pairs for fit (on the fly) and validation (fixed).

    Args:
        root: data root (None: $GBP_DATA_ROOT or ../shared/data).
        crop: training crop size (px); batch_size: pairs per batch; max_disp: training disparity range.
        pairs_per_epoch: training items per epoch (item i is fixed by (seed, i)).
        val_pairs, val_seed, val_max_disp: the fixed validation set (whole 270 x 270 upscaled textures).
        val_mild: validate on the milder tuning ranges instead of the training ranges.
        upscale: texture upscaling before cropping; train_limit: use the first N textures (None: all).
        floor: share of training and validation scenes with a floor (:class:`SyntheticConfig`'s ``floor``;
            0: the pairs of earlier versions).
        tint: colour pairs, each layer tinted by up to this much per channel (:class:`SyntheticConfig`'s ``tint``;
            0: gray pairs), for training and validation.
        supersample: views rendered with s x s samples per pixel (:class:`SyntheticConfig`'s ``supersample``: mixed
            pixels on depth edges; 1: point samples), for training and validation.
        layers, camouflage, thin: :class:`SyntheticConfig`'s (number of foreground layers; share of layers that look
            like the background; share of thin bars), for training and validation (None: its defaults).
    """

    task = "stereo"

    def __init__(self, root: str | None = None, crop: int = 112, batch_size: int = 4, max_disp: int = 32,
                 pairs_per_epoch: int = 8000, val_pairs: int = 8, val_seed: int = 300, val_max_disp: int = 40,
                 upscale: float = 1.5, seed: int = 0, train_limit: int | None = None, num_workers: int = 0,
                 val_mild: bool = False, floor: float = 0.0, tint: float = 0.0,
                 supersample: int = 1, layers: tuple[int, int] | None = None, camouflage: float = 0.0,
                 thin: float = 0.0):
        super().__init__()
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1], got {floor!r}")
        if not 0.0 <= tint <= 1.0:
            raise ValueError(f"tint must be in [0, 1], got {tint!r}")
        self.scene = dict(floor=floor, tint=tint, supersample=supersample, camouflage=camouflage, thin=thin)
        if layers is not None:
            self.scene["layers"] = tuple(layers)
        SyntheticConfig(**self.scene)
        self.root, self.crop, self.batch_size, self.max_disp = root, crop, batch_size, max_disp
        self.pairs_per_epoch, self.val_pairs, self.val_seed, self.val_max_disp = (pairs_per_epoch, val_pairs,
                                                                                 val_seed, val_max_disp)
        self.upscale, self.seed, self.train_limit, self.num_workers = upscale, seed, train_limit, num_workers
        self.val_mild = val_mild
        self.train_ds = self.val_ds = None

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.train_ds is None:
            self.train_ds = SyntheticStereoDataset(load_textures(self.root, self.train_limit), self.crop,
                                                   self.max_disp, self.pairs_per_epoch, self.seed, self.upscale,
                                                   SyntheticConfig(**self.scene))
        if stage in ("fit", "validate", None) and self.val_ds is None:
            ranges = TUNING if self.val_mild else SyntheticConfig()
            self.val_ds = FixedPairs(synthetic_set(self.val_pairs, self.val_seed, self.val_max_disp, self.upscale,
                                                   self.root, replace(ranges, **self.scene)))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_ds, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_ds, batch_size=1, shuffle=False, num_workers=self.num_workers)
