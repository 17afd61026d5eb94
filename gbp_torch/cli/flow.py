"""``gbp-flow``: optical flow between two frames, its uncertainty and the colour coding."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from .common import CLIError, check_device, check_outputs, pair, read_input, resolve_model, run

#: Flow outputs accepted by extension (see gbp_torch.io.dense).
FLOW_OUTPUTS = (".flo", ".npy", ".png")
FLOW_STD_OUTPUTS = (".flo", ".npy", ".png")


def _flow_model(name: str | None, device):
    """A flow model ``model(frame1, frame2) -> .flow (B, 2, H, W), .cov (B, 2, 2, H, W) or None``."""
    return resolve_model("flow", name, device, "gbp_torch.tasks.flow.handset", "HandsetFlow")


_FLOW_EPILOG = """output formats (by extension): .flo Middlebury (u right, v down, px; frame1(x) matches
frame2(x + flow)), .npy float32 (H, W, 2), .png the colour coding (torchvision flow_to_image; for
viewing only). --uncertainty writes the per-pixel standard deviations (std_u, std_v) as .flo or .npy,
or as .png a black-red-yellow-white map of sqrt(std_u^2 + std_v^2), white at its 99th percentile (printed), for
viewing. --max-motion sets how far (pixels per component) the discrete displacement search looks for motions that the
coarse-to-fine warps lose (default 56; 0: no search); raise it for frames that move more, e.g. high-resolution video.
--match-exposure maps frame 2 to frame 1's brightness and contrast (per channel, where they differ by 5 % or more)
before matching: for frames whose exposure changes (auto exposure, flashes, clouds)."""


def flow_main(argv: list[str] | None = None) -> None:
    """``gbp-flow FRAME1 FRAME2 -o FLOW.{flo,npy,png} [--png FLOW.png] [--uncertainty STD.{flo,npy,png}]
    [--model NAME] [--device cuda] [--max-motion PX] [--match-exposure]``."""
    run("gbp-flow", _flow, argv)


def _flow(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-flow", description="Optical flow from FRAME1 to FRAME2 (colour or "
                                 "gray, 8- or 16-bit) by multigrid GBP, with a per-pixel uncertainty.",
                                 epilog=_FLOW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frame1", type=Path, help="first frame")
    ap.add_argument("frame2", type=Path, help="second frame (same size)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="flow: .flo, .npy or .png (colour coding)")
    ap.add_argument("--png", type=Path, help="also write the colour-coded flow here (.png)")
    ap.add_argument("--uncertainty", type=Path,
                    help="per-pixel (std_u, std_v): .flo or .npy; .png: a colour map to look at")
    ap.add_argument("--model", default=None, help="model name: a pretrained flow model, or 'handset' "
                    "(default: the default pretrained model, else the hand-set one)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--max-motion", type=float, default=None, metavar="PX",
                    help="reach of the displacement search, px (default: the model's, 56; 0: no search)")
    ap.add_argument("--match-exposure", action="store_true",
                    help="match frame 2's brightness and contrast to frame 1's first (exposure changes)")
    args = ap.parse_args(argv)
    if args.max_motion is not None and not (math.isfinite(args.max_motion) and args.max_motion >= 0):
        raise CLIError(f"--max-motion must be >= 0 and finite (pixels; 0: no search), got {args.max_motion:g}")
    inputs = [args.frame1, args.frame2]
    check_outputs([("-o", args.output, FLOW_OUTPUTS), ("--png", args.png, (".png",)),
                    ("--uncertainty", args.uncertainty, FLOW_STD_OUTPUTS)], inputs)
    f1, _ = read_input(args.frame1, "frame1")
    f2, _ = read_input(args.frame2, "frame2")
    f1, f2 = pair(f1, f2, ("frame1", "frame2"), (args.frame1, args.frame2))
    device = check_device(args.device)
    model = _flow_model(args.model, device)
    from ..tasks.flow.handset import MIN_FRAME  # the models' own limit (imported with them)

    if min(f1.shape[-2:]) < MIN_FRAME:
        raise CLIError(f"the frames are {f1.shape[-1]}x{f1.shape[-2]} px (WxH); flow needs at least {MIN_FRAME} px "
                       "on each side")
    model.progress = True  # a bar over the warps: big frames take minutes
    for option, field, value in (("--max-motion", "search_reach", args.max_motion),
                                 ("--match-exposure", "match_exposure", args.match_exposure or None)):
        if value is not None:
            config = getattr(model, "config", None)
            if not hasattr(config, field):
                raise CLIError(f"{option}: the model {args.model or 'default'!r} has no setting {field}")
            model.config = dataclasses.replace(config, **{field: value})

    import torch

    from ..io import write_flow, write_flow_color, write_std_map

    with torch.no_grad():
        out = model(f1[None].to(device), f2[None].to(device))
    flow = getattr(out, "flow", None)
    if flow is None or tuple(flow.shape[-3:]) != (2, *f1.shape[-2:]):
        raise RuntimeError(f"the model returned a flow of shape {None if flow is None else tuple(flow.shape)}, "
                           f"expected (1, 2, {f1.shape[1]}, {f1.shape[2]})")
    flow = flow[0].float().cpu()
    write_flow(args.output, flow)
    print(f"wrote {args.output}")
    if args.png is not None:
        write_flow_color(args.png, flow)
        print(f"wrote {args.png}")
    if args.uncertainty is not None:
        cov = getattr(out, "cov", None)
        if cov is None:
            raise CLIError("this model gives no uncertainty (--uncertainty not written)")
        std = torch.stack([cov[0, 0, 0], cov[0, 1, 1]]).float().cpu().clamp_min(0).sqrt()
        if args.uncertainty.suffix.lower() == ".png":
            # black 0, white the 99th percentile of the finite stds and above, and inf (motion the frames do
            # not determine), as the demo's map
            top = write_std_map(args.uncertainty, std.square().sum(0).sqrt())
            print(f"wrote {args.uncertainty} (sqrt(std_u^2 + std_v^2), black-red-yellow-white; white = {top:.3g} px, "
                  "the 99th percentile, and above)")
        else:
            write_flow(args.uncertainty, std)
            print(f"wrote {args.uncertainty} (std_u, std_v, px)")
