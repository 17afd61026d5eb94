"""Evaluate a denoiser against baselines on BSD68 and Set12 with fixed noise seeds.

    python -m train.eval ckpt=logs/train/runs/<run>/checkpoints/last.ckpt
    python -m train.eval ckpt=... --limit 4 --no-classical           # quick look
    python -m train.eval model=cnn model.net.depth=3 --limit 2        # untrained model (smoke test)
    python -m train.eval --pretrained gbp_denoiser_gaussian --pretrained gbp_denoiser_saltpepper  # shipped models

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gbp_torch.io import write_image
from gbp_torch.tasks.denoise.classical import ClassicalDenoiser
from gbp_torch.tasks.denoise.median import MedianDenoiser
from gbp_torch.tasks.denoise.output import DenoiseOutput, as_denoise_output

from .datamodules import FixedNoiseDataset, NoiseSpec, load_dataset
from .metrics import coverage, psnr, ssim

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: A denoiser: (noisy (B, 1, H, W), sigma (B,)) -> tensor (B, 1, H, W) or object with .mean/.var.
Denoiser = Callable[[Tensor, Tensor], object]


@dataclass(frozen=True)
class Condition:
    """One evaluation setting: a dataset and a noise (``level``: sigma on 0-255, or a rate in %)."""

    dataset: str
    kind: str  # "gaussian" | "saltpepper"
    level: float

    @property
    def label(self) -> str:
        return f"{self.dataset} " + (f"sigma {self.level:g}" if self.kind == "gaussian" else f"s&p {self.level:g}%")

    def noise(self, sp_sigma: float) -> NoiseSpec:
        if self.kind == "gaussian":
            return NoiseSpec("gaussian", sigma=self.level)
        return NoiseSpec("saltpepper", sigma=sp_sigma, rate=self.level / 100.0)


def default_conditions() -> list[Condition]:
    """BSD68 and Set12 at sigma 15/25/50, BSD68 salt-and-pepper at 10/20/30 %."""
    gauss = [Condition(d, "gaussian", s) for d in ("bsd68", "set12") for s in (15.0, 25.0, 50.0)]
    return gauss + [Condition("bsd68", "saltpepper", r) for r in (10.0, 20.0, 30.0)]


class ClassicalBaseline:
    """:class:`ClassicalDenoiser` (GBP, hand-set robust smoothness) as a Denoiser (uses sigma[0])."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.denoiser = ClassicalDenoiser(**kwargs)

    def for_condition(self, cond: Condition) -> ClassicalBaseline:
        """The baseline with the parameters tuned for ``cond``'s noise kind (and rate)."""
        if cond.kind == "gaussian":
            return self
        return ClassicalBaseline(**{**self.kwargs, "noise": "saltpepper", "rate": cond.level})

    def __call__(self, noisy: Tensor, sigma: Tensor) -> DenoiseOutput:
        mean, var = self.denoiser(noisy[:, 0], float(sigma.flatten()[0]))
        return DenoiseOutput(mean[:, None], var[:, None])


class PretrainedBaseline:
    """A shipped model (:func:`gbp_torch.pretrained.load`) as a Denoiser, only for the noise it was trained
    on (as its manifest entry records): salt-and-pepper, Gaussian at one sigma, or Gaussian of any sigma.
    ``blind``: give it no sigma; ``self_ensemble``: average over the 8 flips / quarter turns."""

    def __init__(self, name: str, device: str | torch.device = "cpu", blind: bool = False,
                 self_ensemble: bool = False):
        from gbp_torch.pretrained import load, manifest
        from gbp_torch.tasks.denoise.ensemble import SelfEnsemble

        self.model, self.blind = load(name, device), blind
        if self_ensemble:
            self.model = SelfEnsemble(self.model)
        self.noise = (manifest()[name].get("training", {}).get("data") or {}).get("noise") or {}

    @property
    def any_sigma(self) -> bool:
        """Trained on a range of Gaussian noise levels (so it can also run blind)."""
        return self.noise.get("kind") == "blind"

    def for_condition(self, cond: Condition) -> PretrainedBaseline | None:
        kind = self.noise.get("kind", "gaussian")
        if cond.kind == "saltpepper":
            return self if kind == "saltpepper" else None
        if kind == "gaussian":
            return self if cond.level == float(self.noise.get("sigma", cond.level)) else None
        return self if kind == "blind" else None

    def __call__(self, noisy: Tensor, sigma: Tensor) -> DenoiseOutput:
        return as_denoise_output(self.model(noisy, None if self.blind else sigma))


def evaluate(denoisers: Mapping[str, Denoiser], root: str | None = None,
             conditions: Sequence[Condition] | None = None, limit: int | None = None, seed: int = 0,
             sp_sigma: float = 50.0, device: str | torch.device = "cpu", out_dir: str | Path | None = None,
             n_png: int = 2) -> list[dict]:
    """Run every denoiser on every condition; one row per condition:
    ``{"condition", "n", "psnr": {name: dB}, "ssim": {name: ...}, "coverage": {name: ...}, "seconds": {...}}``
    with name ``noisy`` for the input. Metrics are means over images; noise is fixed by (seed, image index).
    A denoiser whose ``for_condition(cond)`` returns None is skipped on that condition."""
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
        row = {"condition": cond.label, "n": len(ds), "seconds": acc["seconds"]}
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
    """The LightningModule to evaluate (eval mode), and the composed train config.

    Without ``model`` overrides and with a checkpoint, the model is rebuilt from the checkpoint's
    hyperparameters; otherwise from the composed config, with the checkpoint's weights if given."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from .lit_module import DenoiseLitModule

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    if ckpt and not any(o.lstrip("+~").startswith("model") for o in overrides):
        lit = DenoiseLitModule.load_from_checkpoint(ckpt, map_location=device)
    else:
        lit = instantiate(cfg.model, _recursive_=False)
        if ckpt:
            state = torch.load(ckpt, map_location=device, weights_only=True)["state_dict"]
            lit.load_state_dict(state)
    return lit.to(device).eval(), cfg


def _import_denoiser(target: str) -> Denoiser:
    """``pkg.module:attr`` -> the attribute (a class is instantiated without arguments)."""
    import importlib
    import inspect

    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"--baseline wants NAME=package.module:attribute, got {target!r}")
    obj = getattr(importlib.import_module(module), attr)
    return obj() if inspect.isclass(obj) else obj


def run(argv: Sequence[str] | None = None) -> list[dict]:
    """The command line (see the module docstring); returns the rows of :func:`evaluate`."""
    ap = argparse.ArgumentParser(prog="python -m train.eval", description=__doc__,
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("results/eval"), help="folder for PNGs and results.json")
    ap.add_argument("--png", type=int, default=2, help="images per condition written as PNGs")
    args = ap.parse_args(argv)

    ckpt = None
    overrides = []
    for o in args.overrides:
        if o.startswith("ckpt="):
            ckpt = o.split("=", 1)[1] or None
        elif "=" in o:
            overrides.append(o)
        else:
            ap.error(f"expected key=value, got {o!r}")
    lit, cfg = load_model(ckpt, overrides, args.device)
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
    for spec in args.baseline:
        name, _, target = spec.partition("=")
        denoisers[name] = _import_denoiser(target)
    conditions = None
    if args.conditions:
        conditions = []
        for spec in args.conditions.split(","):
            parts = spec.split(":")
            if len(parts) != 3 or parts[1] not in ("gaussian", "saltpepper"):
                ap.error(f"--conditions wants SET:gaussian|saltpepper:LEVEL items, got {spec!r}")
            conditions.append(Condition(parts[0], parts[1], float(parts[2])))
    rows = evaluate(denoisers, root=cfg.data.root, limit=args.limit, seed=args.seed, sp_sigma=args.sp_sigma,
                    conditions=conditions,
                    device=args.device, out_dir=args.out, n_png=args.png)
    model_name = ckpt or ("untrained" if "model" in denoisers else "-")
    print(f"model: {model_name}; noise seed {args.seed}; PNGs in {args.out}/")
    print(format_table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"ckpt": ckpt, "rows": rows}, indent=2))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    run(argv)


if __name__ == "__main__":
    main()
