"""Evaluate stereo methods on the Middlebury 2003 scenes (``python -m train.eval --task stereo``).

    python -m train.eval --task stereo
    python -m train.eval --task stereo --scenes tsukuba venus --png results/stereo
    python -m train.eval --task stereo --no-sgbm --threads 2     # on an otherwise idle machine
    python -m train.eval --task stereo --pretrained gbp_stereo   # adds the learned GBP column

Prints per scene and method: bad > 1 px on nonocc / all / disc, bad > 2 px nonocc (percent), mean
absolute error (px, nonocc), uncertainty coverage (fraction of nonocc pixels with
|error| < 1.96 std; methods with a variance) and seconds. Methods: OpenCV SGBM (if ``cv2`` is
importable: ``pip install gbp_torch[bench]``; holes count as errors, disparity 0) and the
hand-set GBP model (:class:`gbp_torch.tasks.stereo.HandsetStereo`, defaults tuned on synthetic
pairs only) and the learned GBP model (``gbp_torch.pretrained.stereo(NAME)``, trained on synthetic
pairs only; column ``learned``, with ``--pretrained NAME``). ``--png DIR`` writes colour-mapped disparities
and bad > 1 maps per scene and method.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from gbp_torch.io import colorize, write_image
from gbp_torch.tasks.stereo.colormap import error_image
from gbp_torch.tasks.stereo.handset import HandsetStereo
from gbp_torch.tasks.stereo.metrics import stereo_metrics
from gbp_torch.tasks.stereo.middlebury import SCENES, load_scene
from gbp_torch.tasks.stereo.output import StereoOutput

Method = Callable[[torch.Tensor, torch.Tensor, int], StereoOutput]


def sgbm_method(threads: int = 1) -> Method | None:
    """OpenCV SGBM with typical settings (block 5, P1 = 8*3*25, P2 = 32*3*25, 3-way); None without cv2.
    Holes (invalid disparities) come back as 0."""
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(threads)

    def run(left: torch.Tensor, right: torch.Tensor, max_disp: int) -> StereoOutput:
        def img(t):
            a = (t[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            return cv2.cvtColor(a, cv2.COLOR_RGB2BGR) if a.shape[2] == 3 else a[..., 0]

        n = 16 * math.ceil((max_disp + 1) / 16)
        sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=n, blockSize=5, P1=8 * 3 * 25,
                                     P2=32 * 3 * 25, mode=cv2.StereoSGBM_MODE_SGBM_3WAY)
        d = torch.from_numpy(sgbm.compute(img(left), img(right)).astype("float32") / 16.0)
        return StereoOutput(d.clamp_min(0)[None, None])

    return run


def learned_method(name: str = "gbp_stereo") -> Method | None:
    """The shipped learned stereo model ``name`` (eval mode), or None when the manifest lacks it."""
    from gbp_torch import pretrained

    try:
        if name not in pretrained.manifest():
            return None
    except FileNotFoundError:
        return None
    return pretrained.stereo(name)


def evaluate(methods: Mapping[str, Method], scenes: Sequence[str] = SCENES, root=None,
             png: str | Path | None = None) -> list[dict]:
    """One row per (scene, method): ``{"scene", "method", "seconds", **stereo_metrics}``."""
    rows = []
    for name in scenes:
        sc = load_scene(name, root)
        for mname, fn in methods.items():
            t0 = time.perf_counter()
            with torch.no_grad():
                out = fn(sc.left, sc.right, sc.max_disp)
            secs = time.perf_counter() - t0
            rows.append({"scene": name, "method": mname, "seconds": secs,
                         **stereo_metrics(out.disparity, sc.gt, sc.masks, out.var)})
            if png is not None:
                _write_pngs(Path(png), sc, mname, out)
    return rows


def _write_pngs(folder: Path, sc, method: str, out: StereoOutput) -> None:
    vmax = float(sc.gt.max())
    write_image(folder / f"{sc.name}_{method}_disp.png", colorize(out.disparity[0, 0], 0.0, vmax))
    write_image(folder / f"{sc.name}_{method}_bad1.png", error_image(out.disparity[0, 0], sc.gt[0, 0],
                                                                    sc.masks["all"][0, 0]))
    if out.var is not None:
        std = out.var[0, 0].clamp_min(0).sqrt()
        write_image(folder / f"{sc.name}_{method}_std.png", colorize(std, 0.0, 2.0))
    gt_png = folder / f"{sc.name}_gt_disp.png"
    if not gt_png.exists():
        write_image(gt_png, colorize(sc.gt[0, 0], 0.0, vmax))


def format_table(rows: Sequence[dict]) -> str:
    """The per-scene table (percent bad pixels, MAE px, coverage, AUSE, seconds)."""
    head = (f"{'scene':8s} {'method':9s} {'bad1 noc':>8s} {'bad1 all':>8s} {'bad1 disc':>9s} {'bad2 noc':>8s} "
            f"{'MAE px':>7s} {'cover':>6s} {'AUSE':>6s} {'time s':>7s}")
    lines = ["Middlebury 2003: bad > t px in percent (t = 1, 2), MAE on nonocc, coverage = fraction of nonocc "
             "pixels with |err| < 1.96 std, AUSE = sparsification error of the std (0: it orders the errors)", head]
    for r in rows:
        cov, ause = (f"{r[k]:6.3f}" if r.get(k) is not None else f"{'-':>6s}" for k in ("coverage", "ause"))
        lines.append(f"{r['scene']:8s} {r['method']:9s} {r['bad1_nonocc']:8.2f} {r['bad1_all']:8.2f} "
                     f"{r['bad1_disc']:9.2f} {r['bad2_nonocc']:8.2f} {r['mae']:7.3f} {cov} {ause} {r['seconds']:7.2f}")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines.append("mean bad1 nonocc: " + ", ".join(
        f"{m} {sum(r['bad1_nonocc'] for r in rows if r['method'] == m) / sum(r['method'] == m for r in rows):.2f}"
        for m in methods))
    return "\n".join(lines)


#: Method names of the table -> their part of the MANIFEST keys.
METHOD_KEYS = {"sgbm": "sgbm", "gbp": "handset", "learned": ""}


def manifest_metrics(rows: Sequence[dict]) -> dict:
    """The rows as flat MANIFEST keys: ``middlebury_<scene>[_<method>]_<measure>`` (no method part for
    ``learned``, the model the MANIFEST entry describes)."""
    out = {}
    for r in rows:
        method = METHOD_KEYS[r["method"]]
        prefix = f"middlebury_{r['scene']}" + (f"_{method}" if method else "")
        for key in ("bad1_nonocc", "bad1_all", "bad1_disc", "bad2_nonocc", "mae", "coverage", "ause", "seconds"):
            if r.get(key) is not None:
                out[f"{prefix}_{key}"] = round(float(r[key]), 4)
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.eval --task stereo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=list(SCENES), choices=SCENES)
    ap.add_argument("--root", default=None, help="data root (default: $GBP_DATA_ROOT, else ../shared/data)")
    ap.add_argument("--png", default=None, metavar="OUTDIR", help="write disparity / error PNGs here")
    ap.add_argument("--no-sgbm", action="store_true", help="skip the OpenCV SGBM column")
    ap.add_argument("--pretrained", default=None, metavar="NAME",
                    help="add a 'learned' column: the shipped stereo model NAME (e.g. gbp_stereo)")
    ap.add_argument("--json", default=None, help="also write the rows as MANIFEST metric keys to this JSON file")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch / OpenCV threads (1 by default: on a shared 2-core machine OpenMP spinning makes 2 "
                         "threads several times slower for the multigrid's small tensors)")
    return ap


def run(argv: Sequence[str] | None = None) -> list[dict]:
    """Parse ``argv``, evaluate, print the table; returns the rows."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    torch.set_num_threads(args.threads)
    methods: dict[str, Method] = {}
    sgbm = None if args.no_sgbm else sgbm_method(args.threads)
    if sgbm is not None:
        methods["sgbm"] = sgbm
    elif not args.no_sgbm:
        print("OpenCV (cv2) not importable: no SGBM column (pip install 'gbp_torch[bench]')")
    methods["gbp"] = HandsetStereo()
    if args.pretrained:
        learned = learned_method(args.pretrained)
        if learned is None:
            raise SystemExit(f"train.eval --task stereo: error: no shipped stereo model {args.pretrained!r} "
                             "in checkpoints/MANIFEST")
        methods["learned"] = learned
    rows = evaluate(methods, args.scenes, args.root, args.png)  # missing data: train.eval reports it in one line
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(manifest_metrics(rows), indent=2, sort_keys=True) + "\n")
    return rows


if __name__ == "__main__":  # the front end, which turns missing data into a one-line error
    from train.eval import main

    main(["--task", "stereo", *sys.argv[1:]])
