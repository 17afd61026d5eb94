"""The public grid solver as a user calls it, against scipy's conjugate gradients.

    python benchmarks/bench_public_solve.py [--size 512] [--threads 2] [--repeat 3] [--device cuda] [--compile]

Problem: an n x n image with uniform data precision 1 and uniform edge weights 100 (smoothness /
data ratio 100), a random right-hand side, float32. For each target relative error (1e-3, 1e-5,
against a float64 sparse direct solve) it finds the smallest ``iters`` for which
``gbp_torch.grid.solve(z, a, (wh, wv), iters=iters, config=MULTIGRID)`` reaches it (``iters=0``:
the full-multigrid start alone) and times that call, set-up, input checks and variances
included, best of ``--repeat``. scipy CG (float64, no preconditioner, ``rtol`` chosen the same
way) is the baseline, timed in the same process. Also reported: the time of one more FCG step
(the difference between ``iters + STEP_SPAN`` and ``iters``, divided by STEP_SPAN: the difference of
two calls one step apart is within this machine's timing noise, and so was that over 8 steps) against
the time of copying the n x n float32 image once (the bandwidth torch reaches copying many separate images of
that size, :func:`image_copy_bandwidth`; the 64 MB copy's is printed beside it), and
against the time to stream, at that bandwidth, the data an FCG step must read and write (:func:`step_traffic_images`):

- *passes*: each pass that the step's data dependences force streams its inputs and outputs once. On
  every level but the coarsest, the way down (pre-smoothing ``e = S r`` fused with the residual and its
  restriction) reads r, the 5 smoother and 3 operator fields and writes e and the coarse residual; the way
  up, after the coarse correction exists, reads e, the correction, r and the 8 fields again and writes e
  (21.5 images of the level's size in all); the dense coarsest solve reads its Cholesky factor twice. At
  the finest level the V-cycle's output z also meets the previous A p (the product of z with it sets the
  next direction), then one pass makes the direction p and q = A p (reads z, the previous p, the 3 operator
  fields and r for the two products, writes p and q) and, after those products, one pass updates x and r
  (reads x, p, r, q, writes x, r). About 44 images at 512 x 512, the V-cycle alone 29 (30.5 MB: issue 17's
  "a V-cycle at 512² touches roughly 30 MB").
- *all fused*: a bound no V-cycle reaches: the 8 operator fields read once for all levels and 9 image-sized
  vector reads / writes (r, z, p twice, q, x twice, r twice): about 20 images.

Targets (issue 17): <= 0.15x CG to 1e-3 and <= 0.1x CG to 1e-5 at 512 x 512; an FCG step
within 2x of its memory-traffic time (the *passes* count). ``--compile`` adds rows for
``MultigridConfig(compile=True)`` (the whole FCG step through ``torch.compile``) after the eager ones, in the same
process, so that both modes are read against the same bandwidth and the same CG timings.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch

from gbp_torch.grid import MULTIGRID, GridConfig, MultigridConfig, solve

RATIO = 100.0
FUSED_BOUND_IMAGES = 8 * 4 / 3 + 9  # image-sized arrays an FCG step reads or writes at least once
STEP_SPAN = 32  # the FCG step's time is the slope over this many extra steps


def laplacian_system(n: int, seed: int = 0):
    """(z float32 (n, n), a, wh, wv torch; A scipy float64; b numpy) of the uniform problem."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, n))
    one = sp.identity(n, format="csr")
    d = sp.diags([-np.ones(n - 1), np.ones(n)], [1, 0], shape=(n - 1, n), format="csr")
    lap = sp.kron(one, d.T @ d) + sp.kron(d.T @ d, one)
    mat = (sp.identity(n * n) + RATIO * lap).tocsc()
    zt = torch.tensor(z, dtype=torch.float32)[None]
    a = torch.ones(1, n, n)
    wh, wv = torch.full((1, n, n - 1), RATIO), torch.full((1, n - 1, n), RATIO)
    return zt, a, wh, wv, mat, z.flatten()


def step_traffic_images(n: int, coarse_size: int = MULTIGRID.multigrid.coarse_size) -> float:
    """Image-sized (n x n) float32 arrays an FCG step of the default multigrid streams, pass by pass (the module
    docstring's *passes* count): the V-cycle's way down and up on every level but the coarsest, the coarsest
    level's Cholesky factor read twice, and the finest level's direction / product and update passes."""
    h = w = n
    images = 0.0
    while h * w > coarse_size:
        images += 21.5 * h * w / n**2  # down: r, 5 + 3 fields, e, coarse residual; up: e, correction, r, 8 fields, e
        h, w = (h + 1) // 2, (w + 1) // 2
    images += 2 * (h * w) ** 2 / n**2  # two triangular solves with the dense factor
    return images + 1 + 8 + 6  # z meets the previous A p; direction and A p; x and r updates


def best_time(fn, repeat: int, device: torch.device | None = None) -> float:
    """Fastest of ``repeat`` calls, seconds (CUDA work waited for)."""
    times = []
    for _ in range(repeat):
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t)
    return min(times)


def copy_bandwidth(device: torch.device) -> float:
    """Bytes read + written per second by ``dst.copy_(src)`` on 64 MB float32 buffers (larger than the caches, so
    the copy runs at memory bandwidth), best of 10 copies. On this virtual machine it measures about 50 or 75-100
    GB/s from one process to the next (steady within a process), and so does :func:`image_copy_bandwidth`; the
    eager FCG step's time does not follow (2026-12-06: 2.2-2.5 ms in processes of either kind)."""
    src = torch.randn(1 << 24, device=device)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / best_time(lambda: dst.copy_(src), 10, device)


def image_copy_bandwidth(n: int, device: torch.device, images: int = 48) -> float:
    """Bytes read + written per second copying ``images`` separate n x n float32 images into as many others (the
    arrays of the solve's size, a working set above this CPU's 32 MB last-level cache for n = 512), best of 5
    rounds: the reference of the step / traffic ratios (arrays of the step's own size)."""
    src = [torch.randn(n, n, device=device) for _ in range(images)]
    dst = [torch.empty_like(s) for s in src]

    def copy_all():
        for s, d in zip(src, dst):
            d.copy_(s)

    copy_all()
    return 2 * images * n * n * 4 / best_time(copy_all, 5, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="device of the torch solve (scipy CG stays on the CPU)")
    ap.add_argument("--compile", action="store_true", help="also MultigridConfig(compile=True), the whole FCG "
                    "step compiled, in the same process after the eager rows (the first solve, which compiles, is "
                    "timed apart and reported)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    z, a, wh, wv, mat, b = laplacian_system(args.size)
    z, a, wh, wv = (t.to(dev) for t in (z, a, wh, wv))
    exact = spl.splu(mat).solve(b)

    def rel_error(x: np.ndarray) -> float:
        return float(np.linalg.norm(x - exact) / np.linalg.norm(exact))

    big_copy = copy_bandwidth(dev)
    bandwidth = image_copy_bandwidth(args.size, dev)
    copy_s = 2 * args.size**2 * 4 / bandwidth
    images = step_traffic_images(args.size)
    traffic_s = images * args.size**2 * 4 / bandwidth
    fused_s = FUSED_BOUND_IMAGES * args.size**2 * 4 / bandwidth
    print(f"{args.size}x{args.size}, smoothness / data {RATIO:g}, float32 on {dev}, {args.threads} threads, best of "
          f"{args.repeat}; torch copy bandwidth {bandwidth / 1e9:.1f} GB/s (read + write) on images of this size "
          f"({big_copy / 1e9:.1f} GB/s on 64 MB buffers), so copying the "
          f"image once takes {copy_s * 1e3:.3f} ms, an FCG step's passes ({images:.1f} images) "
          f"{traffic_s * 1e3:.3f} ms and the all-fused bound ({FUSED_BOUND_IMAGES:.1f} images) {fused_s * 1e3:.3f} ms")
    print(f"{'mode':>8s} {'target':>8s} {'gbp iters':>9s} {'gbp ms':>8s} {'CG iters':>8s} {'CG ms':>8s} {'x CG':>6s} "
          f"{'FCG step ms':>11s} {'step / copy':>11s} {'step / traffic':>14s} {'step / fused':>12s}")
    modes = [("eager", MULTIGRID)]
    if args.compile:
        modes.append(("compiled", GridConfig(levels=None, multigrid=MultigridConfig(compile=True))))
    for mode, config in modes:
        def gbp(iters: int, config=config):
            return solve(z, a, (wh, wv), iters=iters, config=config)

        if mode == "compiled":
            t0 = time.perf_counter()
            gbp(1)
            print(f"compile (first compiled solve): {time.perf_counter() - t0:.1f} s")
        for tol in (1e-3, 1e-5):
            iters = next(k for k in range(0, 50) if rel_error(gbp(k).mean.double().flatten().cpu().numpy()) <= tol)
            t_gbp = best_time(lambda: gbp(iters), args.repeat, dev)
            t_more = best_time(lambda: gbp(iters + STEP_SPAN), args.repeat, dev)
            cg_rtol = next(r for r in np.geomspace(tol, tol * 1e-4, 30)
                           if rel_error(spl.cg(mat, b, rtol=r, maxiter=10_000)[0]) <= tol)
            count = [0]

            def cg():
                count[0] = 0
                spl.cg(mat, b, rtol=cg_rtol, maxiter=10_000, callback=lambda _: count.__setitem__(0, count[0] + 1))

            t_cg = best_time(cg, args.repeat)
            step = max(t_more - t_gbp, 0.0) / STEP_SPAN
            print(f"{mode:>8s} {tol:8.0e} {iters:9d} {t_gbp * 1e3:8.1f} {count[0]:8d} {t_cg * 1e3:8.1f} "
                  f"{t_gbp / t_cg:6.3f} {step * 1e3:11.2f} {step / copy_s:11.1f} {step / traffic_s:14.2f} "
                  f"{step / fused_s:12.1f}")


if __name__ == "__main__":
    main()
