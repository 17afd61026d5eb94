"""Export a training checkpoint as a small shipped model and record it in checkpoints/MANIFEST.

    python -m train.export logs/train/runs/<run>/checkpoints/last.ckpt --name gbp_denoiser_sigma25 \
        --command "python -m train.train model=gbp ..." [--metrics results.json]

Writes ``checkpoints/<name>.pt`` (the network's constructor arguments and weights, loadable with
``torch.load(weights_only=True)``) atomically, and adds or replaces the manifest entry: file, sha256,
class, arguments, training command, data, steps, epoch, validation PSNR and any metrics given.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import tempfile
from pathlib import Path

import torch

from gbp_torch.pretrained import CHECKPOINT_DIR, sha256


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename (no half-written file on a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _run_config(ckpt: Path) -> dict:
    """The Hydra config of the run that wrote ``ckpt`` (``<run>/.hydra/config.yaml``), or {}."""
    from omegaconf import OmegaConf

    for parent in ckpt.resolve().parents[:3]:
        cfg = parent / ".hydra" / "config.yaml"
        if cfg.is_file():
            return OmegaConf.to_container(OmegaConf.load(cfg), resolve=False)
    return {}


def best_checkpoint_score(raw: dict) -> float | None:
    """The monitored score of the best checkpoint that a Lightning checkpoint ``raw`` (loaded dict) records, if any."""
    best = None
    for key, cb in raw.get("callbacks", {}).items():
        if key.startswith("ModelCheckpoint") and cb.get("best_model_score") is not None:
            best = float(cb["best_model_score"])
    return best


def export(ckpt: str | Path, name: str, command: str, metrics: dict | None = None,
           directory: Path = CHECKPOINT_DIR, calibrate: int = 0, kwargs: dict | None = None) -> dict:
    """Write ``<name>.pt`` and its manifest entry; return the entry. ``calibrate`` > 0 fits the
    variance scale on that many Train400 images first (stereo: on that many synthetic pairs,
    :func:`train.stereo.calibrate.calibrate_network`). ``kwargs`` replace constructor arguments of the
    trained network (inference settings such as solver steps; recorded in the entry). The entry records
    the checkpoint's task."""
    raw = torch.load(ckpt, map_location="cpu", weights_only=False)
    if raw.get("task") == "flow":  # flow: calibrated on synthetic pairs, train.flow.export
        from .flow.export import export_flow

        return export_flow(ckpt, name, command, metrics, directory, pairs=calibrate)
    net_cfg = dict(raw["hyper_parameters"]["net"])
    target = net_cfg.pop("_target_")
    module_name, _, cls_name = target.rpartition(".")
    accepted = inspect.signature(getattr(importlib.import_module(module_name), cls_name)).parameters
    unknown = sorted(set(kwargs or {}) - set(accepted))
    if unknown:
        raise ValueError(f"--kwarg {unknown}: not arguments of {target} ({sorted(accepted)})")
    net_cfg.update(kwargs or {})
    prefix = "net."
    state = {k[len(prefix):]: v for k, v in raw["state_dict"].items() if k.startswith(prefix)}
    datamodule = raw.get("datamodule_hyper_parameters") or _run_config(Path(ckpt)).get("data")
    task = raw.get("task") or "denoise"
    calibration = None
    if calibrate and task == "stereo":
        from .stereo.calibrate import calibrate_network as calibrate_stereo

        calibration = calibrate_stereo(target, net_cfg, state, calibrate)
        net_cfg.update(var_scale=calibration["var_scale"])
    elif calibrate:
        net_cfg.update(var_scale=1.0, var_slope=0.0)
        from .denoise.calibrate import calibrate_network  # only denoisers predict variances to calibrate

        calibration = calibrate_network(target, net_cfg, state, dict(datamodule or {}), calibrate)
        net_cfg.update(var_scale=calibration["var_scale"], var_slope=calibration["var_slope"])
    path = directory / f"{name}.pt"
    atomic_save({"target": target, "kwargs": net_cfg, "state_dict": state}, path)
    best = best_checkpoint_score(raw)
    best_key = "best_val_psnr_set12" if task == "denoise" else f"best_val_{task}"
    entry = {
        "task": task, "file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "class": target,
        "kwargs": net_cfg, "parameters": sum(v.numel() for v in state.values()),
        "training": {"command": command, "source_checkpoint": str(ckpt), "global_step": raw.get("global_step"),
                     "epoch": raw.get("epoch"), "data": json.loads(json.dumps(datamodule, default=str)),
                     "patches_seen": (raw.get("global_step") or 0) * int((datamodule or {}).get("batch_size", 0)),
                     **({"export_kwargs": kwargs} if kwargs else {})},
        "metrics": {best_key: best, **(metrics or {})},
    }
    if calibration is not None:
        entry["calibration"] = calibration
    write_manifest_entry(name, entry, directory)
    return entry


def write_manifest_entry(name: str, entry: dict, directory: Path = CHECKPOINT_DIR) -> None:
    """Add or replace ``name`` in ``directory/MANIFEST`` (written to a temporary file, then renamed)."""
    manifest_path = directory / "MANIFEST"
    entries = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    entries[name] = entry
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, manifest_path)


def load_shipped(name: str, directory: Path = CHECKPOINT_DIR) -> tuple[dict, dict]:
    """Shipped model ``name``'s manifest entry and file contents (target, kwargs, state_dict), to rewrite with
    :func:`rewrite_shipped`; a ValueError naming the shipped models for an unknown name."""
    entries = json.loads((directory / "MANIFEST").read_text())
    if name not in entries:
        raise ValueError(f"no shipped model {name!r} in {directory / 'MANIFEST'} (there: {sorted(entries)})")
    entry = entries[name]
    return entry, torch.load(directory / entry["file"], map_location="cpu", weights_only=True)


def retarget(name: str, target: str, reason: str, directory: Path = CHECKPOINT_DIR) -> dict:
    """Rewrite shipped model ``name`` so that it names class ``target`` (weights unchanged) and
    record the old hash and ``reason`` in its manifest entry (``reexports``). Returns the entry."""
    entry, blob = load_shipped(name, directory)
    blob["target"] = target
    entry["class"] = target
    return rewrite_shipped(name, entry, blob, reason, directory)


def rewrite_shipped(name: str, entry: dict, blob: dict, reason: str, directory: Path = CHECKPOINT_DIR) -> dict:
    """Save ``blob`` over shipped model ``name``'s file and update its manifest ``entry``: new hash and size,
    the old hash and ``reason`` appended to ``reexports``. Returns the entry."""
    path = directory / entry["file"]
    atomic_save(blob, path)
    entry.setdefault("reexports", []).append({"previous_sha256": entry["sha256"], "reason": reason})
    entry.update(sha256=sha256(path), bytes=path.stat().st_size)
    write_manifest_entry(name, entry, directory)
    return entry


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m train.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", required=True, help="the training command that produced the checkpoint")
    ap.add_argument("--metrics", type=Path, help="JSON file of evaluation metrics to record")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="fit the variance scale on the first N Train400 images (train.denoise.calibrate) or, "
                    "for a stereo checkpoint, on N synthetic pairs (train.stereo.calibrate)")
    ap.add_argument("--kwarg", action="append", default=[], metavar="KEY=VALUE",
                    help="replace a constructor argument of the network (VALUE as JSON, e.g. solve_iters=32)")
    args = ap.parse_args(argv)
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    kwargs = {}
    for item in args.kwarg:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--kwarg wants KEY=VALUE, got {item!r}")
        kwargs[key] = json.loads(value)
    entry = export(args.ckpt, args.name, args.command, metrics, calibrate=args.calibrate, kwargs=kwargs)
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
