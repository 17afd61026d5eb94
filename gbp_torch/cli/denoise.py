"""``gbp-denoise``: a pretrained denoiser on one image (gray or colour, 8- or 16-bit)."""

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
                                 "pretrained GBP denoiser. A colour image is denoised as a luminance and two chroma "
                                 "channels (channel by channel for a model without a sigma input). A 16-bit input "
                                 "gives 16-bit outputs; an input's alpha channel is kept as it is.")
    ap.add_argument("input", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    noise = ap.add_mutually_exclusive_group(required=True)
    noise.add_argument("--sigma", type=float, help="Gaussian noise std on the 0-255 scale (of each colour channel)")
    noise.add_argument("--blind", action="store_true",
                       help="noise level unknown (estimated on each channel denoised: Y, C1, C2 for colour)")
    ap.add_argument("--uncertainty", type=Path, help="write the per-pixel standard deviation (scaled to its max) here")
    ap.add_argument("--model", default=None, help="pretrained model name (see checkpoints/MANIFEST)")
    ap.add_argument("--tile", type=int, default=None,
                    help="run the network on tiles of this side and the non-local stage on tiles twice as big: "
                         "bounded memory, and faster on the CPU (the network's result is the whole image's, the "
                         "non-local stage's within about 1/255); 0: whole image; default: 256 on the CPU, 1024 on "
                         "a GPU")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.tile is not None and args.tile < 0:
        ap.error(f"--tile must be >= 0, got {args.tile}")
    if args.sigma is not None and not 0 < args.sigma < 255:
        ap.error(f"--sigma must be in (0, 255), got {args.sigma}")
    check_outputs([("-o", args.output, (".png",)), ("--uncertainty", args.uncertainty, (".png",))], [args.input])
    image, bits = read_input(args.input, "input", samples=True)  # a float copy only inside the model
    alpha = _input_alpha(args.input)  # kept in the output: a transparent PNG stays transparent
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

    from ..tasks.denoise.colour import ColourDenoiser

    noisy = image.to(device).unsqueeze(0)  # (1, C, H, W)
    colour = ColourDenoiser(model)
    sigma = None if args.blind else args.sigma / 255.0
    channel_sigma = None
    if args.blind:
        estimate = colour.estimate_sigma(noisy)
        names = colour.channel_names(noisy.shape[1])
        levels = ", ".join(f"{float(s) * 255:.1f}/255" for s in estimate[0])
        print(f"blind: estimated Gaussian noise sigma {levels}" + (f" ({', '.join(names)})" if len(names) > 1 else "")
              + " (used by sigma-conditioned models)")
        if getattr(model, "sigma_input", False):  # what the model would estimate itself; computed once
            channel_sigma = estimate
    # integer samples are clipped where any is at 0 or full scale (what ColourDenoiser unclips)
    share = float(((noisy == 0) | (noisy == (1 << bits) - 1)).float().mean()) if colour.opponent else 0.0
    if share > 0:
        print(f"clipped input: {share:.1%} of the values at 0 or full scale; estimates near black and white are "
              f"corrected for the clipping")
    if hasattr(model, "factors"):
        if args.tile is not None:
            model.factors.tile = args.tile or None
        model.factors.progress = True  # a bar over the network's tiles on big images
    with torch.no_grad():
        out = colour(noisy, sigma, channel_sigma=channel_sigma)
    means, variances = out.mean[0], out.var[0] if out.var is not None else None
    write_image(args.output, means, bits=bits, alpha=alpha)
    print(f"wrote {args.output}" + (" (16-bit)" if bits == 16 else "")
          + (" with the input's alpha channel" if alpha is not None else ""))
    if args.uncertainty is not None:
        if variances is None:
            raise CLIError("this model gives no uncertainty (--uncertainty not written)")
        std = variances.clamp_min(0).sqrt()
        write_image(args.uncertainty, std / std.max().clamp_min(1e-12), bits=bits)
        print(f"wrote {args.uncertainty} (std scaled by 1/{float(std.max()) * 255:.3g} on the 0-255 scale)")


def _input_alpha(path: Path):
    """The input's alpha channel (1, H, W) in [0, 1], or None (none, or opaque); a CLIError if unreadable."""
    from ..io import read_alpha

    try:
        return read_alpha(path)
    except (ValueError, OSError, RuntimeError) as e:
        raise CLIError(f"input {path}: {first_line(e)}") from None
