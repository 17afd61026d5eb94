"""Fit the variance calibration factor of the hand-set stereo model on synthetic pairs (never Middlebury).

    python -m train.stereo.calibrate [--n 8] [--seed 200] [--pretrained gbp_stereo]

Prints ``var_scale`` = the 0.95 quantile over non-occluded pixels of ``err^2 / (1.96^2 var)``
(with var from a model with var_scale 1): scaling the variances by it makes 95 % of those pixels
satisfy ``|err| < 1.96 std`` on the calibration pairs. The default of
:class:`gbp_torch.tasks.stereo.HandsetStereo` was set from this output; ``--pretrained NAME`` fits a
shipped model's (print only), and ``python -m train.export ... --calibrate N`` fits a trained learned
model's before writing it (:func:`calibrate_network`).
"""

from __future__ import annotations

import argparse
import importlib

import torch

from gbp_torch.tasks.stereo.handset import HandsetStereo

from .synth_bench import synthetic_set


def fit_var_scale(model, pairs, target: float = 0.95, z: float = 1.96) -> float:
    """The factor that brings the coverage of ``model``'s variances on ``pairs`` to ``target``."""
    ratios = []
    for left, right, gt, nonocc, max_disp in pairs:
        with torch.no_grad():
            out = model(left, right, max_disp)
        m = nonocc & (gt > 0)
        ratios.append(((out.disparity - gt) ** 2 / (z * z * out.var.clamp_min(1e-12)))[m])
    return float(torch.quantile(torch.cat(ratios).double(), target))


def calibrate_network(target: str, kwargs: dict, state: dict, n: int = 8, seed: int = 200) -> dict:
    """Fit ``var_scale`` of the stereo model ``target(**kwargs)`` with weights ``state`` on ``n``
    synthetic pairs (seed ``seed``); returns ``{"var_scale", "data", "target_coverage"}``."""
    module, _, cls = target.rpartition(".")
    model = getattr(importlib.import_module(module), cls)(**{**kwargs, "var_scale": 1.0})
    model.load_state_dict(state)
    model.eval()
    scale = fit_var_scale(model, synthetic_set(n, seed))
    return {"var_scale": scale, "target_coverage": 0.95,
            "data": f"{n} synthetic pairs of train.stereo.synth_bench.synthetic_set (seed {seed}, max_disp 40)"}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=200, help="a different seed from the tuning pairs (100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on a shared machine)")
    ap.add_argument("--pretrained", default=None, metavar="NAME", help="a shipped model (default: hand-set)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.pretrained:
        from gbp_torch.pretrained import stereo

        model = stereo(args.pretrained)
        model.var_scale = 1.0
    else:
        model = HandsetStereo(var_scale=1.0)
    scale = fit_var_scale(model, synthetic_set(args.n, args.seed))
    print(f"var_scale = {scale:.4f}")


if __name__ == "__main__":
    main()
