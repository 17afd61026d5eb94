"""Fit the variance calibration factor of the hand-set stereo model on synthetic pairs (never Middlebury).

    python -m train.stereo.calibrate [--n 8] [--seed 200]

Prints ``var_scale`` = the 0.95 quantile over non-occluded pixels of ``err^2 / (1.96^2 var)``
(with var from a model with var_scale 1): scaling the variances by it makes 95 % of those pixels
satisfy ``|err| < 1.96 std`` on the calibration pairs. The default of
:class:`gbp_torch.tasks.stereo.HandsetStereo` was set from this output.
"""

from __future__ import annotations

import argparse

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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=200, help="a different seed from the tuning pairs (100)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: no OpenMP spinning on a shared machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    scale = fit_var_scale(HandsetStereo(var_scale=1.0), synthetic_set(args.n, args.seed))
    print(f"var_scale = {scale:.4f}")


if __name__ == "__main__":
    main()
