"""8-bit noisy inputs (rounded and clipped to [0, 1]): a model's raw output against the unclipped one.

    python benchmarks/bench_clipped.py [--dataset train400 --first 100 --count 24] [--model NAME] [--threads 2]

Gray images of the data root (default: Train400 images 100-123, training data, where the decision to unclip
was taken; ``--dataset bsd68 --first 0 --count 68`` reports on the test set), white Gaussian noise (seed =
sigma), rounded to 8 bits and clipped. Columns: ``raw``: the model's output (it estimates each pixel's
clipped mean); ``unclipped``: what ``gbp-denoise`` gives, through
:class:`gbp_torch.tasks.denoise.colour.ColourDenoiser`, which maps it back with
:func:`gbp_torch.tasks.denoise.clipping.unclip`. Mean PSNR dB and coverage (fraction of pixels within 1.96
predicted std of the clean value), and the fraction of noisy pixels at exactly 0 or 1.
"""

from __future__ import annotations

import argparse

import torch

from gbp_torch.io import read_image
from gbp_torch.metrics import coverage, psnr_db
from gbp_torch.paths import dataset_dir
from gbp_torch.pretrained import DEFAULT_DENOISER, denoiser
from gbp_torch.tasks.denoise.colour import ColourDenoiser


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="train400", help="folder under denoise/ in the data root")
    ap.add_argument("--first", type=int, default=100)
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--model", default=DEFAULT_DENOISER)
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15.0, 25.0, 50.0])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(dataset_dir(f"denoise/{args.dataset}").glob("*.png"))[args.first:args.first + args.count]
    if not files:
        raise SystemExit(f"no images {args.first}..{args.first + args.count - 1} in denoise/{args.dataset}")
    model = denoiser(args.model)
    wrapper = ColourDenoiser(model)
    print(f"{len(files)} images of denoise/{args.dataset} from {files[0].name}, model {args.model}, 8-bit noisy "
          f"inputs, {args.threads} threads")
    print(f"{'sigma':>6s} {'clipped px':>10s} {'raw dB':>8s} {'cover':>6s} {'unclipped dB':>12s} {'cover':>6s}")
    for sigma255 in args.sigmas:
        sigma = sigma255 / 255
        g = torch.Generator().manual_seed(int(sigma255))
        sums = torch.zeros(5, dtype=torch.float64)
        for path in files:
            clean = read_image(path)[:1][None]
            noisy = ((clean + sigma * torch.randn(clean.shape, generator=g)) * 255).round().clamp(0, 255) / 255
            with torch.no_grad():
                raw, ours = model(noisy, torch.tensor([sigma])), wrapper(noisy, sigma)
            row = [float(((noisy == 0) | (noisy == 1)).double().mean())]
            for out in (raw, ours):
                row += [psnr_db(out.mean.clamp(0, 1), clean), float(coverage(out.mean, out.var, clean)[0])]
            sums += torch.tensor(row, dtype=torch.float64)
        frac, raw_db, raw_cov, our_db, our_cov = (sums / len(files)).tolist()
        print(f"{sigma255:6g} {frac:10.3f} {raw_db:8.2f} {raw_cov:6.3f} {our_db:12.2f} {our_cov:6.3f}", flush=True)


if __name__ == "__main__":
    main()
