"""Does torch.compile help the grid GBP iteration? Eager vs compiled ``eta_step`` (same process).

    python benchmarks/bench_compile.py [--sizes 256 512 1024] [--threads 2]

Times one flat-GBP eta-message iteration (frozen gains, sync) at each size for
D = 1 and D = 2, float32 CPU, eager and ``torch.compile(dynamic=False)``;
compile time is reported separately.
"""

from __future__ import annotations

import argparse
import time

import torch

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


if __name__ == "__main__":
    main()
