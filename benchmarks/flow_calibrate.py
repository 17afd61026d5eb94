"""Fit the hand-set flow's variance calibration on synthetic pairs (seeds disjoint from the tuning set).

    python benchmarks/flow_calibrate.py [--pairs 24]

Prints the factor to put into ``HandsetFlowConfig.var_scale`` and the coverage it gives on a second,
held-out synthetic set.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_tune import tuning_pairs  # noqa: E402

from gbp_torch.tasks.flow.calibrate import fit_variance_scale  # noqa: E402
from gbp_torch.tasks.flow.handset import HandsetFlow, HandsetFlowConfig  # noqa: E402
from gbp_torch.tasks.flow.metrics import std_coverage  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=24)
    args = ap.parse_args()
    torch.set_num_threads(1)
    raw = HandsetFlow(dataclasses.replace(HandsetFlowConfig(), var_scale=1.0))
    scale = fit_variance_scale(raw, tuning_pairs(args.pairs, seed=5000))
    model = HandsetFlow(dataclasses.replace(HandsetFlowConfig(), var_scale=scale))
    cov = []
    with torch.no_grad():
        for f1, f2, gt, valid in tuning_pairs(args.pairs, seed=9000):
            out = model(f1, f2)
            cov.append(float(std_coverage(out.flow, out.std, gt, valid)[0]))
    print(f"var_scale {scale:.4g}; held-out coverage {sum(cov) / len(cov):.3f} (per pair min {min(cov):.3f})")


if __name__ == "__main__":
    main()
