"""GBP marginal variances vs exact diag(A^-1) on a 64 x 64 grid, and the probe calibration.

    python benchmarks/variance_grid.py [--size 64]

Uniform data precision 1 and edge weight = ratio. Prints the ratio GBP / exact
(interior, border, corner, overall) and the global scale estimated by
:func:`gbp_torch.grid.calibration.variance_scale` (Hutchinson probing with
multigrid solves) against the exact one.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch

from gbp_torch.grid import solve
from gbp_torch.grid.calibration import variance_scale


def exact_diag_inverse(n: int, ratio: float) -> np.ndarray:
    idx = np.arange(n * n).reshape(n, n)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    w = np.full(i.size, ratio)
    lap = sp.coo_matrix((np.concatenate([-w, -w, w, w]), (np.concatenate([i, j, i, j]),
                                                          np.concatenate([j, i, i, j]))), shape=(n * n,) * 2)
    A = (lap + sp.eye(n * n)).toarray()
    return np.diag(np.linalg.inv(A)).reshape(n, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--probes", type=int, default=16)
    args = ap.parse_args()
    n, m = args.size, args.size // 4
    z = torch.zeros(1, n, n, dtype=torch.float64)
    print(f"{n}x{n}, data precision 1; q = GBP var / exact var")
    print(f"{'ratio':>6s} {'q interior':>10s} {'q border':>9s} {'q corner':>9s} {'q all':>7s} "
          f"{'exact scale':>11s} {'probe scale':>11s} {'probe s':>7s}")
    for ratio in (1.0, 10.0, 100.0):
        res = solve(z, 1.0, ratio, iters=5000, tol=1e-10)
        var = res.var[0].numpy()
        ex = exact_diag_inverse(n, ratio)
        q = var / ex
        t = time.perf_counter()
        s = float(variance_scale(res.var, 1.0, ratio, z, probes=args.probes,
                                 generator=torch.Generator().manual_seed(0)))
        dt = time.perf_counter() - t
        print(f"{ratio:6g} {q[m:-m, m:-m].mean():10.3f} {q[0, m:-m].mean():9.3f} {q[0, 0]:9.3f} "
              f"{var.sum() / ex.sum():7.3f} {ex.sum() / var.sum():11.3f} {s:11.3f} {dt:7.2f}")


if __name__ == "__main__":
    main()
