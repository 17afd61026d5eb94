"""Export a flow training checkpoint as a shipped model: calibrate its covariance on synthetic pairs,
write ``checkpoints/<name>.pt`` and its ``checkpoints/MANIFEST`` entry (``"task": "flow"``).

    python -m train.flow.export logs/gbp_flow/runs/<run>/checkpoints/last.ckpt --name gbp_flow \\
        --command "python -m train.train experiment=flow_learned task_name=gbp_flow" [--metrics eval.json]
    python -m train.flow.export --name gbp_flow --recalibrate "why"    # refit a shipped model's calibration
    python -m train.flow.export --name gbp_flow --recalibrate "why" --config irls=3   # ... with a loop setting

The covariance calibration ``var_scale`` and ``boundary_var`` is refit
(:func:`gbp_torch.tasks.flow.calibrate.fit_variance_model`) on ``--pairs`` synthetic pairs of held-out
Train400 textures (the validation split of :class:`~train.flow.datamodule.FlowDataModule`, another seed), half
of them with the large motions of :data:`~gbp_torch.tasks.flow.synthetic.LARGE_MOTION`: never on a benchmark frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
from pathlib import Path

import torch

from gbp_torch.pretrained import CHECKPOINT_DIR, sha256
from gbp_torch.tasks.flow.calibrate import BOUNDARY_WINDOW, fit_variance_model
from gbp_torch.tasks.flow.handset import HandsetFlowConfig
from gbp_torch.tasks.flow.synthetic import LARGE_MOTION

from ..export import (
    _run_config,
    atomic_save,
    best_checkpoint_score,
    load_shipped,
    rewrite_shipped,
    write_manifest_entry,
)
from .datamodule import load_textures, validation_pairs

#: seed of the calibration pairs (the validation pairs use 5000)
CALIBRATION_SEED = 7000


def _build(target: str, kwargs: dict, state: dict):
    module, _, cls = target.rpartition(".")
    net = getattr(importlib.import_module(module), cls)(**kwargs)
    net.load_state_dict(state)
    return net.eval()


def calibration_pairs(n: int, data: dict | None = None, root: str | None = None) -> dict[str, list[tuple]]:
    """``n`` synthetic pairs of the held-out textures, as ``(frame1, frame2, flow, valid)`` with a batch dim, in two
    regimes that the calibration covers each: ``"default motions"`` (``n - n // 2`` pairs) and ``"large motions"``
    (``n // 2`` pairs of :data:`~gbp_torch.tasks.flow.synthetic.LARGE_MOTION`: same seeds and textures, larger
    motions; left out when empty)."""
    textures = load_textures(root)[-int((data or {}).get("val_textures", 40)):]
    regimes = {"default motions": validation_pairs(textures, n - n // 2, CALIBRATION_SEED),
               "large motions": validation_pairs(textures, n // 2, CALIBRATION_SEED, LARGE_MOTION)}
    return {name: [(i["frame1"][None], i["frame2"][None], i["flow"][None], i["valid"][None]) for i in items]
            for name, items in regimes.items() if items}


def calibrate(target: str, kwargs: dict, state: dict, data: dict | None, pairs: int, root: str | None) -> dict:
    """Fit the covariance calibration (``var_scale``, ``boundary_var``) of the net (class ``target``, ``kwargs``,
    weights ``state``) on ``pairs`` synthetic calibration pairs, write it into ``kwargs["config"]`` and return
    the manifest's record of it."""
    config = dict(kwargs.get("config") or {})
    net = _build(target, {**kwargs, "config": {**config, "var_scale": 1.0, "boundary_var": 0.0}}, state)
    fit = fit_variance_model(net, calibration_pairs(pairs, data, root))
    kwargs["config"] = {**config, **fit._asdict()}
    return {**fit._asdict(), "boundary_window": BOUNDARY_WINDOW, "pairs": pairs, "seed": CALIBRATION_SEED,
            "coverage": "0.95 in each regime (since 2026-12-07; before, 0.95 of the pooled pairs)",
            "data": "synthetic pairs of the held-out Train400 textures (train.flow.export), half with the generator's "
                    "default motions, half with LARGE_MOTION (gbp_torch.tasks.flow.synthetic)"}


def export_flow(ckpt: str | Path, name: str, command: str, metrics: dict | None = None,
                directory: Path = CHECKPOINT_DIR, pairs: int = 256, root: str | None = None) -> dict:
    """Write ``<name>.pt`` (calibrated when ``pairs`` > 0) and its manifest entry; return the entry."""
    raw = torch.load(ckpt, map_location="cpu", weights_only=False)
    net_cfg = dict(raw["hyper_parameters"]["net"])
    target = net_cfg.pop("_target_")
    state = {k[4:]: v for k, v in raw["state_dict"].items() if k.startswith("net.")}
    data = raw.get("datamodule_hyper_parameters") or _run_config(Path(ckpt)).get("data") or {}
    calibration = calibrate(target, net_cfg, state, data, pairs, root) if pairs else None
    path = directory / f"{name}.pt"
    atomic_save({"target": target, "kwargs": net_cfg, "state_dict": state}, path)
    best = best_checkpoint_score(raw)
    entry = {
        "task": "flow", "file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "class": target,
        "kwargs": net_cfg, "parameters": sum(v.numel() for v in state.values()),
        "training": {"command": command, "source_checkpoint": str(ckpt), "global_step": raw.get("global_step"),
                     "epoch": raw.get("epoch"), "data": json.loads(json.dumps(data, default=str)),
                     "pairs_seen": (raw.get("global_step") or 0) * int(data.get("batch_size", 0))},
        "metrics": {"best_val_epe_synthetic": best, **(metrics or {})},
    }
    if calibration is not None:
        entry["calibration"] = calibration
    write_manifest_entry(name, entry, directory)
    return entry


def recalibrate(name: str, reason: str, pairs: int = 256, directory: Path = CHECKPOINT_DIR,
                root: str | None = None, config: dict | None = None) -> dict:
    """Refit the covariance calibration of shipped flow model ``name`` with its weights unchanged, as
    :func:`export_flow` does (after a change of the warping loop changed its covariance), and rewrite
    its file; the old hash and ``reason`` are kept in the manifest entry (``reexports``). ``config``: fields of
    its :class:`~gbp_torch.tasks.flow.handset.HandsetFlowConfig` to set first (e.g. ``{"irls": 3}``). Returns the
    entry."""
    fields = {f.name for f in dataclasses.fields(HandsetFlowConfig)} - {"var_scale", "boundary_var"}
    unknown = sorted(set(config or {}) - fields)
    if unknown:
        raise ValueError(f"config: {unknown} are not settable HandsetFlowConfig fields (those are {sorted(fields)})")
    entry, blob = load_shipped(name, directory)
    blob["kwargs"]["config"] = {**(blob["kwargs"].get("config") or {}), **(config or {})}
    entry["calibration"] = calibrate(blob["target"], blob["kwargs"], blob["state_dict"],
                                     entry.get("training", {}).get("data"), pairs, root)
    entry["kwargs"] = blob["kwargs"]
    return rewrite_shipped(name, entry, blob, reason, directory)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m train.flow.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt", nargs="?", help="training checkpoint to export (omit with --recalibrate)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", help="the training command that produced the checkpoint")
    ap.add_argument("--recalibrate", metavar="REASON",
                    help="refit the covariance calibration of the shipped model --name, weights unchanged, for REASON")
    ap.add_argument("--metrics", type=Path, help="JSON file of evaluation metrics to record")
    ap.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE",
                    help="with --recalibrate: HandsetFlowConfig fields of the shipped model to set (values in JSON)")
    ap.add_argument("--pairs", type=int, default=256, help="synthetic calibration pairs (0: no calibration)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.recalibrate:
        if args.ckpt or args.pairs < 1:
            ap.error("--recalibrate rewrites a shipped model: give no checkpoint, and --pairs >= 1")
        config = {}
        for item in args.config:
            key, sep, value = item.partition("=")
            if not sep:
                ap.error(f"--config takes KEY=VALUE, got {item!r}")
            try:
                config[key] = json.loads(value)
            except json.JSONDecodeError:
                ap.error(f"--config {key}: {value!r} is not a JSON value")
        try:
            entry = recalibrate(args.name, args.recalibrate, args.pairs, config=config)
        except ValueError as e:
            ap.error(str(e))
        print(json.dumps(entry["calibration"], indent=2))
        return
    if args.config:
        ap.error("--config goes with --recalibrate")
    if not (args.ckpt and args.command):
        ap.error("exporting needs a checkpoint and --command")
    metrics = json.loads(args.metrics.read_text()) if args.metrics else None
    entry = export_flow(args.ckpt, args.name, args.command, metrics, pairs=args.pairs)
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
