"""The flow DataModule: synthetic pairs rendered on the fly from Train400 textures (never Middlebury, Sintel
or KITTI).

Every batch is a dict: ``frame1``, ``frame2`` (B, 1, H, W) in [0, 1], ``flow`` (B, 2, H, W) in px,
``valid`` (B, H, W) bool (non-occluded, inside frame 2) and ``name`` (list).

- fit: item i is rendered with a generator seeded by ``(seed, i)``: a random training texture (Train400
  images but the last ``val_textures``), a random ``crop`` x ``crop`` window, random flips / transpose,
  then :func:`gbp_torch.tasks.flow.synthetic.synthetic_flow_pair` with translations up to
  ``max_translation`` px (other ranges: :class:`~gbp_torch.tasks.flow.synthetic.SyntheticFlowConfig`);
- val: a fixed list of ``val_pairs`` whole 180 x 180 held-out textures (seed ``val_seed``, the default
  ranges, the ones the hand-set model was tuned on), batch 1.

A pair takes ~0.1 s at 112 px, small beside a training step (~0.4 s), so nothing is cached.
"""

from __future__ import annotations

from dataclasses import replace

import lightning.pytorch as L
import torch
from torch.utils.data import DataLoader, Dataset

from gbp_torch.tasks.flow.synthetic import LARGE_MOTION, SyntheticFlowConfig, synthetic_flow_pair

from ..textures import load_textures, random_crop


def _item(pair, name: str) -> dict:
    return {"frame1": pair.frame1, "frame2": pair.frame2, "flow": pair.flow, "valid": pair.valid, "name": name}


class SyntheticFlowDataset(Dataset):
    """``length`` synthetic pairs; item i is a pure function of ``(seed, i)``."""

    def __init__(self, textures: list[torch.Tensor], crop: int, length: int, seed: int = 0,
                 config: SyntheticFlowConfig | None = None, large_motion: float = 0.0):
        self.textures, self.crop, self.length, self.seed = textures, crop, length, seed
        self.config = config or SyntheticFlowConfig()
        self.large_motion = large_motion
        self.large = replace(LARGE_MOTION, tint=self.config.tint, defocus=self.config.defocus)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        tex = random_crop(self.textures, self.crop, g)
        if torch.rand((), generator=g) < 0.5:
            tex = tex.flip(-1)
        if torch.rand((), generator=g) < 0.5:
            tex = tex.transpose(-1, -2)
        config = self.config
        if self.large_motion > 0 and torch.rand((), generator=g) < self.large_motion:
            config = self.large
        return _item(synthetic_flow_pair(tex.contiguous(), g, config), f"train{i}")


def validation_pairs(textures: list[torch.Tensor], n: int, seed: int,
                     config: SyntheticFlowConfig | None = None) -> list[dict]:
    """``n`` fixed pairs on whole textures (item i: texture ``(53 i + 11) mod len``, generator ``seed + i``)."""
    out = []
    for i in range(n):
        g = torch.Generator().manual_seed(seed + i)
        tex = textures[(53 * i + 11) % len(textures)]
        out.append(_item(synthetic_flow_pair(tex, g, config or SyntheticFlowConfig()), f"val{i}"))
    return out


class _List(Dataset):
    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class FlowDataModule(L.LightningDataModule):
    """Synthetic flow pairs for fit (on the fly) and validation (fixed).

    Args:
        root: data root (None: $GBP_DATA_ROOT or ../shared/data).
        crop: training crop size (px); batch_size: pairs per batch.
        pairs_per_epoch: training items per epoch (item i is fixed by (seed, i)).
        max_translation: training translation range (px per component; validation keeps the default 5).
        large_motion: fraction of the training pairs drawn with :data:`~gbp_torch.tasks.flow.synthetic.LARGE_MOTION`
            (translations to 16 px, rotations to 8 degrees) instead.
        val_pairs, val_seed, val_textures: the fixed validation set, drawn from the last ``val_textures``
            Train400 images (never used for training).
        tint: colour pairs for training and validation, each layer tinted by up to this much per channel
            (:class:`~gbp_torch.tasks.flow.synthetic.SyntheticFlowConfig`'s ``tint``; 0: gray pairs).
        defocus: largest sigma (px) of the optical blur of both frames (``SyntheticFlowConfig.defocus``; 0: none), for
            training and validation.
    """

    task = "flow"

    def __init__(self, root: str | None = None, crop: int = 112, batch_size: int = 2, pairs_per_epoch: int = 4000,
                 max_translation: float = 7.0, val_pairs: int = 10, val_seed: int = 5000, val_textures: int = 40,
                 seed: int = 0, num_workers: int = 0, large_motion: float = 0.0, tint: float = 0.0,
                 defocus: float = 0.0):
        super().__init__()
        if not 0.0 <= large_motion <= 1.0:
            raise ValueError(f"large_motion must be a fraction in [0, 1], got {large_motion!r}")
        if not 0.0 <= tint <= 1.0:
            raise ValueError(f"tint must be in [0, 1], got {tint!r}")
        if defocus < 0:
            raise ValueError(f"defocus must be >= 0, got {defocus!r}")
        self.large_motion, self.tint, self.defocus = large_motion, tint, defocus
        self.root, self.crop, self.batch_size, self.pairs_per_epoch = root, crop, batch_size, pairs_per_epoch
        self.max_translation, self.val_pairs, self.val_seed = max_translation, val_pairs, val_seed
        self.val_textures, self.seed, self.num_workers = val_textures, seed, num_workers
        self.train_ds = self.val_ds = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_ds is not None and self.val_ds is not None:
            return
        textures = load_textures(self.root)
        split = len(textures) - self.val_textures
        if split < 1:
            raise ValueError(f"val_textures={self.val_textures} leaves no training texture of {len(textures)}")
        self.train_ds = SyntheticFlowDataset(textures[:split], self.crop, self.pairs_per_epoch, self.seed,
                                             SyntheticFlowConfig(max_translation=self.max_translation, tint=self.tint,
                                                                 defocus=self.defocus),
                                             self.large_motion)
        self.val_ds = _List(validation_pairs(textures[split:], self.val_pairs, self.val_seed,
                                             SyntheticFlowConfig(tint=self.tint, defocus=self.defocus)))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_ds, batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers,
                          drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_ds, batch_size=1, shuffle=False, num_workers=self.num_workers)
