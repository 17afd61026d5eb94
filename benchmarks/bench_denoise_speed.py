"""Time per megapixel of shipped denoisers through the public API, against the local model, in one process.

    python benchmarks/bench_denoise_speed.py [--models gbp_denoiser_nonlocal] [--size 1024x1024] [--threads 2]

Each model denoises the same noisy gray image (a BSD68 image tiled to the size, sigma 25, known sigma and
blind), loading included once, then best of ``--repeat`` calls. Target (issue 18): the non-local model
at most 2x the time per megapixel of ``gbp_denoiser_gaussian``.
"""

from __future__ import annotations

import argparse
import time

import torch

from gbp_torch.io import read_image
from gbp_torch.paths import samples_dir
from gbp_torch.pretrained import denoiser

BASELINE = "gbp_denoiser_gaussian"


def noisy_image(w: int, h: int) -> torch.Tensor:
    clean = read_image(samples_dir() / "denoise" / "bsd68_test001.png")[:1]
    reps = (-(-h // clean.shape[-2]), -(-w // clean.shape[-1]))
    clean = clean.repeat(1, *reps)[:, :h, :w]
    g = torch.Generator().manual_seed(0)
    return (clean + 25 / 255 * torch.randn(clean.shape, generator=g))[None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["gbp_denoiser_nonlocal"])
    ap.add_argument("--size", default="1024x1024", help="WxH")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.split("x"))
    noisy, mp = noisy_image(w, h), w * h / 1e6
    sigma = torch.tensor([25 / 255])
    rows = []
    for name in [BASELINE, *args.models]:
        model = denoiser(name)
        for blind in (False, True):
            times = []
            with torch.no_grad():
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    model(noisy, None if blind else sigma)
                    times.append(time.perf_counter() - t)
            rows.append((name + (" (blind)" if blind else ""), min(times) / mp))
    base = {False: rows[0][1], True: rows[1][1]}
    print(f"{w}x{h} ({mp:.2f} MP), {args.threads} threads, best of {args.repeat}")
    print(f"{'model':40s} {'s / MP':>8s} {'x ' + BASELINE:>28s}")
    for name, per_mp in rows:
        print(f"{name:40s} {per_mp:8.2f} {per_mp / base[name.endswith('(blind)')]:28.2f}")


if __name__ == "__main__":
    main()
