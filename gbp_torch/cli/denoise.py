"""``gbp-denoise``: a pretrained denoiser on one image (colour channel by channel, 8- or 16-bit)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, check_device, check_outputs, first_line, read_input, run


def denoise_main(argv: list[str] | None = None) -> None:
    """``gbp-denoise INPUT -o OUTPUT.png [--sigma S | --blind] [--uncertainty STD.png] [--model NAME]
    [--device cuda]``."""
    run("gbp-denoise", _denoise, argv)


def _denoise(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-denoise", description="Denoise an image (PNG, JPEG, TIFF, ...) with a "
                                 "pretrained GBP denoiser (a colour image is denoised channel by channel). A 16-bit "
                                 "input gives 16-bit outputs.")
    ap.add_argument("input", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    noise = ap.add_mutually_exclusive_group(required=True)
    noise.add_argument("--sigma", type=float, help="Gaussian noise std on the 0-255 scale")
    noise.add_argument("--blind", action="store_true", help="noise level unknown (estimated per channel)")
    ap.add_argument("--uncertainty", type=Path, help="write the per-pixel standard deviation (scaled to its max) here")
    ap.add_argument("--model", default=None, help="pretrained model name (see checkpoints/MANIFEST)")
    ap.add_argument("--tile", type=int, default=1024,
                    help="run the network on tiles of this side (same result, bounded memory; 0: whole image)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.tile < 0:
        ap.error(f"--tile must be >= 0, got {args.tile}")
    if args.sigma is not None and not 0 < args.sigma < 255:
        ap.error(f"--sigma must be in (0, 255), got {args.sigma}")
    check_outputs([("-o", args.output, (".png",)), ("--uncertainty", args.uncertainty, (".png",))], [args.input])
    image, bits = read_input(args.input, "input")
    if args.blind and min(image.shape[-2:]) < 2:
        raise CLIError(f"--blind needs an image of at least 2x2 pixels to estimate the noise; {args.input} is "
                       f"{image.shape[-1]}x{image.shape[-2]} (give --sigma)")
    device = check_device(args.device)

    import torch

    from .. import pretrained
    from ..io import write_image

    name = args.model or pretrained.DEFAULT_DENOISER
    try:
        model = pretrained.denoiser(name, device=device)
    except KeyError as e:
        raise CLIError(f"unknown --model {name!r}: {first_line(e)}") from None
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(f"--model {name}: {first_line(e)}") from None
    if args.uncertainty is not None and not getattr(model, "use_gbp", True):  # known before computing
        raise CLIError(f"--model {name} gives no uncertainty (it has no GBP solve); drop --uncertainty")

    channels = image.to(device).unsqueeze(1)  # (C, 1, H, W): a batch of gray images
    sigma = None if args.blind else channels.new_full(channels.shape[:1], args.sigma / 255.0)
    if args.blind:
        from ..tasks.denoise.noise_level import estimate_noise_sigma

        estimate = estimate_noise_sigma(channels)
        levels = ", ".join(f"{float(s) * 255:.1f}/255" for s in estimate) + (" (R, G, B)" if len(estimate) == 3 else "")
        print(f"blind: estimated Gaussian noise sigma {levels} (used by sigma-conditioned models)")
        if getattr(model, "sigma_input", False):  # what the model would estimate itself; computed once
            sigma = estimate
    if hasattr(model, "factors"):
        model.factors.tile = args.tile or None
        model.factors.progress = True  # a bar over the network's tiles on big images
    means, variances = [], []
    with torch.no_grad():  # one channel at a time: memory of one gray image
        for c in range(channels.shape[0]):
            out = model(channels[c:c + 1], None if sigma is None else sigma[c:c + 1])
            means.append(out.mean[:, 0])
            variances.append(out.var[:, 0] if out.var is not None else None)
    write_image(args.output, torch.cat(means), bits=bits)
    print(f"wrote {args.output}" + (" (16-bit)" if bits == 16 else ""))
    if args.uncertainty is not None:
        if variances[0] is None:
            raise CLIError("this model gives no uncertainty (--uncertainty not written)")
        std = torch.cat(variances).clamp_min(0).sqrt()
        write_image(args.uncertainty, std / std.max().clamp_min(1e-12), bits=bits)
        print(f"wrote {args.uncertainty} (std scaled by 1/{float(std.max()) * 255:.3g} on the 0-255 scale)")
