"""Peak memory and time of the CLIs on big synthetic inputs, as a user runs them.

    python benchmarks/bench_memory.py                       # stereo 3000x2000 / 256 disparities, flow 3840x2160
    python benchmarks/bench_memory.py --stereo 600x400:64 --flow 640x480   # a quick look
    python benchmarks/bench_memory.py --stereo '' --flow '' --denoise 6000x4000 --denoise 2000x1500 \
        --untiled 2000x1500                                  # denoising: 24 MP tiled; 3 MP tiled and not
    python benchmarks/bench_memory.py --stereo '' --flow '' --denoise-rgb 6000x4000    # a 24 MP colour photo

Each CLI call (``gbp-stereo`` / ``gbp-flow`` / ``gbp-denoise`` through ``python -m``, model loading and PNG reading
included) runs in a fresh process; its peak resident set size comes from ``getrusage`` of the
child. The baseline row is a child that only imports torch and reads the two input PNGs. Targets
(issues 15 / 16 / 17): stereo <= 4 GB, flow <= 6 GB, a 24 MP photo denoised <= 4 GB with a time per
megapixel no worse than the untiled run (``--untiled``: the same CLI with ``--tile 0``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gbp_torch.io import read_image, write_image


def texture(h: int, w: int, seed: int) -> torch.Tensor:
    """(3, H, W) in [0, 1]: multi-scale random texture (every scale has detail, so matching works)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.zeros(1, 3, h, w)
    for s in (4, 16, 64):
        noise = torch.rand(1, 3, max(h // s, 2), max(w // s, 2), generator=g)
        out += F.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False) / 3
    return out[0].clamp(0, 1)


def stereo_pair(h: int, w: int, max_disp: int, folder: Path) -> tuple[Path, Path]:
    """A slanted plane: disparity from 0.2 to 0.8 of max_disp across the width, in the models' convention (left(x)
    matches right(x - d)). Until 2026-12-07 the views were rendered the other way round (right(x) = left(x - d)),
    which the models' swapped-views check then flagged; the memory figures before that date are of that pair."""
    scene = texture(h, w + max_disp, 0)
    xs = torch.arange(w, dtype=torch.float32)
    d = max_disp * (0.2 + 0.6 * xs / (w - 1))
    grid_x = (xs + d) / (w + max_disp - 1) * 2 - 1  # right(x) = scene(x + d(x)), left(x) = scene(x)
    gx = grid_x.expand(h, w)
    gy = torch.linspace(-1, 1, h)[:, None].expand(h, w)
    right = F.grid_sample(scene[None], torch.stack((gx, gy), -1)[None], align_corners=True)[0]
    folder = Path(folder)
    paths = folder / "left.png", folder / "right.png"
    write_image(paths[0], scene[:, :, :w])
    write_image(paths[1], right)
    return paths


def flow_pair(h: int, w: int, folder: Path) -> tuple[Path, Path]:
    """A smooth texture translated by (3.5, -2.25) px."""
    img = texture(h + 8, w + 8, 1)
    folder = Path(folder)
    paths = folder / "frame1.png", folder / "frame2.png"
    write_image(paths[0], img[:, 4:4 + h, 4:4 + w])
    theta = torch.tensor([[[1.0, 0, -3.5 * 2 / (w + 7)], [0, 1.0, 2.25 * 2 / (h + 7)]]])
    moved = F.grid_sample(img[None], F.affine_grid(theta, (1, 3, h + 8, w + 8), align_corners=True),
                          align_corners=True)[0]
    write_image(paths[1], moved[:, 4:4 + h, 4:4 + w])
    return paths


def noisy_photo(h: int, w: int, folder: Path, channels: int = 1) -> Path:
    """A gray (or colour) texture with Gaussian noise (sigma 25), 8-bit PNG."""
    g = torch.Generator().manual_seed(2)
    img = (texture(h, w, 3)[:channels] + torch.randn(channels, h, w, generator=g) * 25 / 255).clamp(0, 1)
    path = Path(folder) / f"noisy_{w}x{h}_{channels}.png"
    write_image(path, img)
    return path


def make_input(maker: str, *args):
    """``maker(*args)`` of this file run in a child process, so that this process stays small: a forked
    child's peak RSS starts at its parent's, which would inflate every measurement."""
    args = tuple(str(a) if isinstance(a, Path) else a for a in args)
    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_memory; "
            f"r = bench_memory.{maker}(*{args!r}); "
            "print(json.dumps([str(p) for p in (r if isinstance(r, tuple) else (r,))]))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    paths = tuple(Path(p) for p in json.loads(out))
    return paths if len(paths) > 1 else paths[0]


def run_child(args: list[str]) -> tuple[float, float]:
    """(peak RSS in GB, wall seconds) of ``python args...`` in a fresh process (its own rusage)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child failed: {args}")
    return usage.ru_maxrss / 2**20, wall  # ru_maxrss is in KiB on Linux


def size(text: str) -> tuple[int, int, int | None]:
    wh, _, disp = text.partition(":")
    w, h = (int(v) for v in wh.split("x"))
    return w, h, int(disp) if disp else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stereo", default="3000x2000:256", help="WxH:max_disp of the stereo pair ('' skips)")
    ap.add_argument("--flow", default="3840x2160", help="WxH of the flow pair ('' skips)")
    ap.add_argument("--denoise", action="append", default=[], metavar="WxH", help="gray photo for gbp-denoise")
    ap.add_argument("--denoise-rgb", action="append", default=[], metavar="WxH", help="colour photo for gbp-denoise")
    ap.add_argument("--untiled", action="append", default=[], metavar="WxH",
                    help="gray photo for gbp-denoise --tile 0 (the untiled reference)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="--model of gbp-stereo and gbp-flow (default: their default model)")
    ap.add_argument("--denoise-model", default=None, help="--model of gbp-denoise (default: its default model)")
    args = ap.parse_args()
    threads = f"import torch; torch.set_num_threads({args.threads}); "
    model = ["--model", args.model] if args.model else []
    denoise_model = ["--model", args.denoise_model] if args.denoise_model else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = []
        if args.stereo:
            w, h, disp = size(args.stereo)
            left, right = make_input("stereo_pair", h, w, disp, folder)
            cases.append((f"stereo {w}x{h}, {disp} disparities", "gbp_torch.cli", "stereo_main",
                          [str(left), str(right), "-o", str(folder / "d.pfm"), "--max-disp", str(disp),
                           "--uncertainty", str(folder / "s.pfm"), *model], (left, right), 4.0))
        if args.flow:
            w, h, _ = size(args.flow)
            f1, f2 = make_input("flow_pair", h, w, folder)
            cases.append((f"flow {w}x{h}", "gbp_torch.cli", "flow_main",
                          [str(f1), str(f2), "-o", str(folder / "f.flo"), "--uncertainty", str(folder / "s.flo"),
                           *model],
                          (f1, f2), 6.0))
        jobs = ([(t, True, 1) for t in args.denoise if t] + [(t, False, 1) for t in args.untiled if t]
                + [(t, True, 3) for t in args.denoise_rgb if t])
        for text, tile, channels in jobs:
            w, h, _ = size(text)
            photo = make_input("noisy_photo", h, w, folder, channels)
            kind = f"{'' if tile else ' untiled'}{' colour' if channels == 3 else ''}"
            out = folder / f"d_{text}_{tile}_{channels}.png"
            cases.append((f"denoise {w}x{h} ({w * h / 1e6:.1f} MP){kind}", "gbp_torch.cli",
                          "denoise_main", [str(photo), "-o", str(out), "--sigma", "25",
                                           "--uncertainty", str(folder / "s.png"), *([] if tile else ["--tile", "0"]),
                                           *denoise_model],
                          (photo,), 4.0))
        for name, module, fn, cli_args, inputs, target in cases:
            read = threads + ("from gbp_torch.io import read_image; "
                                     + "; ".join(f"read_image({str(p)!r})" for p in inputs))
            base, _ = run_child(["-c", read])
            call = threads + f"from {module} import {fn}; {fn}({cli_args!r})"
            peak, wall = run_child(["-c", call])
            rows.append((name, base, peak, wall, target))
        seams = [(t, (read_image(folder / f"d_{t}_True_1.png") - read_image(folder / f"d_{t}_False_1.png")).abs().max())
                 for t in set(args.denoise) & set(args.untiled)]
    print(f"{'case':40s} {'read-only GB':>12s} {'CLI peak GB':>11s} {'x read-only':>11s} {'time s':>7s} target")
    for name, base, peak, wall, target in rows:
        ok = "ok" if peak <= target else "MISSED"
        print(f"{name:40s} {base:12.2f} {peak:11.2f} {peak / base:11.1f} {wall:7.1f} <= {target:g} GB {ok}")
    for text, diff in seams:
        ok = "ok" if diff <= 1 / 255 + 1e-6 else "MISSED"
        print(f"denoise {text}: tiled vs untiled output, max |difference| {float(diff) * 255:.2f}/255 (<= 1/255 {ok})")


if __name__ == "__main__":
    main()
