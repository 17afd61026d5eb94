"""Pretrained models shipped in ``checkpoints/`` (offline; hashes checked on load).

``checkpoints/MANIFEST`` (JSON) lists each model: file, sha256, the class and
its constructor arguments, how it was trained (command, data, steps) and its
metrics. Weight files hold ``{"target", "kwargs", "state_dict"}`` and load with
``torch.load(weights_only=True)``.

    from gbp_torch.pretrained import denoiser
    model = denoiser()                      # the default GBP denoiser, eval mode
    out = model(noisy, sigma)               # noisy (B, 1, H, W) in [0, 1], sigma (B,) -> .mean, .var

    from gbp_torch.pretrained import stereo
    model = stereo()                        # the default stereo model ("handset"; stereo("gbp_stereo"): learned)
    out = model(left, right, max_disp)      # (B, C, H, W) in [0, 1] -> .disparity, .var (B, 1, H, W)
"""

from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import torch
from torch import nn

from .paths import shipped_dir

CHECKPOINT_DIR = shipped_dir("checkpoints")
MANIFEST = CHECKPOINT_DIR / "MANIFEST"
#: The non-local denoiser is the default: higher PSNR than the local ``gbp_denoiser_gaussian`` on every BSD68 /
#: Set12 condition and on colour frames, at about 1.5-2x its time per megapixel; on big images its
#: non-local stage runs tile by tile, so a 24 MP photo stays within the local model's memory.
DEFAULT_DENOISER = "gbp_denoiser_nonlocal"
#: The hand-set stereo model is the default: the learned ``gbp_stereo`` has fewer pixels beyond 1 px on venus only
#: of the four Middlebury scenes (3.38 % against 3.33 % on average; see its MANIFEST metrics).
DEFAULT_STEREO = "handset"
#: The learned flow model is the default: lower EPE than the hand-set one on Middlebury, KITTI and synthetic
#: pairs, higher on Sintel's three pairs (see its MANIFEST metrics).
DEFAULT_FLOW = "gbp_flow"

#: Tile side of the denoisers' networks on the CPU: on small tiles a conv layer's activations stay in the
#: cache (1024 x 1024, the local model: 1.54 s with 256-pixel tiles, 2.81 s whole on 2 threads; 2.87 / 4.78 s
#: on 1); the result is the untiled one (the tiles grow by the network's receptive radius).
CPU_TILE = 256

#: Modules a checkpoint may name as its class (nothing else is imported).
ALLOWED_MODULES = ("gbp_torch.tasks.",)


def manifest(path: Path = MANIFEST) -> dict[str, dict]:
    """Name -> entry of the checkpoint manifest."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint manifest not found: {path} (the repository's checkpoints/ folder)")
    return json.loads(path.read_text())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def task_of(entry: dict) -> str:
    """The task (``"denoise"``, ``"stereo"``, ``"flow"``) of a manifest entry: the package of its class."""
    return entry["class"].removeprefix("gbp_torch.tasks.").partition(".")[0]


def names_of(task: str, entries: dict[str, dict] | None = None) -> list[str]:
    """The sorted names of the manifest's models of ``task`` (``entries``: an already read manifest)."""
    entries = manifest() if entries is None else entries
    return sorted(n for n, e in entries.items() if task_of(e) == task)


def load(name: str, device: str | torch.device = "cpu", directory: Path = CHECKPOINT_DIR,
         task: str | None = None) -> nn.Module:
    """The model ``name`` of the manifest, weights loaded and hash checked, in eval mode. With ``task``, a model
    of another task (a denoiser given to the stereo loader, say) is refused with a ValueError before loading."""
    entries = manifest(directory / "MANIFEST")
    if name not in entries:
        known = sorted(entries) if task is None else names_of(task, entries)
        raise KeyError(f"no pretrained {task + ' ' if task else ''}model {name!r}; available: {known}")
    if task is not None and task_of(entries[name]) != task:
        raise ValueError(f"{name!r} is a {task_of(entries[name])} model, not a {task} model; {task} models: "
                         f"{names_of(task, entries)}")
    entry = entries[name]
    path = directory / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file missing: {path}")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"checkpoint {path} is corrupt or modified: sha256 {digest} != {entry['sha256']} "
                         "in checkpoints/MANIFEST; restore it from the repository (git checkout -- checkpoints)")
    blob = torch.load(path, map_location=device, weights_only=True)
    module_name, _, cls_name = blob["target"].rpartition(".")
    if not module_name.startswith(ALLOWED_MODULES):
        raise ValueError(f"checkpoint names class {blob['target']!r} outside {ALLOWED_MODULES}")
    model = getattr(importlib.import_module(module_name), cls_name)(**blob["kwargs"])
    model.load_state_dict(blob["state_dict"])
    return model.to(device).eval()


def denoiser(name: str = DEFAULT_DENOISER, device: str | torch.device = "cpu") -> nn.Module:
    """A ready pretrained denoiser: ``model(noisy (B, 1, H, W), sigma (B,) or None) -> .mean, .var``; for colour
    images wrap it in :class:`~gbp_torch.tasks.denoise.colour.ColourDenoiser` (what ``gbp-denoise`` does).
    On the CPU its network runs on :data:`CPU_TILE`-pixel tiles (``model.factors.tile`` changes it)."""
    model = load(name, device, task="denoise")
    if torch.device(device).type == "cpu" and getattr(getattr(model, "factors", None), "tile", None) is not None:
        model.factors.tile = CPU_TILE
    return model


def stereo(name: str = DEFAULT_STEREO, device: str | torch.device = "cpu") -> nn.Module:
    """A ready stereo model: ``model(left, right, max_disp) -> StereoOutput`` (``.disparity``, ``.var``,
    ``.occluded`` (B, 1, H, W)); left, right (B, C, H, W) in [0, 1], ``left(x)`` matches ``right(x - d)``.
    ``name``: ``"handset"`` (no weights) or a stereo model of the manifest (``"gbp_stereo"``)."""
    if name == "handset":
        from .tasks.stereo.handset import HandsetStereo

        return HandsetStereo().to(device).eval()
    return load(name, device, task="stereo")


def flow(name: str = DEFAULT_FLOW, device: str | torch.device = "cpu") -> nn.Module:
    """A ready pretrained optical-flow model: ``model(frame1, frame2) -> FlowOutput`` (``.flow`` (B, 2, H, W),
    ``.cov`` (B, 2, 2, H, W) calibrated, ``.occluded`` (B, 1, H, W)); frames (B, C, H, W) in [0, 1],
    ``frame1(x)`` matches ``frame2(x + flow(x))``. ``name``: ``"handset"`` (no weights) or a flow model of the
    manifest (``"gbp_flow"``)."""
    if name == "handset":
        from .tasks.flow.handset import HandsetFlow

        return HandsetFlow().to(device).eval()
    return load(name, device, task="flow")
