"""Fit the hand-set flow's covariance calibration on synthetic pairs (seeds disjoint from the tuning set).

    python benchmarks/flow_calibrate.py [--pairs 256] [--threads 1]

The pairs and the rule are those with which ``train.flow.export`` calibrates the learned model
(:func:`train.flow.export.calibration_pairs`): half of the pairs have the generator's default motions, half the
large ones of :data:`~gbp_torch.tasks.flow.synthetic.LARGE_MOTION`, and each half is covered. Prints
``var_scale`` and ``boundary_var`` for :class:`HandsetFlowConfig` (:mod:`gbp_torch.tasks.flow.calibrate`) and the
coverage they give on a second, held-out synthetic set of each kind (``flow_tune`` pairs of seed 9000), overall and
near motion boundaries (components whose 3x3 flow range exceeds 1 px), beside GBP's covariance with one fitted factor.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_tune import tuning_pairs  # noqa: E402

from gbp_torch.tasks.flow.calibrate import fit_variance_model, motion_range  # noqa: E402
from gbp_torch.tasks.flow.handset import HandsetFlow, HandsetFlowConfig  # noqa: E402
from gbp_torch.tasks.flow.metrics import std_coverage  # noqa: E402
from gbp_torch.tasks.flow.synthetic import LARGE_MOTION  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from train.flow.export import calibration_pairs  # noqa: E402


def held_out_coverage(model, pairs) -> tuple[float, float, float]:
    """(mean coverage per pair, its minimum, coverage near motion boundaries) on ``pairs``."""
    cov, inside, count = [], 0.0, 0
    with torch.no_grad():
        for f1, f2, gt, valid in pairs:
            out = model(f1, f2)
            cov.append(float(std_coverage(out.flow, out.std, gt, valid)[0]))
            edge = (valid[:, None] & (motion_range(out.flow, 3) > 1)).expand_as(gt)
            inside += float(((out.flow - gt).abs() < 1.96 * out.std)[edge].sum())
            count += int(edge.sum())
    return sum(cov) / len(cov), min(cov), inside / max(count, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = HandsetFlow(dataclasses.replace(HandsetFlowConfig(), var_scale=1.0, boundary_var=0.0))
    half = args.pairs // 2
    fit = calibration_pairs(args.pairs)
    held_out = {"default motions": tuning_pairs(args.pairs - half, seed=9000),
                "large motions": tuning_pairs(half, seed=9000, config=LARGE_MOTION)}
    both = fit_variance_model(raw, fit)
    alone = fit_variance_model(raw, fit, window=1)  # a 1x1 window has no spread: GBP's covariance, one factor
    for label, m in (("GBP covariance alone", alone), ("with the boundary term", both)):
        model = HandsetFlow(dataclasses.replace(HandsetFlowConfig(), **m._asdict()))
        print(f"{label}: var_scale {m.var_scale:.4g}, boundary_var {m.boundary_var:.4g}")
        for kind, pairs in held_out.items():
            mean, low, edge = held_out_coverage(model, pairs)
            print(f"  held-out {kind}: coverage {mean:.3f} (per pair min {low:.3f}), near motion boundaries {edge:.3f}")


if __name__ == "__main__":
    main()
