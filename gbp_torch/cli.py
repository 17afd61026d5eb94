"""Console entry points (registered in pyproject.toml)."""

from __future__ import annotations

import argparse
from pathlib import Path


def demo_main() -> None:
    """``gbp-demo``: denoise the shipped sample images."""
    from .demo import main

    main()


def denoise_main(argv: list[str] | None = None) -> None:
    """``gbp-denoise INPUT -o OUTPUT [--sigma S | --blind] [--uncertainty STD.png] [--device cuda]``."""
    ap = argparse.ArgumentParser(prog="gbp-denoise", description="Denoise a PNG/JPEG image with a pretrained "
                                 "GBP denoiser (gray; colour input is converted).")
    ap.add_argument("input", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    noise = ap.add_mutually_exclusive_group(required=True)
    noise.add_argument("--sigma", type=float, help="Gaussian noise std on the 0-255 scale")
    noise.add_argument("--blind", action="store_true", help="noise level unknown")
    ap.add_argument("--uncertainty", type=Path, help="write the per-pixel standard deviation (scaled to its max) here")
    ap.add_argument("--model", default=None, help="pretrained model name (see checkpoints/MANIFEST)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.sigma is not None and not 0 < args.sigma < 255:
        ap.error(f"--sigma must be in (0, 255), got {args.sigma}")

    import torch

    from .io import read_gray, write_gray
    from .pretrained import DEFAULT_DENOISER, denoiser

    model = denoiser(args.model or DEFAULT_DENOISER, device=args.device)
    img = read_gray(args.input).to(args.device)
    sigma = None if args.blind else torch.tensor([args.sigma / 255.0], device=args.device)
    if args.blind:
        from .tasks.noise_level import estimate_noise_sigma

        estimate = estimate_noise_sigma(img[None, None])
        print(f"blind: estimated Gaussian noise sigma {float(estimate[0]) * 255:.1f}/255 "
              "(used by sigma-conditioned models)")
        if getattr(model, "sigma_input", False):  # what the model would estimate itself; computed once
            sigma = estimate
    with torch.no_grad():
        out = model(img[None, None], sigma)
    write_gray(args.output, out.mean[0, 0])
    print(f"wrote {args.output}")
    if args.uncertainty is not None:
        if out.var is None:
            ap.error("this model gives no uncertainty")
        std = out.var[0, 0].clamp_min(0).sqrt()
        write_gray(args.uncertainty, std / std.max().clamp_min(1e-12))
        print(f"wrote {args.uncertainty} (std scaled by 1/{float(std.max()) * 255:.3g} on the 0-255 scale)")
