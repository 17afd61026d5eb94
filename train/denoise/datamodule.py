"""The denoising DataModule: Train400 patches for fit, BSD68 / Set12 with fixed noise for val/test.

Every batch is a dict: ``clean`` and ``noisy`` (B, 1, H, W) in [0, 1] (noisy not clipped),
``sigma`` (B,) the noise std on the [0, 1] scale, and for val/test ``set`` and ``name`` (lists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightning.pytorch as L
from torch.utils.data import DataLoader, Dataset

from .datasets import FixedNoiseDataset, NoiseSpec, RandomPatchDataset, load_dataset


class DenoiseDataModule(L.LightningDataModule):
    """Train400 patches for fit; ``val_set`` (whole images, batch 1) for validation;
    each of ``test_sets`` for test (one dataloader per set, in order).

    Args:
        root: data root (None: $GBP_DATA_ROOT or ../shared/data, see gbp_torch.paths).
        noise: a :class:`NoiseSpec` or a mapping of its fields.
        patches_per_epoch: training samples per epoch.
        train_limit / val_limit / test_limit: use only the first N images (None: all).
        seed: seed of the validation/test noise.
        augment: random flips / quarter turns of the training patches.
        fixed_patches: the same training patches and noise every epoch (for overfit checks).
        regular: share of training patches that are regular textures (:mod:`.regular`; 0: natural crops only).
    """

    task = "denoise"

    def __init__(self, root: str | None = None, noise: NoiseSpec | Mapping | None = None, patch_size: int = 48,
                 batch_size: int = 64, patches_per_epoch: int = 12800, num_workers: int = 0,
                 val_set: str = "set12", test_sets: Sequence[str] = ("bsd68", "set12"),
                 train_limit: int | None = None, val_limit: int | None = None, test_limit: int | None = None,
                 seed: int = 0, augment: bool = True, fixed_patches: bool = False, pin_memory: bool = False,
                 regular: float = 0.0):
        super().__init__()
        self.root = root
        self.noise = noise if isinstance(noise, NoiseSpec) else NoiseSpec(**dict(noise or {}))
        self.patch_size, self.batch_size, self.patches_per_epoch = patch_size, batch_size, patches_per_epoch
        self.num_workers, self.pin_memory, self.augment = num_workers, pin_memory, augment
        self.fixed_patches, self.regular = fixed_patches, regular
        self.val_set, self.test_sets = val_set, list(test_sets)
        self.train_limit, self.val_limit, self.test_limit, self.seed = train_limit, val_limit, test_limit, seed
        self.train_ds = self.val_ds = None
        self.test_ds: list[FixedNoiseDataset] = []

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.train_ds is None:
            images = [im for _, im in load_dataset("train400", self.root, self.train_limit)]
            self.train_ds = RandomPatchDataset(images, self.patch_size, self.patches_per_epoch, self.noise,
                                               self.augment, self.fixed_patches, self.regular)
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
