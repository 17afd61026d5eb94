"""Fit the variance calibration factor of the hand-set stereo model on synthetic pairs (never Middlebury).

    python -m train.stereo.calibrate [--n 16] [--seed 200] [--pretrained gbp_stereo]
    python -m train.stereo.calibrate --pretrained gbp_stereo --rewrite "why"    # refit a shipped model, write it

Prints ``var_scale`` = the 0.95 quantile over non-occluded pixels of ``err^2 / (1.96^2 var)``
(with var from a model with var_scale 1): scaling the variances by it makes 95 % of those pixels
satisfy ``|err| < 1.96 std`` on the calibration pairs, :data:`train.stereo.synth_bench.EDGES` scenes (depth edges
as hard as real ones': on the easy tuning scenes the errors are far smaller than on real pairs relative to GBP's
variance, and a factor fitted there covers too little of them). The default of
:class:`gbp_torch.tasks.stereo.HandsetStereo` was set from this output; ``--pretrained NAME`` fits a
shipped model's (print only), and ``python -m train.export ... --calibrate N`` fits a trained learned
model's before writing it (:func:`calibrate_network`); ``--rewrite REASON`` refits a shipped model, weights
unchanged, and writes it back with its manifest entry (:func:`recalibrate`).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import torch

from gbp_torch.pretrained import CHECKPOINT_DIR
from gbp_torch.tasks.stereo.handset import HandsetStereo

from .synth_bench import EDGES, synthetic_set


def fit_var_scale(model, pairs, target: float = 0.95, z: float = 1.96) -> float:
    """The factor that brings the coverage of ``model``'s variances on ``pairs`` to ``target``."""
    ratios = []
    for left, right, gt, nonocc, max_disp in pairs:
        with torch.no_grad():
            out = model(left, right, max_disp)
        m = nonocc & (gt > 0)
        ratios.append(((out.disparity - gt) ** 2 / (z * z * out.var.clamp_min(1e-12)))[m])
    return float(torch.quantile(torch.cat(ratios).double(), target))


def calibrate_network(target: str, kwargs: dict, state: dict, n: int = 16, seed: int = 200) -> dict:
    """Fit ``var_scale`` of the stereo model ``target(**kwargs)`` with weights ``state`` on ``n``
    synthetic :data:`~train.stereo.synth_bench.EDGES` pairs (seed ``seed``); returns ``{"var_scale", "data",
    "target_coverage"}``."""
    module, _, cls = target.rpartition(".")
    model = getattr(importlib.import_module(module), cls)(**{**kwargs, "var_scale": 1.0})
    model.load_state_dict(state)
    model.eval()
    scale = fit_var_scale(model, synthetic_set(n, seed, config=EDGES))
    return {"var_scale": scale, "target_coverage": 0.95,
            "data": f"{n} synthetic pairs of train.stereo.synth_bench.synthetic_set (seed {seed}, max_disp 40, "
                    "config EDGES)"}


def recalibrate(name: str, reason: str, n: int = 16, seed: int = 200, directory: Path = CHECKPOINT_DIR) -> dict:
    """Refit ``var_scale`` of shipped stereo model ``name`` (weights unchanged) as :func:`calibrate_network` does at
    export, and rewrite its file and manifest entry (the old hash and ``reason`` kept in ``reexports``). Returns the
    entry."""
    from ..export import load_shipped, rewrite_shipped

    entry, blob = load_shipped(name, directory)
    entry["calibration"] = calibrate_network(blob["target"], blob["kwargs"], blob["state_dict"], n, seed)
    blob["kwargs"]["var_scale"] = entry["calibration"]["var_scale"]
    entry["kwargs"] = blob["kwargs"]
    return rewrite_shipped(name, entry, blob, reason, directory)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--seed", type=int, default=200, help="a different seed from the tuning pairs (100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on a shared machine)")
    ap.add_argument("--pretrained", default=None, metavar="NAME", help="a shipped model (default: hand-set)")
    ap.add_argument("--rewrite", metavar="REASON", help="with --pretrained: write the refitted factor into the shipped "
                    "model's file and manifest entry, for REASON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.rewrite:
        if not args.pretrained:
            ap.error("--rewrite needs --pretrained NAME (the hand-set default is set in the code)")
        try:
            entry = recalibrate(args.pretrained, args.rewrite, args.n, args.seed)
        except ValueError as e:
            ap.error(str(e))
        print(f"var_scale = {entry['calibration']['var_scale']:.4f} (written to {entry['file']})")
        return
    if args.pretrained:
        from gbp_torch.pretrained import stereo

        model = stereo(args.pretrained)
        model.var_scale = 1.0
    else:
        model = HandsetStereo(var_scale=1.0)
    scale = fit_var_scale(model, synthetic_set(args.n, args.seed, config=EDGES))
    print(f"var_scale = {scale:.4f}")


if __name__ == "__main__":
    main()
