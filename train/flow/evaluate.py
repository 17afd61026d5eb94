"""Evaluate flow models on Middlebury (8 training scenes), Sintel (3 pairs, clean and final) and KITTI 2015
(1 pair) against OpenCV baselines (``python -m train.eval --task flow``).

    python -m train.eval --task flow [--datasets middlebury sintel kitti] [--png OUTDIR] [--no-baselines]

Prints per sequence the end-point error (EPE, px) and angular error (AE, degrees) of every method, the
means, Sintel all / non-occluded, KITTI EPE and Fl-all (%), the coverage of the hand-set model's
calibrated std on non-occluded pixels (where a mask exists), and the mean time per pair. Columns:
OpenCV DIS (medium preset), Farneback, DeepFlow (opencv-contrib), hand-set GBP and learned GBP (the
shipped ``gbp_torch.pretrained.flow()``, when its checkpoint is present; ``--no-learned`` skips it).
``--png`` writes the colour-coded flows (torchvision's ``flow_to_image``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch

from gbp_torch.tasks.flow import datasets as flow_data
from gbp_torch.tasks.flow.handset import HandsetFlow
from gbp_torch.tasks.flow.metrics import epe, fl_all, mean_angular_error, std_coverage, std_sparsification

from .baselines import available_baselines

DATASETS = ("middlebury", "sintel", "kitti")


def load(name: str, root: str | None = None) -> list[tuple[str, flow_data.FlowSample]]:
    """(group, sample) pairs of a dataset; Sintel gives two groups, clean and final."""
    if name == "middlebury":
        return [("middlebury", s) for s in flow_data.middlebury(root)]
    if name == "sintel":
        return [(f"sintel-{p}", s) for p in ("clean", "final") for s in flow_data.sintel(p, root)]
    if name == "kitti":
        return [("kitti", s) for s in flow_data.kitti(root)]
    raise ValueError(f"unknown dataset {name!r}; choose from {DATASETS}")


def score(out, sample: flow_data.FlowSample) -> dict[str, float]:
    """EPE / AE over all valid pixels, EPE over non-occluded ones, Fl-all, coverage and AUSE of the std."""
    gt, valid = sample.flow[None], sample.valid[None]
    flow = out.flow.to(gt.dtype)
    row = {"epe": float(epe(flow, gt, valid)[0]), "ae": float(mean_angular_error(flow, gt, valid)[0]),
           "fl": 100 * float(fl_all(flow, gt, valid)[0])}
    if sample.nonocc is not None:
        row["epe_noc"] = float(epe(flow, gt, sample.nonocc[None])[0])
    std = getattr(out, "std", None)
    if std is not None:
        mask = sample.nonocc if sample.nonocc is not None else sample.valid
        std = std.to(gt.dtype)
        row["cov"] = float(std_coverage(flow, std, gt, mask[None])[0])
        row["ause"] = float(std_sparsification(flow, std, gt, mask[None])[0])
    return row


def evaluate(methods: Mapping[str, Callable], datasets: Sequence[str] = DATASETS, root: str | None = None,
             png: str | Path | None = None) -> list[dict]:
    """Run every method on every pair; one row per pair: ``{"group", "name", "scores": {method: {...}},
    "seconds": {method: s}}``."""
    rows = []
    for ds in datasets:
        for group, sample in load(ds, root):
            f1, f2 = sample.frame1[None], sample.frame2[None]
            row = {"group": group, "name": sample.name, "scores": {}, "seconds": {}}
            for name, method in methods.items():
                t0 = time.perf_counter()
                with torch.no_grad():
                    out = method(f1, f2)
                row["seconds"][name] = time.perf_counter() - t0
                row["scores"][name] = score(out, sample)
                if png is not None:
                    _write_png(Path(png) / group / f"{sample.name}_{name}.png", out.flow)
            if png is not None:
                _write_png(Path(png) / group / f"{sample.name}_gt.png", torch.nan_to_num(sample.flow[None]))
            rows.append(row)
    return rows


def _write_png(path: Path, flow: torch.Tensor) -> None:
    from torchvision.io import write_png
    from torchvision.utils import flow_to_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(flow_to_image(flow[0].float().cpu()), str(path))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def format_table(rows: list[dict], methods: Sequence[str]) -> str:
    """The printed report: per group a block of per-sequence rows and a mean row, then times."""
    lines = []
    for group in dict.fromkeys(r["group"] for r in rows):
        block = [r for r in rows if r["group"] == group]
        keys = [("epe", "EPE"), ("ae", "AE")]
        if group.startswith("sintel"):
            keys.append(("epe_noc", "EPE noc"))
        if group == "kitti":
            keys = [("epe", "EPE"), ("fl", "Fl-all%"), ("epe_noc", "EPE noc")]
        header = f"{group:<14}" + "".join(f"{m + ' ' + label:>{max(12, len(m) + len(label) + 2)}}"
                                          for _, label in keys for m in methods)
        lines += ["", header, "-" * len(header)]
        for r in block + [None]:
            name = "mean" if r is None else r["name"]
            cells = []
            for key, label in keys:
                for m in methods:
                    vals = [x["scores"][m].get(key, float("nan")) for x in (block if r is None else [r])]
                    cells.append(f"{_mean(vals):>{max(12, len(m) + len(label) + 2)}.3f}")
            lines.append(f"{name:<14}" + "".join(cells))
        covs = {m: [x["scores"][m]["cov"] for x in block if "cov" in x["scores"][m]] for m in methods}
        covs = {m: c for m, c in covs.items() if c}
        if covs:
            per = "  ".join(f"{m} {_mean(c):.3f}" for m, c in covs.items())
            lines.append(f"{'std coverage':<14}{per}  (|error| < 1.96 std, "
                         f"{'non-occluded' if block[0]['scores'] and group != 'middlebury' else 'known'} pixels)")
        auses = {m: [x["scores"][m]["ause"] for x in block if "ause" in x["scores"][m]] for m in methods}
        auses = {m: a for m, a in auses.items() if a}
        if auses:
            per = "  ".join(f"{m} {_mean(a):.3f}" for m, a in auses.items())
            lines.append(f"{'std AUSE':<14}{per}  (sparsification error of the std against the EPE; 0: it orders them)")
        secs = "  ".join(f"{m} {_mean([x['seconds'][m] for x in block]):.2f}" for m in methods)
        lines.append(f"{'s / pair':<14}{secs}")
    return "\n".join(lines)


def summary(rows: list[dict], methods: Sequence[str]) -> dict:
    """``{group: {method: {measure: mean over the group's pairs, "seconds": mean time}}}``."""
    out: dict = {}
    for group in dict.fromkeys(r["group"] for r in rows):
        block = [r for r in rows if r["group"] == group]
        out[group] = {}
        for m in methods:
            keys = dict.fromkeys(k for x in block for k in x["scores"][m])
            out[group][m] = {k: round(_mean([x["scores"][m][k] for x in block if k in x["scores"][m]]), 4)
                             for k in keys}
            out[group][m]["seconds"] = round(_mean([x["seconds"][m] for x in block]), 3)
    return out


def learned_model(name: str | None = None):
    """The shipped learned flow model (eval mode), or None (with a note) when it is not available."""
    from gbp_torch import pretrained

    try:
        return pretrained.flow(name or pretrained.DEFAULT_FLOW)
    except (AttributeError, KeyError, FileNotFoundError) as e:
        print(f"(no learned GBP column: {str(e).splitlines()[0]})")
        return None


def run(argv: Sequence[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m train.eval --task flow", description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--root", default=None, help="data root (default $GBP_DATA_ROOT or ../shared/data)")
    ap.add_argument("--png", default=None, help="write colour-coded flows under this folder")
    ap.add_argument("--no-baselines", action="store_true", help="skip the OpenCV columns")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", default=None, help="also write the per-group means per method to this JSON file")
    ap.add_argument("--no-learned", action="store_true", help="skip the learned GBP column")
    ap.add_argument("--model", default=None, help="pretrained flow model of the learned column (default gbp_flow)")
    args = ap.parse_args(list(argv or []))
    if args.threads:
        torch.set_num_threads(args.threads)
    methods: dict[str, Callable] = {}
    if not args.no_baselines:
        methods.update(available_baselines(["dis", "farneback", "deepflow"]))
    methods["gbp-handset"] = HandsetFlow().eval()
    if not args.no_learned:
        learned = learned_model(args.model)
        if learned is not None:
            methods["gbp-learned"] = learned
    rows = evaluate(methods, args.datasets, args.root, args.png)
    print(format_table(rows, list(methods)))
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(summary(rows, list(methods)), indent=2, sort_keys=True) + "\n")
    return rows
