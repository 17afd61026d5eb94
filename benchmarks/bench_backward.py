"""Peak memory and time of forward + backward through grid GBP: unroll vs implicit.

256 x 256 grids, B = 4, D = 1, flat GBP (levels = 1), T = 10 / 50 / 200
iterations. Each configuration runs in a fresh subprocess so that its peak
resident memory (``ru_maxrss``) is its own; the table reports the peak minus
the subprocess's baseline after building the inputs.

    python benchmarks/bench_backward.py [--size 256] [--batch 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_one(size: int, batch: int, iters: int, mode: str, threads: int) -> dict:
    import torch

    from gbp_torch.modules import GridGBP

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(batch, size, size, generator=gen).requires_grad_()
    a = torch.full((batch, size, size), 1.0, requires_grad=True)
    wh = torch.full((batch, size, size - 1), 10.0, requires_grad=True)
    wv = torch.full((batch, size - 1, size), 10.0, requires_grad=True)
    layer = GridGBP(iters=iters, backward=mode)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    out = layer(z, a, (wh, wv))
    t1 = time.perf_counter()
    out.mean.square().sum().backward()
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "iters": iters, "forward_s": t1 - t0, "backward_s": t2 - t1,
            "peak_mib": (peak - base) / 1024.0, "grad_finite": bool(torch.isfinite(z.grad).all())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("MODE", "ITERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.size, args.batch, int(args.one[1]), args.one[0], args.threads)))
        return
    rows = []
    for mode in ("unroll", "implicit"):
        for it in args.iters:
            cmd = [sys.executable, __file__, "--size", str(args.size), "--batch", str(args.batch),
                   "--threads", str(args.threads), "--one", mode, str(it)]
            rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"grid GBP forward+backward, {args.batch} x {args.size}x{args.size}, float32, CPU, {args.threads} threads")
    print(f"{'mode':9s} {'iters':>6s} {'peak MiB':>9s} {'fwd s':>7s} {'bwd s':>7s} {'ms/iter (f+b)':>14s}")
    for r in rows:
        per = (r["forward_s"] + r["backward_s"]) / r["iters"] * 1e3
        print(f"{r['mode']:9s} {r['iters']:6d} {r['peak_mib']:9.1f} {r['forward_s']:7.2f} {r['backward_s']:7.2f} "
              f"{per:14.2f}")
    imp = [r["peak_mib"] for r in rows if r["mode"] == "implicit"]
    print(f"implicit peak spread: {100 * (max(imp) - min(imp)) / max(min(imp), 1e-9):.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()
