"""Colour denoising: the opponent space against denoising R, G and B separately (and BM3D's colour version).

    python benchmarks/bench_colour_denoise.py [--model gbp_denoiser_gaussian] [--sigmas 15 25 50] [--bm3d]
                                              [--threads 2] [--limit N]

Images: the colour photographs of the data root that no model trained on: the 8 Middlebury-flow
``frame10.png`` and the 4 Middlebury-2003 stereo ``left.png`` (there is no colour denoising set in it). White
Gaussian noise of std sigma in each channel (seed = sigma), rounded and clipped to 8 bits, as a noisy PNG
would be. Columns (mean PSNR over the images, dB): ``separate``: the gray model on R, G and B with sigma
(what ``gbp-denoise`` did before; clipped channels unclipped, :mod:`gbp_torch.tasks.denoise.clipping`);
``opponent``: :class:`gbp_torch.tasks.denoise.colour.ColourDenoiser`, what ``gbp-denoise`` and the Python
API do now (``coverage``: its pixel channels within 1.96 predicted standard deviations of the clean
value); ``bm3d_rgb`` (``--bm3d``; the ``bm3d`` package, optional benchmark dependency, about 10 s per
image): BM3D on the same 8-bit inputs in its own opponent space.
"""

from __future__ import annotations

import argparse
import time

import torch

from gbp_torch.io import read_image
from gbp_torch.metrics import coverage, psnr_db
from gbp_torch.paths import dataset_dir
from gbp_torch.pretrained import DEFAULT_DENOISER, denoiser
from gbp_torch.tasks.denoise.clipping import is_clipped, unclip
from gbp_torch.tasks.denoise.colour import ColourDenoiser


def colour_images(limit: int | None = None) -> list[tuple[str, torch.Tensor]]:
    """(name, (1, 3, H, W) in [0, 1]) of the data root's colour photographs."""
    flow = sorted(dataset_dir("flow/middlebury").glob("*/frame10.png"))
    stereo = sorted(dataset_dir("stereo/middlebury2003").glob("*/left.png"))
    out = [(f"{p.parent.name}", read_image(p)[None, :3]) for p in flow + stereo]
    return out[:limit]


def separate(model, noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """The gray model on each RGB channel, clipped channels unclipped as in the opponent path."""
    mean = torch.cat([model(noisy[:, c:c + 1], torch.tensor([sigma])).mean for c in range(noisy.shape[1])], 1)
    return unclip(mean, None, torch.full(noisy.shape[:2], sigma), is_clipped(noisy))[0]


def bm3d_rgb(noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    import bm3d

    out = bm3d.bm3d_rgb(noisy[0].permute(1, 2, 0).double().numpy(), sigma)
    return torch.from_numpy(out.copy()).permute(2, 0, 1)[None].float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_DENOISER)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    ap.add_argument("--bm3d", action="store_true", help="add BM3D's colour version (pip install bm3d)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="first N images only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = denoiser(args.model).eval()
    colour = ColourDenoiser(model)
    images = colour_images(args.limit)
    outputs = {}

    def opponent(x, s):
        outputs["last"] = colour(x, s)
        return outputs["last"].mean

    methods = {"separate": lambda x, s: separate(model, x, s), "opponent": opponent}
    if args.bm3d:
        methods["bm3d_rgb"] = bm3d_rgb
    print(f"{len(images)} colour images ({', '.join(n for n, _ in images)}), model {args.model}, 8-bit noisy "
          f"inputs, {args.threads} threads; mean PSNR dB (seconds per image)")
    print(f"{'sigma':>6s} " + " ".join(f"{m:>18s}" for m in methods) + f" {'coverage':>9s}")
    for sigma255 in args.sigmas:
        g = torch.Generator().manual_seed(int(sigma255))
        psnr = {m: 0.0 for m in methods}
        secs = {m: 0.0 for m in methods}
        covered = 0.0
        for _, clean in images:
            noisy = ((clean + sigma255 / 255 * torch.randn(clean.shape, generator=g)) * 255).round().clamp(0, 255) / 255
            for m, fn in methods.items():
                t0 = time.perf_counter()
                with torch.no_grad():
                    out = fn(noisy, sigma255 / 255)
                secs[m] += (time.perf_counter() - t0) / len(images)
                psnr[m] += psnr_db(out.clamp(0, 1), clean) / len(images)
            last = outputs["last"]
            covered += float(coverage(last.mean, last.var, clean)[0]) / len(images) if last.var is not None else 0.0
        print(f"{sigma255:6g} " + " ".join(f"{psnr[m]:11.2f} ({secs[m]:4.1f})" for m in methods)
              + f" {covered:9.3f}", flush=True)


if __name__ == "__main__":
    main()
