"""Grid GBP benchmarks: throughput, time / work to a relative error, scaling.

    python benchmarks/bench_grid.py [--quick] [--json out.json] [--threads N]

(a) throughput of flat GBP (frozen gains, sync) in pixel-iterations/s;
(b) time (set-up included) and fine-iteration-equivalents ("work": flat GBP
    iterations, found to within 10; multigrid: smoothing sweeps weighted by
    level size; CG: iterations = matvecs) to relative error
    1e-3 / 1e-5 against a float64 spsolve reference, smoothness/data ratio 100,
    patterns uniform / edge-aware / 30% missing: flat GBP, multigrid GBP (FCG
    and V-cycle), multigrid with a damped-Jacobi smoother, scipy CG, pyamg;
(c) time to 1e-3 from 256^2 up to 2048^2, flat vs multigrid.
Torch solvers run float32; scipy / pyamg float64 (all in one process).

On a shared machine use ``--threads 1``: when another process holds a core,
two-thread OpenMP regions stall on their barrier and an iteration can take
~100x longer (measured: 0.7 ms -> 140 ms at 512^2).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
import torch.nn.functional as F

from gbp_torch.grid.checks import check_inputs
from gbp_torch.grid.config import GridConfig, MultigridConfig
from gbp_torch.grid.gbp import eta_step, gbp_iterate, lam_setup, zero_msgs
from gbp_torch.grid.multigrid import build_hierarchy, fcg_solve, fmg, vcycle_solve

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "denoise" / "bsd68"
RATIO = 100.0
REPEAT = 5  # timings are the best of this many runs (the CPU may be shared)
FLAT_EVERY = 10  # flat GBP's error is checked every this many iterations


def assemble(a: np.ndarray, wh: np.ndarray, wv: np.ndarray) -> sp.csr_matrix:
    h, w = a.shape
    idx = np.arange(h * w).reshape(h, w)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:].ravel()])
    ww = np.concatenate([wh.ravel(), wv.ravel()])
    lap = sp.coo_matrix((np.concatenate([-ww, -ww, ww, ww]), (np.concatenate([i, j, i, j]),
                                                               np.concatenate([j, i, i, j]))), shape=(h * w,) * 2)
    return (lap + sp.diags(a.ravel())).tocsr()


def image(n: int) -> torch.Tensor:
    """A BSD68 image resized to n x n in [0, 1] (synthetic blocks if the data are missing)."""
    path = DATA / "test001.png"
    try:
        from PIL import Image
        img = torch.as_tensor(np.array(Image.open(path).convert("L")), dtype=torch.float64) / 255.0
    except Exception:  # noqa: BLE001 - any failure -> synthetic image
        g = torch.Generator().manual_seed(0)
        img = (torch.rand(16, 16, generator=g, dtype=torch.float64) > 0.5).double()
    return F.interpolate(img[None, None], size=(n, n), mode="bilinear", align_corners=False)[0, 0]


def problem(n: int, pattern: str, seed: int = 0):
    """(z, a, wh, wv) float64 tensors, batch 1, for a pattern."""
    g = torch.Generator().manual_seed(seed)
    img = image(n)
    z = (img + 0.1 * torch.randn(n, n, generator=g, dtype=torch.float64))[None]
    a = torch.ones(1, n, n, dtype=torch.float64)
    wh = torch.full((1, n, n - 1), RATIO, dtype=torch.float64)
    wv = torch.full((1, n - 1, n), RATIO, dtype=torch.float64)
    if pattern == "edge-aware":
        gh, gv = (img[:, 1:] - img[:, :-1]).abs(), (img[1:] - img[:-1]).abs()
        s = 0.5 * float(torch.cat([gh.flatten(), gv.flatten()]).quantile(0.9))
        wh = RATIO * (0.01 + 0.99 * torch.exp(-(gh / s) ** 2))[None]  # 1 .. 100
        wv = RATIO * (0.01 + 0.99 * torch.exp(-(gv / s) ** 2))[None]
    elif pattern == "missing":
        a = (torch.rand(1, n, n, generator=g, dtype=torch.float64) >= 0.3).double()
    return z, a, wh, wv


def best_time(fn, repeat: int | None = None) -> float:
    repeat = repeat or REPEAT
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def throughput(sizes, iters: int = 30) -> list[dict]:
    rows = []
    for d in (1, 2):
        for n in sizes:
            z = torch.randn((1, n, n) if d == 1 else (1, 2, n, n))
            sys, _, _ = check_inputs(z, 1.0, RATIO)
            gains = lam_setup(sys, 1e-2)
            eta = zero_msgs(sys.wh, sys.wv, d)

            def run(eta=eta):
                for _ in range(iters):
                    eta = eta_step(sys.b, gains, eta)

            run()
            dt = best_time(run) / iters
            rows.append(dict(D=d, size=n, ms_per_iter=dt * 1e3, mpix_it_s=n * n / dt / 1e6))
    return rows


class Tracker:
    """Records the first iteration at which the relative error reaches each tolerance."""

    def __init__(self, ref: np.ndarray, tols, stop: float):
        self.ref, self.tols, self.stop = ref, tols, stop
        self.nref = np.linalg.norm(ref)
        self.hit: dict[float, int] = {}

    def __call__(self, it, x) -> bool:
        x = np.asarray(x, dtype=np.float64).reshape(self.ref.shape)
        e = np.linalg.norm(x - self.ref) / self.nref
        for t in self.tols:
            if t not in self.hit and e <= t:
                self.hit[t] = it
        return e <= self.stop


def torch_runner(kind: str, sys, smoother="gbp", cycle=(1, 1)):
    """Returns run(iters, callback) -> work for a torch solver kind."""

    def run(iters, callback=None):
        if kind == "flat":
            gains = lam_setup(sys, 1e-7, init="zero")
            _, _, it, _ = gbp_iterate(sys, gains, iters, callback=callback, check_every=FLAT_EVERY)
            return float(it)
        gains = lam_setup(sys, 1e-2) if smoother == "gbp" else None  # Jacobi needs no lam set-up
        config = GridConfig(levels=None, multigrid=MultigridConfig(smoother=smoother, cycle=cycle))
        hier = build_hierarchy(sys, config, fine_gains=gains)
        x = fmg(hier)
        if callback is not None and callback(0, x):
            return hier.work
        solver = fcg_solve if kind == "fcg" else vcycle_solve
        solver(sys, hier, x, iters, None, callback=callback)
        return hier.work

    return run


def convergence(n: int, tols=(1e-3, 1e-5), patterns=("uniform", "edge-aware", "missing"),
                flat_max: int = 20000) -> list[dict]:
    import pyamg
    rows = []
    for pattern in patterns:
        z, a, wh, wv = problem(n, pattern)
        A = assemble(a[0].numpy(), wh[0].numpy(), wv[0].numpy())
        b = (a * z)[0].numpy().ravel()
        t = time.perf_counter()
        ref = spl.spsolve(A.tocsc(), b)
        t_direct = time.perf_counter() - t
        rows.append(dict(pattern=pattern, method="spsolve (float64, reference)", tol=0.0, iters=1, work=None,
                         time_s=t_direct))
        sys, _, _ = check_inputs(z.float(), a.float(), (wh.float(), wv.float()))
        variants = [("flat GBP", "flat", "gbp", (1, 1), flat_max), ("MG-GBP FCG", "fcg", "gbp", (1, 1), 100),
                    ("MG-GBP V(1,1)", "vcycle", "gbp", (1, 1), 100),
                    ("MG-Jacobi FCG V(2,2)", "fcg", "jacobi", (2, 2), 100)]
        for name, kind, smoother, cycle, cap in variants:
            run = torch_runner(kind, sys, smoother, cycle)
            tr = Tracker(ref, tols, min(tols))
            run(cap, lambda it, x: tr(it, x.detach().cpu().numpy()))
            for tol in tols:
                if tol not in tr.hit:
                    rows.append(dict(pattern=pattern, method=name, tol=tol, iters=None, work=None, time_s=None))
                    continue
                k = tr.hit[tol]
                work = run(k)
                tt = best_time(lambda: run(k), 2 if kind == "flat" else None)
                rows.append(dict(pattern=pattern, method=name, tol=tol, iters=k, work=work, time_s=tt))
        for tol in tols:  # scipy CG (plain), float64
            tr = Tracker(ref, [tol], tol)
            cnt = [0]

            def cb(xk, tr=tr, cnt=cnt):
                cnt[0] += 1
                tr(cnt[0], xk)

            spl.cg(A, b, rtol=1e-14, maxiter=5000, callback=cb)
            k = tr.hit.get(tol)
            tt = best_time(lambda: spl.cg(A, b, rtol=1e-30, maxiter=k)) if k else None
            rows.append(dict(pattern=pattern, method="scipy CG", tol=tol, iters=k, work=k, time_s=tt))
        for tol in tols:  # pyamg Ruge-Stuben, set-up + solve
            ml = pyamg.ruge_stuben_solver(A)
            tr = Tracker(ref, [tol], tol)
            res: list = []
            x = ml.solve(b, tol=1e-14, maxiter=100, residuals=res)
            cnt = [0]

            def cb2(xk, tr=tr, cnt=cnt):
                cnt[0] += 1
                tr(cnt[0], xk)

            ml.solve(b, tol=1e-14, maxiter=100, callback=cb2)
            k = tr.hit.get(tol)

            def full(k=k):
                m = pyamg.ruge_stuben_solver(A)
                m.solve(b, tol=1e-30, maxiter=k)

            tt = best_time(full) if k else None
            rows.append(dict(pattern=pattern, method="pyamg RS (setup+solve)", tol=tol, iters=k, work=None,
                             time_s=tt))
            del x
    for r in rows:
        cg = [c for c in rows if c["pattern"] == r["pattern"] and c["method"] == "scipy CG" and c["tol"] == r["tol"]]
        if cg and cg[0]["time_s"] and r["time_s"] and r["tol"]:
            r["x_cg"] = r["time_s"] / cg[0]["time_s"]
    return rows


def scaling(sizes, tol: float = 1e-3) -> list[dict]:
    rows = []
    for n in sizes:
        z, a, wh, wv = problem(n, "uniform")
        s64, _, _ = check_inputs(z, a, (wh, wv))
        h64 = build_hierarchy(s64)
        ref, _, _, _ = fcg_solve(s64, h64, fmg(h64), 50, 1e-9)
        ref = ref.numpy()
        sys, _, _ = check_inputs(z.float(), a.float(), (wh.float(), wv.float()))
        for name, kind, cap in (("flat GBP", "flat", 20000), ("MG-GBP FCG", "fcg", 100)):
            run = torch_runner(kind, sys)
            tr = Tracker(ref, [tol], tol)
            run(cap, lambda it, x: tr(it, x.detach().cpu().numpy()))
            k = tr.hit.get(tol)
            tt = best_time(lambda: run(k), 1 if kind == "flat" else 2) if k is not None else None
            rows.append(dict(size=n, method=name, iters=k, time_s=tt))
    return rows


def table(rows: list[dict], cols: list[str]) -> str:
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    data = [[fmt(r.get(c)) for c in cols] for r in rows]
    wid = [max(len(c), *(len(d[i]) for d in data)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, wid)), "  ".join("-" * w for w in wid)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(d, wid)) for d in data]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--json", type=str, default=None, help="also write results to this JSON file")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"])
    ap.add_argument("--repeat", type=int, default=REPEAT, help="timing repeats (best of)")
    args = ap.parse_args()
    globals()["REPEAT"] = args.repeat
    if args.threads:
        torch.set_num_threads(args.threads)
    out = dict(threads=torch.get_num_threads(), torch=torch.__version__)
    if "a" not in args.skip:
        out["throughput"] = throughput([64, 128] if args.quick else [256, 512, 1024])
        print("(a) flat GBP throughput, float32, sync, frozen gains\n"
              + table(out["throughput"], ["D", "size", "ms_per_iter", "mpix_it_s"]) + "\n", flush=True)
    if "b" not in args.skip:
        n = 128 if args.quick else 512
        out["convergence"] = convergence(n, flat_max=5000 if args.quick else 20000)
        print(f"(b) to relative error, {n}x{n}, smoothness/data ratio {RATIO:g}; work = fine-sweep equivalents\n"
              + table(out["convergence"], ["pattern", "method", "tol", "iters", "work", "time_s", "x_cg"]) + "\n",
              flush=True)
    if "c" not in args.skip:
        out["scaling"] = scaling([64, 128] if args.quick else [256, 512, 1024, 2048])
        print("(c) time to relative error 1e-3 (uniform, ratio 100), set-up included\n"
              + table(out["scaling"], ["size", "method", "iters", "time_s"]) + "\n", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
