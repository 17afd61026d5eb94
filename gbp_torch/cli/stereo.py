"""``gbp-stereo``: the disparity of a rectified pair, its uncertainty and a colour view."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import CLIError, check_device, check_outputs, pair, read_input, resolve_model, run

#: Disparity outputs accepted by extension (see gbp_torch.io.dense).
STEREO_OUTPUTS = (".pfm", ".png", ".npy")
#: The default --max-disp: a quarter of the width, at most this.
MAX_DISP_CAP = 256


def _stereo_model(name: str | None, device):
    """A stereo model ``model(left, right, max_disp) -> StereoOutput`` (see the module docstring)."""
    return resolve_model("stereo", name, device, "gbp_torch.tasks.stereo.handset", "HandsetStereo")


_STEREO_EPILOG = """output formats (by extension): .pfm float32 (Middlebury: bottom row first, little-endian),
.png 16-bit with disparity x 256 (KITTI; 0 = unknown; up to 255.99 px), .npy float32 (H, W).
Disparity is in pixels of the input: left(x, y) matches right(x - d, y).
--uncertainty writes the per-pixel standard deviation in the same formats; --color a turbo-coded
8-bit PNG (0 dark blue ... max-disp dark red, unknown black); --uncertainty-color a black-red-yellow-white PNG of
the std, white at its 99th percentile (printed), for viewing."""


def stereo_main(argv: list[str] | None = None) -> None:
    """``gbp-stereo LEFT RIGHT -o DISP.{pfm,png,npy} [--max-disp N] [--uncertainty STD] [--color DISP.png]
    [--uncertainty-color STD.png] [--model NAME] [--device cuda]``."""
    run("gbp-stereo", _stereo, argv)


def _stereo(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-stereo", description="Disparity of a rectified stereo pair (left "
                                 "and right images, colour or gray, 8- or 16-bit) by multigrid GBP.",
                                 epilog=_STEREO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("left", type=Path, help="left image")
    ap.add_argument("right", type=Path, help="right image (same size)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="disparity map: .pfm, .png or .npy")
    ap.add_argument("--max-disp", type=int, default=None,
                    help=f"largest disparity searched, in px, 0 < N < width (default: width // 4, at most "
                         f"{MAX_DISP_CAP}; give it when you know the scene's range)")
    ap.add_argument("--uncertainty", type=Path, help="per-pixel disparity std: .pfm, .png or .npy")
    ap.add_argument("--color", type=Path, help="colour-coded disparity for viewing (.png)")
    ap.add_argument("--uncertainty-color", type=Path, help="colour map of the per-pixel std for viewing (.png)")
    ap.add_argument("--model", default=None, help="model name: a pretrained stereo model, or 'handset' "
                    "(default: the default pretrained model, else the hand-set one)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    if args.max_disp is not None and args.max_disp <= 0:
        raise CLIError(f"--max-disp must be > 0, got {args.max_disp}")
    inputs = [args.left, args.right]
    check_outputs([("-o", args.output, STEREO_OUTPUTS), ("--uncertainty", args.uncertainty, STEREO_OUTPUTS),
                    ("--color", args.color, (".png",)), ("--uncertainty-color", args.uncertainty_color, (".png",))],
                   inputs)
    left, _ = read_input(args.left, "left image")
    right, _ = read_input(args.right, "right image")
    left, right = pair(left, right, ("left image", "right image"), (args.left, args.right))
    width = left.shape[-1]
    if width < 2:
        raise CLIError(f"the images are {width} px wide; stereo needs at least 2")
    max_disp = args.max_disp if args.max_disp is not None else max(1, min(width // 4, MAX_DISP_CAP))
    if max_disp >= width:
        raise CLIError(f"--max-disp {max_disp} must be smaller than the image width {width}")
    device = check_device(args.device)
    model = _stereo_model(args.model, device)
    model.progress = True  # a bar over the stages: big pairs take minutes

    import torch

    from ..io import write_disparity, write_disparity_color, write_std_map

    print(f"stereo: {width}x{left.shape[1]}, disparities 0..{max_disp}"
          + ("" if args.max_disp is not None else " (default: width // 4; set --max-disp)"))
    with torch.no_grad():
        out = model(left[None].to(device), right[None].to(device), max_disp)
    disp = out.disparity
    if disp is None or tuple(disp.shape[-2:]) != tuple(left.shape[-2:]):
        raise RuntimeError(f"the model returned a disparity of shape "
                           f"{None if disp is None else tuple(disp.shape)}, expected (1, 1, {left.shape[1]}, {width})")
    offset, tilt = getattr(out, "row_offset", None), getattr(out, "row_tilt", None)
    tilted = tilt is not None and float(tilt[0]) != 0
    if tilted or (offset is not None and float(offset[0]) != 0):
        across = f", changing by {float(tilt[0]):+.2f} px from the left edge to the right" if tilted else ""
        print(f"stereo: the right image's rows are {float(offset[0]):+.2f} px off the left's{across} (imperfect "
              "rectification): resampled before matching")
    disp = disp[0, 0].float().cpu()
    _warn_if_range_reached(disp, getattr(out, "occluded", None), max_disp, args.max_disp is None)
    write_disparity(args.output, disp)
    print(f"wrote {args.output}")
    if args.color is not None:
        write_disparity_color(args.color, disp, vmin=0.0, vmax=float(max_disp))
        print(f"wrote {args.color} (0 .. {max_disp} px)")
    if args.uncertainty is None and args.uncertainty_color is None:
        return
    if getattr(out, "var", None) is None:
        raise CLIError("this model gives no uncertainty (--uncertainty / --uncertainty-color not written)")
    std = out.var[0, 0].float().cpu().clamp_min(0).sqrt()
    if args.uncertainty is not None:
        write_disparity(args.uncertainty, std)
        print(f"wrote {args.uncertainty} (std, px)")
    if args.uncertainty_color is not None:
        top = write_std_map(args.uncertainty_color, std)
        print(f"wrote {args.uncertainty_color} (std, black-red-yellow-white; white = {top:.3g} px, the 99th "
              "percentile, and above)")


#: warn when more than this share of the visible pixels lies within half a pixel of --max-disp
RANGE_SHARE = 0.02


def _warn_if_range_reached(disp, occluded, max_disp: int, default: bool) -> None:
    """A warning line when the disparity reaches the top of the searched range on more than :data:`RANGE_SHARE` of
    the visible pixels: nearer surfaces may lie beyond it (hand-set model on Middlebury 2003: 0-0.16 % of the visible
    pixels with the scenes' own ranges, 3.3-25 % with ranges cut to 60-80 % of the true one)."""
    import torch

    visible = torch.ones_like(disp, dtype=torch.bool) if occluded is None else ~occluded[0, 0].cpu()
    share = float(((disp >= max_disp - 0.5) & visible).sum()) / max(1, int(visible.sum()))
    if share > RANGE_SHARE:
        print(f"gbp-stereo: warning: {100 * share:.0f} % of the pixels lie at the largest disparity searched "
              f"({max_disp}{', the default' if default else ''}): nearer surfaces may lie beyond it; raise --max-disp",
              file=sys.stderr)
