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
                                 "GBP denoiser (a colour image is denoised channel by channel).")
    ap.add_argument("input", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    noise = ap.add_mutually_exclusive_group(required=True)
    noise.add_argument("--sigma", type=float, help="Gaussian noise std on the 0-255 scale")
    noise.add_argument("--blind", action="store_true", help="noise level unknown (estimated per channel)")
    ap.add_argument("--uncertainty", type=Path, help="write the per-pixel standard deviation (scaled to its max) here")
    ap.add_argument("--model", default=None, help="pretrained model name (see checkpoints/MANIFEST)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.sigma is not None and not 0 < args.sigma < 255:
        ap.error(f"--sigma must be in (0, 255), got {args.sigma}")

    import torch

    from .io import read_image, write_image
    from .pretrained import DEFAULT_DENOISER, denoiser

    model = denoiser(args.model or DEFAULT_DENOISER, device=args.device)
    channels = read_image(args.input).to(args.device).unsqueeze(1)  # (C, 1, H, W): a batch of gray images
    sigma = None if args.blind else channels.new_full(channels.shape[:1], args.sigma / 255.0)
    if args.blind:
        from .tasks.denoise.noise_level import estimate_noise_sigma

        estimate = estimate_noise_sigma(channels)
        levels = ", ".join(f"{float(s) * 255:.1f}/255" for s in estimate) + (" (R, G, B)" if len(estimate) == 3 else "")
        print(f"blind: estimated Gaussian noise sigma {levels} (used by sigma-conditioned models)")
        if getattr(model, "sigma_input", False):  # what the model would estimate itself; computed once
            sigma = estimate
    with torch.no_grad():
        out = model(channels, sigma)
    write_image(args.output, out.mean[:, 0])
    print(f"wrote {args.output}")
    if args.uncertainty is not None:
        if out.var is None:
            ap.error("this model gives no uncertainty")
        std = out.var[:, 0].clamp_min(0).sqrt()
        write_image(args.uncertainty, std / std.max().clamp_min(1e-12))
        print(f"wrote {args.uncertainty} (std scaled by 1/{float(std.max()) * 255:.3g} on the 0-255 scale)")
