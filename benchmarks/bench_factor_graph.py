"""Speed of the batched factor-graph GBP engine against a per-factor Python loop.

Problem: a 2-D surface fit / position graph on an S x S lattice of 2-D
variables: a noisy absolute prior on every variable and a relative
("difference") factor on every 4-neighbour edge. S=224 gives 150,080 factors.

    python benchmarks/bench_factor_graph.py            # table
    python benchmarks/bench_factor_graph.py --json     # machine-readable

Both implementations run in this process. The loop reference is timed on a
subset of factors (it needs ~tens of microseconds each) and reported per
factor-iteration; before timing, both are run on a small lattice and must
give the same means.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from loop_reference import LoopGBP  # noqa: E402

from gbp_torch import DifferenceFactors, FactorGraph, GBPEngine, PriorFactors  # noqa: E402


def lattice_problem(side: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Priors (N, 2) and edges (E, 2) with relative measurements (E, 2) of a side x side lattice."""
    rng = np.random.default_rng(seed)
    n = side * side
    truth = np.cumsum(rng.normal(size=(n, 2)) * 0.1, axis=0)
    ids = np.arange(n).reshape(side, side)
    a = np.concatenate([ids[:, :-1].ravel(), ids[:-1, :].ravel()])
    b = np.concatenate([ids[:, 1:].ravel(), ids[1:, :].ravel()])
    return {
        "prior": truth + rng.normal(size=(n, 2)),
        "a": a, "b": b,
        "z": truth[b] - truth[a] + 0.05 * rng.normal(size=(len(a), 2)),
    }


PRIOR_PRECISION, EDGE_PRECISION = 1.0, 100.0


def build_engine(p: dict[str, np.ndarray], dtype: torch.dtype) -> tuple[GBPEngine, int]:
    g = FactorGraph()
    x = g.add_variables(len(p["prior"]), 2)
    g.add(PriorFactors(x.all(), torch.tensor(p["prior"], dtype=dtype), PRIOR_PRECISION))
    g.add(DifferenceFactors(x[torch.tensor(p["a"])], x[torch.tensor(p["b"])], torch.tensor(p["z"], dtype=dtype),
                            EDGE_PRECISION))
    return GBPEngine(g), len(p["prior"]) + len(p["a"])


def build_loop(p: dict[str, np.ndarray]) -> LoopGBP:
    eye = np.eye(2)
    factors = [(np.array([i]), eye, p["prior"][i], PRIOR_PRECISION * eye) for i in range(len(p["prior"]))]
    between = np.concatenate((-eye, eye), 1)
    factors += [(np.array([a, b]), between, z, EDGE_PRECISION * eye) for a, b, z in zip(p["a"], p["b"], p["z"])]
    return LoopGBP(len(p["prior"]), 2, factors)


def check_agreement(side: int = 12, iters: int = 5) -> float:
    """Max |mean difference| between engine and loop after ``iters`` sync iterations."""
    p = lattice_problem(side)
    engine, _ = build_engine(p, torch.float64)
    res = engine.run(iters)
    loop = build_loop(p)
    for _ in range(iters):
        loop.iterate()
    return float(np.abs(res.means[0].numpy() - loop.means()).max())


def time_engine(side: int, dtype: torch.dtype, iters: int) -> tuple[float, int]:
    engine, num_factors = build_engine(lattice_problem(side), dtype)
    engine.run(2)  # warm-up
    t0 = time.perf_counter()
    engine.run(iters)
    return (time.perf_counter() - t0) / iters, num_factors


def time_loop(side: int, sample: int) -> float:
    """Seconds per factor-iteration of the loop: ``sample`` factor updates timed and
    scaled to all factors, plus one full belief summation."""
    loop = build_loop(lattice_problem(side))
    num_factors = len(loop.factors)
    sample = min(sample, num_factors)
    t0 = time.perf_counter()
    loop.update_factors(range(sample))
    t_update = (time.perf_counter() - t0) * num_factors / sample
    t0 = time.perf_counter()
    loop.sum_beliefs()
    t_sum = time.perf_counter() - t0
    return (t_update + t_sum) / num_factors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=224, help="lattice side (factors ~ 3 side^2)")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--loop-sample", type=int, default=5000, help="factors timed in the loop reference")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    err = check_agreement()
    rows = []
    loop_s = time_loop(args.side, args.loop_sample)
    for dtype in (torch.float32, torch.float64):
        sec, nf = time_engine(args.side, dtype, args.iters)
        per = sec / nf
        rows.append({"impl": f"batched engine ({str(dtype)[6:]})", "factors": nf, "ms_per_iter": sec * 1e3,
                     "us_per_factor_iter": per * 1e6, "speedup_vs_loop": loop_s / per})
    rows.append({"impl": "per-factor numpy loop (float64)", "factors": nf, "ms_per_iter": loop_s * nf * 1e3,
                 "us_per_factor_iter": loop_s * 1e6, "speedup_vs_loop": 1.0})
    meta = {"machine": f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}",
            "torch": torch.__version__, "engine_vs_loop_max_abs_mean_diff": err,
            "targets": "speedup >= 50x and <= 1 us per factor-iteration"}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return
    print(f"2-D lattice position graph, side {args.side}: {nf} factors; {meta['machine']}, torch {meta['torch']}")
    print(f"engine vs loop agreement (12x12, 5 iters, float64): max |mean diff| = {err:.2e}")
    print(f"{'implementation':34s} {'ms/iter':>10s} {'us/factor-iter':>15s} {'speedup':>9s}")
    for r in rows:
        print(f"{r['impl']:34s} {r['ms_per_iter']:10.1f} {r['us_per_factor_iter']:15.3f} {r['speedup_vs_loop']:8.1f}x")
    print(f"targets: {meta['targets']}")


if __name__ == "__main__":
    main()
