"""Does torch.compile help the grid GBP iteration? Eager vs compiled, same process.

    python benchmarks/bench_compile.py [--sizes 256 512 1024] [--threads 2]

1. One flat-GBP eta-message iteration (frozen gains, sync) at each size for D = 1 and D = 2,
   float32 CPU, eager and ``torch.compile(dynamic=False)``.
2. The public multigrid solve, ``grid.solve(..., config=MULTIGRID)`` against the same with
   ``MultigridConfig(compile=True)`` (each FCG step compiled whole), on the uniform problem of
   ``bench_public_solve.py``: the time of one FCG step (``iters`` 13 minus ``iters`` 3, over 10),
   set-up included in both calls.

Compile time (the first call at each size) is reported separately.
"""

from __future__ import annotations

import argparse
import time

import torch

from gbp_torch.grid import MULTIGRID, GridConfig, MultigridConfig, solve
from gbp_torch.grid.checks import check_inputs
from gbp_torch.grid.gbp import eta_step, lam_setup, zero_msgs


def best_time(fn, repeat: int = 20) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    compiled = torch.compile(eta_step, dynamic=False)
    print(f"flat grid GBP, one eta iteration, float32, {args.threads} threads, torch {torch.__version__}")
    print(f"{'D':>2s} {'size':>6s} {'eager ms':>9s} {'compiled ms':>12s} {'speedup':>8s} {'compile s':>10s}")
    for d in (1, 2):
        for n in args.sizes:
            z = torch.rand(1, n, n) if d == 1 else torch.rand(1, 2, n, n)
            sys, _, _ = check_inputs(z, 1.0, 100.0)
            gains = lam_setup(sys, 1e-2)
            eta = zero_msgs(sys.wh, sys.wv, d)
            eager = best_time(lambda: eta_step(sys.b, gains, eta, 0.5))
            t0 = time.perf_counter()
            compiled(sys.b, gains, eta, 0.5)
            t_compile = time.perf_counter() - t0
            comp = best_time(lambda: compiled(sys.b, gains, eta, 0.5))
            print(f"{d:2d} {n:6d} {eager * 1e3:9.3f} {comp * 1e3:12.3f} {eager / comp:7.2f}x {t_compile:10.1f}")
    public_solve(args.sizes)


def public_solve(sizes: list[int]) -> None:
    """One FCG step of the public multigrid solve, eager vs MultigridConfig(compile=True)."""
    from bench_public_solve import laplacian_system

    compiled_config = GridConfig(levels=None, multigrid=MultigridConfig(compile=True))
    print("\npublic grid.solve (MULTIGRID, FCG), one FCG step = (iters 13 - iters 3) / 10, float32")
    print(f"{'size':>6s} {'eager ms':>9s} {'compiled ms':>12s} {'speedup':>8s} {'compile s':>10s}")
    for n in sizes:
        z, a, wh, wv, _, _ = laplacian_system(n)

        def step(config):
            run = {it: best_time(lambda: solve(z, a, (wh, wv), iters=it, config=config), 5) for it in (3, 13)}
            return (run[13] - run[3]) / 10

        t0 = time.perf_counter()
        solve(z, a, (wh, wv), iters=3, config=compiled_config)
        t_compile = time.perf_counter() - t0
        eager, comp = step(MULTIGRID), step(compiled_config)
        print(f"{n:6d} {eager * 1e3:9.3f} {comp * 1e3:12.3f} {eager / comp:7.2f}x {t_compile:10.1f}")


if __name__ == "__main__":
    main()
