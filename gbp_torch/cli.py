"""Console entry points (registered in pyproject.toml): ``gbp-demo``, ``gbp-denoise``, ``gbp-stereo``,
``gbp-flow``.

Every argument and file is checked before anything is computed; a bad one ends the program with a
one-line ``PROG: error: ...`` on stderr and exit status 2 (argparse's own usage errors also exit 2).
An unexpected failure later prints one line and exits 1; set ``GBP_DEBUG=1`` to see the traceback.
No output path may be an input, and outputs must be distinct, in an existing folder.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

#: The stereo / flow output formats accepted by extension (see gbp_torch.io.dense).
STEREO_OUTPUTS = (".pfm", ".png", ".npy")
FLOW_OUTPUTS = (".flo", ".npy", ".png")
FLOW_STD_OUTPUTS = (".flo", ".npy")
#: The default --max-disp of gbp-stereo: a quarter of the width, at most this.
MAX_DISP_CAP = 256


class CLIError(Exception):
    """A bad argument or file: reported as one line, exit status 2."""


def _first_line(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    lines = text.strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _run(prog: str, body: Callable[[list[str] | None], None], argv: list[str] | None) -> None:
    """Run ``body``; a CLIError or any other exception becomes one line on stderr and an exit."""
    try:
        body(argv)
    except CLIError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as e:  # noqa: BLE001 - the promise is: no traceback (GBP_DEBUG=1 shows it)
        if os.environ.get("GBP_DEBUG"):
            raise
        print(f"{prog}: error: {type(e).__name__}: {_first_line(e)} (GBP_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        raise SystemExit(1) from None


# ----------------------------------------------------------------------------------------- checks


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _read_input(path: Path, what: str, gray: bool = False):
    """(image (C, H, W) float in [0, 1], bit depth) of an input file, or a CLIError that says why not."""
    from .io import read_gray, read_image

    if not path.exists():
        raise CLIError(f"{what} not found: {path}")
    if not path.is_file():
        raise CLIError(f"{what} is not a file: {path}")
    try:
        if gray:
            img, bits = read_gray(path, return_bits=True)
            return img[None], bits
        return read_image(path, return_bits=True)
    except (ValueError, OSError, RuntimeError) as e:
        raise CLIError(f"{what} {path}: {_first_line(e)}") from None


def _check_outputs(outputs: Sequence[tuple[str, Path | None, Sequence[str]]], inputs: Sequence[Path]) -> None:
    """Each (flag, path, allowed extensions): a known extension, not a directory, in an existing
    writable folder, not one of the inputs, and different from the other outputs."""
    seen: list[tuple[str, Path]] = []
    for flag, path, allowed in outputs:
        if path is None:
            continue
        if path.is_dir():
            raise CLIError(f"{flag} {path} is a directory; give a file name")
        ext = path.suffix.lower()
        if ext not in allowed:
            raise CLIError(f"{flag} {path}: unsupported extension {ext or '(none)'!r}; use {' / '.join(allowed)}")
        if path.exists() and not path.is_file():
            raise CLIError(f"{flag} {path} exists and is not a regular file")
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise CLIError(f"{flag} {path}: folder {parent} does not exist")
        if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            raise CLIError(f"{flag} {path}: not writable")
        for inp in inputs:
            if _same_file(path, inp):
                raise CLIError(f"{flag} {path} is the input {inp}; refusing to overwrite an input")
        for other_flag, other in seen:
            if _same_file(path, other):
                raise CLIError(f"{flag} and {other_flag} are the same file {path}")
        seen.append((flag, path))


def _check_device(device: str):
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise CLIError(f"--device {device!r}: {_first_line(e)}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CLIError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CLIError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CLIError(f"--device {device}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise CLIError(f"--device {device}: use cpu or cuda")
    return dev


def _optional_class(module: str, name: str):
    """``module.name`` if that module exists, else None (an error inside an existing module is reported)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            return None
        raise CLIError(f"{module} could not be imported: {_first_line(e)}") from None
    return getattr(mod, name, None)


def _resolve_model(task: str, name: str | None, device, handset_module: str, handset_class: str):
    """The model for ``task`` (``stereo`` / ``flow``): ``--model handset`` (or no name and no
    pretrained loader) is the hand-set class; otherwise ``gbp_torch.pretrained.<task>(name, device)``."""
    from . import pretrained

    handset = _optional_class(handset_module, handset_class)
    factory = getattr(pretrained, task, None)
    if handset is not None and (name == "handset" or (name is None and factory is None)):
        model = handset()
    elif factory is not None:
        try:
            model = factory(device=device) if name is None else factory(name, device=device)
        except KeyError as e:
            raise CLIError(f"unknown --model {name!r}: {_first_line(e)}"
                           + ("; or 'handset'" if handset is not None else "")) from None
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(f"--model {name or '(default)'}: {_first_line(e)}") from None
    elif handset is None:
        raise CLIError(f"{task} model not available: neither gbp_torch.pretrained.{task} nor "
                       f"{handset_module}.{handset_class} exists in this installation")
    else:
        raise CLIError(f"unknown --model {name!r}; known: handset")
    if hasattr(model, "to"):
        model = model.to(device)
    if hasattr(model, "eval"):
        model.eval()
    return model


def _stereo_model(name: str | None, device):
    """A stereo model ``model(left, right, max_disp) -> StereoOutput`` (see the module docstring)."""
    return _resolve_model("stereo", name, device, "gbp_torch.tasks.stereo.handset", "HandsetStereo")


def _flow_model(name: str | None, device):
    """A flow model ``model(frame1, frame2) -> .flow (B, 2, H, W), .cov (B, 2, 2, H, W) or None``."""
    return _resolve_model("flow", name, device, "gbp_torch.tasks.flow.handset", "HandsetFlow")


def _pair(a, b, names: tuple[str, str], paths: tuple[Path, Path]):
    """Two images of one size with the same number of channels (gray is repeated to RGB if needed)."""
    if a.shape[1:] != b.shape[1:]:
        raise CLIError(f"{names[0]} {paths[0]} is {a.shape[2]}x{a.shape[1]} (WxH) but {names[1]} {paths[1]} is "
                       f"{b.shape[2]}x{b.shape[1]}; they must have the same size")
    if a.shape[0] != b.shape[0]:
        a, b = a.expand(3, -1, -1), b.expand(3, -1, -1)
    return a, b


# ------------------------------------------------------------------------------------------- demo


def demo_main() -> None:
    """``gbp-demo``: denoise the shipped sample images."""
    from .demo import main

    main()


# ---------------------------------------------------------------------------------------- denoise


def denoise_main(argv: list[str] | None = None) -> None:
    """``gbp-denoise INPUT -o OUTPUT.png [--sigma S | --blind] [--uncertainty STD.png] [--model NAME]
    [--device cuda]``."""
    _run("gbp-denoise", _denoise, argv)


def _denoise(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-denoise", description="Denoise a PNG/JPEG image with a pretrained "
                                 "GBP denoiser (a colour image is denoised channel by channel). A 16-bit PNG "
                                 "gives 16-bit outputs.")
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
    _check_outputs([("-o", args.output, (".png",)), ("--uncertainty", args.uncertainty, (".png",))], [args.input])
    image, bits = _read_input(args.input, "input")
    device = _check_device(args.device)

    import torch

    from . import pretrained
    from .io import write_image

    name = args.model or pretrained.DEFAULT_DENOISER
    try:
        model = pretrained.denoiser(name, device=device)
    except KeyError as e:
        raise CLIError(f"unknown --model {name!r}: {_first_line(e)}") from None
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(f"--model {name}: {_first_line(e)}") from None

    channels = image.to(device).unsqueeze(1)  # (C, 1, H, W): a batch of gray images
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
    write_image(args.output, out.mean[:, 0], bits=bits)
    print(f"wrote {args.output}" + (" (16-bit)" if bits == 16 else ""))
    if args.uncertainty is not None:
        if out.var is None:
            raise CLIError("this model gives no uncertainty (--uncertainty not written)")
        std = out.var[:, 0].clamp_min(0).sqrt()
        write_image(args.uncertainty, std / std.max().clamp_min(1e-12), bits=bits)
        print(f"wrote {args.uncertainty} (std scaled by 1/{float(std.max()) * 255:.3g} on the 0-255 scale)")


# ----------------------------------------------------------------------------------------- stereo


_STEREO_EPILOG = """output formats (by extension): .pfm float32 (Middlebury: bottom row first, little-endian),
.png 16-bit with disparity x 256 (KITTI; 0 = unknown; up to 255.99 px), .npy float32 (H, W).
Disparity is in pixels of the input: left(x, y) matches right(x - d, y).
--uncertainty writes the per-pixel standard deviation in the same formats; --color a turbo-coded
8-bit PNG (0 dark blue ... max-disp dark red, unknown black)."""


def stereo_main(argv: list[str] | None = None) -> None:
    """``gbp-stereo LEFT RIGHT -o DISP.{pfm,png,npy} [--max-disp N] [--uncertainty STD] [--color DISP.png]
    [--model NAME] [--device cuda]``."""
    _run("gbp-stereo", _stereo, argv)


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
    ap.add_argument("--model", default=None, help="model name: a pretrained stereo model, or 'handset' "
                    "(default: the default pretrained model, else the hand-set one)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    if args.max_disp is not None and args.max_disp <= 0:
        raise CLIError(f"--max-disp must be > 0, got {args.max_disp}")
    inputs = [args.left, args.right]
    _check_outputs([("-o", args.output, STEREO_OUTPUTS), ("--uncertainty", args.uncertainty, STEREO_OUTPUTS),
                    ("--color", args.color, (".png",))], inputs)
    left, _ = _read_input(args.left, "left image")
    right, _ = _read_input(args.right, "right image")
    left, right = _pair(left, right, ("left image", "right image"), (args.left, args.right))
    width = left.shape[-1]
    if width < 2:
        raise CLIError(f"the images are {width} px wide; stereo needs at least 2")
    max_disp = args.max_disp if args.max_disp is not None else max(1, min(width // 4, MAX_DISP_CAP))
    if max_disp >= width:
        raise CLIError(f"--max-disp {max_disp} must be smaller than the image width {width}")
    device = _check_device(args.device)
    model = _stereo_model(args.model, device)

    import torch

    from .io import write_disparity, write_disparity_color

    print(f"stereo: {width}x{left.shape[1]}, disparities 0..{max_disp}"
          + ("" if args.max_disp is not None else " (default: width // 4; set --max-disp)"))
    with torch.no_grad():
        out = model(left[None].to(device), right[None].to(device), max_disp)
    disp = out.disparity
    if disp is None or tuple(disp.shape[-2:]) != tuple(left.shape[-2:]):
        raise RuntimeError(f"the model returned a disparity of shape "
                           f"{None if disp is None else tuple(disp.shape)}, expected (1, 1, {left.shape[1]}, {width})")
    disp = disp[0, 0].float().cpu()
    write_disparity(args.output, disp)
    print(f"wrote {args.output}")
    if args.color is not None:
        write_disparity_color(args.color, disp, vmin=0.0, vmax=float(max_disp))
        print(f"wrote {args.color} (0 .. {max_disp} px)")
    if args.uncertainty is not None:
        if getattr(out, "var", None) is None:
            raise CLIError("this model gives no uncertainty (--uncertainty not written)")
        write_disparity(args.uncertainty, out.var[0, 0].float().cpu().clamp_min(0).sqrt())
        print(f"wrote {args.uncertainty} (std, px)")


# ------------------------------------------------------------------------------------------- flow


_FLOW_EPILOG = """output formats (by extension): .flo Middlebury (u right, v down, px; frame1(x) matches
frame2(x + flow)), .npy float32 (H, W, 2), .png the colour coding (torchvision flow_to_image; for
viewing only). --uncertainty writes the per-pixel standard deviations (std_u, std_v) as .flo or .npy."""


def flow_main(argv: list[str] | None = None) -> None:
    """``gbp-flow FRAME1 FRAME2 -o FLOW.{flo,npy,png} [--png FLOW.png] [--uncertainty STD.{flo,npy}]
    [--model NAME] [--device cuda]``."""
    _run("gbp-flow", _flow, argv)


def _flow(argv: list[str] | None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-flow", description="Optical flow from FRAME1 to FRAME2 (colour or "
                                 "gray, 8- or 16-bit) by multigrid GBP, with a per-pixel uncertainty.",
                                 epilog=_FLOW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frame1", type=Path, help="first frame")
    ap.add_argument("frame2", type=Path, help="second frame (same size)")
    ap.add_argument("-o", "--output", type=Path, required=True, help="flow: .flo, .npy or .png (colour coding)")
    ap.add_argument("--png", type=Path, help="also write the colour-coded flow here (.png)")
    ap.add_argument("--uncertainty", type=Path, help="per-pixel (std_u, std_v): .flo or .npy")
    ap.add_argument("--model", default=None, help="model name: a pretrained flow model, or 'handset' "
                    "(default: the default pretrained model, else the hand-set one)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args(argv)
    inputs = [args.frame1, args.frame2]
    _check_outputs([("-o", args.output, FLOW_OUTPUTS), ("--png", args.png, (".png",)),
                    ("--uncertainty", args.uncertainty, FLOW_STD_OUTPUTS)], inputs)
    f1, _ = _read_input(args.frame1, "frame1")
    f2, _ = _read_input(args.frame2, "frame2")
    f1, f2 = _pair(f1, f2, ("frame1", "frame2"), (args.frame1, args.frame2))
    device = _check_device(args.device)
    model = _flow_model(args.model, device)

    import torch

    from .io import write_flow, write_flow_color

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
        write_flow(args.uncertainty, std)
        print(f"wrote {args.uncertainty} (std_u, std_v, px)")
