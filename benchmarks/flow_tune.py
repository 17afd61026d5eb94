"""Tune / check the hand-set flow on synthetic pairs from Train400 (never on benchmark frames).

    python benchmarks/flow_tune.py [--pairs 16] [--seed 1000] [--set key=value ...]

A second ``--seed`` gives held-out pairs to confirm a setting chosen on the first; ``--synthetic``
changes the pairs' generator (:class:`SyntheticFlowConfig` fields, e.g. ``gain=(1.0,1.0) bias=0.0
shading=0.0`` for pairs without photometric change), to check that a setting does not fit one
photometric model only.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from gbp_torch.io.image import read_gray
from gbp_torch.paths import dataset_dir
from gbp_torch.tasks.flow.factors import HandsetFactorConfig, HandsetFactors
from gbp_torch.tasks.flow.handset import HandsetFlow, HandsetFlowConfig
from gbp_torch.tasks.flow.metrics import epe
from gbp_torch.tasks.flow.synthetic import SyntheticFlowConfig, synthetic_flow_pair


def tuning_pairs(n: int, seed: int = 1000, config: SyntheticFlowConfig | None = None):
    """``n`` fixed synthetic pairs (frames (1, 1, H, W), flow (1, 2, H, W), valid (1, H, W))."""
    files = sorted(dataset_dir("denoise/train400").glob("*.png"))
    out = []
    for i in range(n):
        g = torch.Generator().manual_seed(seed + i)
        image = read_gray(files[(37 * i) % len(files)]).float()
        p = synthetic_flow_pair(image.squeeze(0) if image.dim() == 3 else image, g, config or SyntheticFlowConfig())
        out.append((p.frame1[None], p.frame2[None], p.flow[None], p.valid[None]))
    return out


def _parse(sets):
    flow_kw, fac_kw = {}, {}
    flow_fields = {f.name: f for f in dataclasses.fields(HandsetFlowConfig)}
    for s in sets:
        k, v = s.split("=", 1)
        val = eval(v)  # noqa: S307 (a local tuning script)
        (flow_kw if k in flow_fields else fac_kw)[k] = val
    return HandsetFlowConfig(**flow_kw), HandsetFactorConfig(**fac_kw)


def _synthetic(sets) -> SyntheticFlowConfig:
    return SyntheticFlowConfig(**{k: eval(v) for k, v in (s.split("=", 1) for s in sets)})  # noqa: S307


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1000, help="seed of the first pair (each pair: seed + i)")
    ap.add_argument("--set", nargs="*", default=[])
    ap.add_argument("--synthetic", nargs="*", default=[], help="SyntheticFlowConfig overrides, key=value")
    args = ap.parse_args()
    torch.set_num_threads(1)
    flow_cfg, fac_cfg = _parse(args.set)
    model = HandsetFlow(flow_cfg, HandsetFactors(fac_cfg))
    errs, t = [], 0.0
    for f1, f2, gt, valid in tuning_pairs(args.pairs, args.seed, _synthetic(args.synthetic)):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model(f1, f2)
        t += time.perf_counter() - t0
        errs.append(float(epe(out.flow, gt, valid)[0]))
    print(f"EPE mean {sum(errs) / len(errs):.4f}  [{' '.join(f'{e:.2f}' for e in errs)}]  {t / len(errs):.2f} s/pair")


if __name__ == "__main__":
    main()
