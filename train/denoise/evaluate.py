"""Evaluate a denoiser against baselines on BSD68 and Set12 with fixed noise seeds
(``python -m train.eval``, the front end of every task, runs :func:`run` for ``--task denoise``, the default).

    python -m train.eval ckpt=logs/train/runs/<run>/checkpoints/last.ckpt
    python -m train.eval ckpt=... --limit 4 --no-classical           # quick look
    python -m train.eval model=cnn model.net.depth=3 --limit 2        # untrained model (smoke test)
    python -m train.eval --pretrained gbp_denoiser_gaussian --pretrained gbp_denoiser_saltpepper  # shipped models
    python -m train.eval --pretrained gbp_denoiser_nonlocal --pretrained gbp_denoiser_gaussian --bm3d --uint8 \
        --no-classical --conditions set12:gaussian:25                   # against BM3D on 8-bit inputs

``key=value`` arguments are Hydra overrides of conf/train.yaml (``data.root=...``; ``model=...`` rebuilds
the model from the config and loads the checkpoint's weights into it; without ``model`` overrides the model
comes from the checkpoint's saved hyperparameters). ``--pretrained NAME`` adds a column for a model of
checkpoints/MANIFEST, evaluated only on the noise kind it was trained for ("-" elsewhere). Prints
PSNR / SSIM per condition for: the noisy input, a 3x3 median filter, the model, the hand-set GBP
denoiser (``--no-classical`` skips it: ~1.5 s per BSD68 image on 2 CPU cores, more for the 512x512
Set12 images) and extra baselines (``--baseline``, or the
``denoisers`` of :func:`evaluate`); then the uncertainty calibration of the
denoisers that return a variance. Writes noisy / denoised (/ std) PNGs of the first ``--png`` images.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from gbp_torch.io import write_image
from gbp_torch.tasks.denoise.median import MedianDenoiser
from gbp_torch.tasks.denoise.output import DenoiseOutput, as_denoise_output

from ..checkpoint import load_lit_module, overrides_model
from ..config import compose_config, split_overrides
from ..metrics import coverage, psnr, ssim
from .baselines import BM3DBaseline, ClassicalBaseline, Denoiser, PretrainedBaseline, import_denoiser
from .conditions import Condition, default_conditions, parse_conditions
from .datasets import FixedNoiseDataset, load_dataset


def evaluate(denoisers: Mapping[str, Denoiser], root: str | None = None,
             conditions: Sequence[Condition] | None = None, limit: int | None = None, seed: int = 0,
             sp_sigma: float = 50.0, device: str | torch.device = "cpu", out_dir: str | Path | None = None,
             n_png: int = 2, uint8: bool = False) -> list[dict]:
    """Run every denoiser on every condition; one row per condition:
    ``{"condition", "n", "psnr": {name: dB}, "ssim": {name: ...}, "coverage": {name: ...}, "seconds": {...},
    "images": [image names], "psnr_per_image": {name: [dB per image]}}``
    with name ``noisy`` for the input. Metrics are means over images; noise is fixed by (seed, image index).
    A denoiser whose ``for_condition(cond)`` returns None is skipped on that condition. ``uint8``: every
    denoiser gets the noisy image rounded and clipped to 8 bits (what a PNG on disk holds)."""
    conditions = list(conditions or default_conditions())
    cache: dict[str, list] = {}
    rows = []
    for cond in conditions:
        if cond.dataset not in cache:
            cache[cond.dataset] = load_dataset(cond.dataset, root, limit)
        ds = FixedNoiseDataset(cache[cond.dataset], cond.noise(sp_sigma), seed, cond.dataset)
        acc = {k: {} for k in ("psnr", "ssim", "coverage", "seconds")}
        for i in range(len(ds)):
            item = ds[i]
            clean, noisy = item["clean"][None].to(device), item["noisy"][None].to(device)
            if uint8:
                noisy = (noisy * 255.0).round().clamp(0.0, 255.0) / 255.0
            sigma = item["sigma"][None].to(device)
            outs = {"noisy": DenoiseOutput(noisy)}
            for name, fn in denoisers.items():
                fn = fn.for_condition(cond) if hasattr(fn, "for_condition") else fn
                if fn is None:
                    continue
                t0 = time.perf_counter()
                with torch.no_grad():
                    outs[name] = as_denoise_output(fn(noisy, sigma))
                acc["seconds"][name] = acc["seconds"].get(name, 0.0) + time.perf_counter() - t0
            for name, out in outs.items():
                acc["psnr"].setdefault(name, []).append(float(psnr(out.mean, clean)[0]))
                acc["ssim"].setdefault(name, []).append(float(ssim(out.mean, clean)[0]))
                if out.var is not None:
                    acc["coverage"].setdefault(name, []).append(float(coverage(out.mean, out.var, clean)[0]))
            if out_dir is not None and i < n_png:
                _write_pngs(Path(out_dir) / cond.label.replace(" ", "_").replace("%", "pct"), item["name"], outs)
        row = {"condition": cond.label, "n": len(ds), "seconds": acc["seconds"],
               "images": [ds.images[i][0] for i in range(len(ds))], "psnr_per_image": acc["psnr"]}
        for k in ("psnr", "ssim", "coverage"):
            row[k] = {name: sum(v) / len(v) for name, v in acc[k].items()}
        rows.append(row)
    return rows


def _write_pngs(folder: Path, image: str, outs: Mapping[str, DenoiseOutput]) -> None:
    for name, out in outs.items():
        write_image(folder / f"{image}_{name}.png", out.mean[0, 0])
        if out.var is not None:
            std = out.var[0, 0].clamp_min(0).sqrt()
            write_image(folder / f"{image}_{name}_std.png", std / std.max().clamp_min(1e-12))


def format_table(rows: Sequence[dict]) -> str:
    """PSNR (dB) / SSIM per condition and denoiser, then coverage for denoisers with a variance."""
    names = list(dict.fromkeys(n for r in rows for n in r["psnr"]))
    w = max(14, *(len(n) + 2 for n in names))

    def cell(r: dict, n: str) -> str:
        return f"{r['psnr'][n]:>{w - 8}.2f} / {r['ssim'][n]:.3f}" if n in r["psnr"] else f"{'-':>{w}s}"

    lines = ["PSNR dB / SSIM (mean over images)",
             f"{'condition':18s} {'n':>3s} " + " ".join(f"{n:>{w}s}" for n in names)]
    lines += [f"{r['condition']:18s} {r['n']:3d} " + " ".join(cell(r, n) for n in names) for r in rows]
    var_names = [n for n in names if any(n in r["coverage"] for r in rows)]
    if var_names:
        lines += ["", "calibration: fraction of pixels with |error| < 1.96 predicted std (0.95 = calibrated)",
                  f"{'condition':18s} " + " ".join(f"{n:>{w}s}" for n in var_names)]
        lines += [f"{r['condition']:18s} " + " ".join(f"{r['coverage'][n]:>{w}.3f}" if n in r["coverage"]
                                                       else f"{'-':>{w}s}" for n in var_names) for r in rows]
    secs = {n: sum(r["seconds"].get(n, 0.0) for r in rows) for n in names if n != "noisy"}
    lines += ["", "seconds in total: " + ", ".join(f"{n} {s:.1f}" for n, s in secs.items())]
    return "\n".join(lines)


def load_model(ckpt: str | None, overrides: Sequence[str] = (), device: str = "cpu"):
    """The DenoiseLitModule to evaluate (eval mode), and the composed train config.

    Without ``model`` overrides and with a checkpoint, the model is rebuilt from the checkpoint's
    hyperparameters; otherwise from the composed config, with the checkpoint's weights if given."""
    from .lit_module import DenoiseLitModule

    cfg = compose_config(overrides)
    return load_lit_module(DenoiseLitModule, cfg, ckpt, rebuild=overrides_model(overrides), device=device), cfg


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m train.eval [--task denoise]", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="ckpt=PATH and Hydra overrides of conf/train.yaml")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each dataset")
    ap.add_argument("--no-classical", action="store_true", help="skip the (slow) hand-set GBP baseline")
    ap.add_argument("--classical-iters", type=int, default=30,
                    help="multigrid FCG steps per IRLS solve of the hand-set baseline")
    ap.add_argument("--baseline", action="append", default=[], metavar="NAME=MODULE:ATTR",
                    help="extra column: a Denoiser callable, or a class built without arguments (repeatable)")
    ap.add_argument("--sp-sigma", type=float, default=50.0,
                    help="noise level (0-255) given to the model and GBP baseline for salt-and-pepper")
    ap.add_argument("--seed", type=int, default=0, help="noise seed")
    ap.add_argument("--conditions", default=None, metavar="SET:KIND:LEVEL,...",
                    help="subset of conditions, e.g. bsd68:gaussian:25,bsd68:saltpepper:20 (default: all)")
    ap.add_argument("--pretrained", action="append", default=[], metavar="NAME",
                    help="extra column: a shipped model of checkpoints/MANIFEST (repeatable)")
    ap.add_argument("--blind", action="store_true",
                    help="also run the --pretrained models trained on many noise levels without sigma ('NAME/blind')")
    ap.add_argument("--self-ensemble", action="store_true",
                    help="also run each --pretrained model as a self-ensemble of 8 flips / quarter turns ('NAME/x8')")
    ap.add_argument("--bm3d", action="store_true", help="add a BM3D column (Gaussian noise; needs the bm3d package)")
    ap.add_argument("--uint8", action="store_true",
                    help="give every denoiser the noisy image rounded and clipped to 8 bits (as a PNG holds it)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("results/eval"), help="folder for PNGs and results.json")
    ap.add_argument("--png", type=int, default=2, help="images per condition written as PNGs")
    return ap


def _denoisers(args: argparse.Namespace, lit, ckpt: str | None) -> dict[str, Denoiser]:
    """The table's columns: median3, the model (unless only shipped models are asked for), the shipped
    models (and their blind / x8 twins), the hand-set GBP denoiser and the ``--baseline`` callables."""
    denoisers: dict[str, Denoiser] = {"median3": MedianDenoiser(3)}
    if ckpt is not None or not args.pretrained:
        if ckpt is None:
            print("warning: no ckpt=...; evaluating an untrained model")
        denoisers["model"] = lit
    for name in args.pretrained:
        denoisers[name] = PretrainedBaseline(name, args.device)
        if args.blind and denoisers[name].any_sigma:
            denoisers[f"{name}/blind"] = PretrainedBaseline(name, args.device, blind=True)
        if args.self_ensemble:
            denoisers[f"{name}/x8"] = PretrainedBaseline(name, args.device, self_ensemble=True)
    if not args.no_classical:
        denoisers["gbp_classical"] = ClassicalBaseline(iters=args.classical_iters)
    if args.bm3d:
        denoisers["bm3d"] = BM3DBaseline()
    for spec in args.baseline:
        name, _, target = spec.partition("=")
        denoisers[name] = import_denoiser(target)
    return denoisers


def run(argv: Sequence[str] | None = None) -> list[dict]:
    """The command line (see the module docstring); returns the rows of :func:`evaluate`."""
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        ckpt, overrides = split_overrides(args.overrides)
        conditions = parse_conditions(args.conditions) if args.conditions else None
    except ValueError as e:
        ap.error(str(e))
    lit, cfg = load_model(ckpt, overrides, args.device)
    denoisers = _denoisers(args, lit, ckpt)
    rows = evaluate(denoisers, root=cfg.data.root, limit=args.limit, seed=args.seed, sp_sigma=args.sp_sigma,
                    conditions=conditions, device=args.device, out_dir=args.out, n_png=args.png,
                    uint8=args.uint8)
    model_name = ckpt or ("untrained" if "model" in denoisers else "-")
    print(f"model: {model_name}; noise seed {args.seed}; PNGs in {args.out}/")
    print(format_table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"ckpt": ckpt, "rows": rows}, indent=2))
    return rows
