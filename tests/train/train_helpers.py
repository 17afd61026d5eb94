"""Helpers of tests/train: compose the real conf/ with tiny overrides."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# pytest puts tests/ on sys.path, where tests/train/ would pass for a namespace package `train`:
# make the repository's train/ package win.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if "train" in sys.modules and getattr(sys.modules["train"], "__file__", None) is None:
    del sys.modules["train"]

import lightning.pytorch as L  # noqa: E402

CONF_DIR = REPO / "conf"

#: Overrides that make a real config tiny: a 737-parameter CNN, 8 Train400 images, 1 val image.
TINY = [
    "model.net.depth=3", "model.net.width=8", "data.batch_size=4", "data.patches_per_epoch=8",
    "data.train_limit=8", "data.val_limit=1", "data.test_limit=1", "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1",
    "callbacks.progress_bar=null",
]


def compose_train_cfg(out_dir: Path, *overrides: str):
    """conf/train.yaml composed with TINY, the output folder and ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*TINY, f"paths.output_dir={out_dir}", *overrides])


def compose_experiment(out_dir: Path, *overrides: str, experiment: str):
    """conf/train.yaml with ``experiment=...`` as shipped (no TINY), the output folder and ``overrides``."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train",
                       overrides=[f"experiment={experiment}", f"paths.output_dir={out_dir}", *overrides])


class RecordPrecision(L.Callback):
    """Callback (``+callbacks.record._target_=train_helpers.RecordPrecision``) that records
    the precision each fit ran at in the class-level list ``seen``."""

    seen: list[str] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        RecordPrecision.seen.append(str(trainer.precision))


def ship_random_model(directory: Path, name: str, task: str, net, kwargs: dict) -> str:
    """Write ``net`` (its parameters drawn N(0, 0.05^2), seed 0) as shipped model ``name`` of ``task`` in
    ``directory``, as ``train.export`` would (file and manifest entry); returns the file's sha256."""
    import torch

    from gbp_torch.pretrained import sha256
    from train.export import atomic_save, write_manifest_entry

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
    target = f"{type(net).__module__}.{type(net).__name__}"
    path = directory / f"{name}.pt"
    atomic_save({"target": target, "kwargs": kwargs, "state_dict": net.state_dict()}, path)
    digest = sha256(path)
    write_manifest_entry(name, {"task": task, "file": path.name, "sha256": digest, "class": target, "kwargs": kwargs},
                         directory)
    return digest
