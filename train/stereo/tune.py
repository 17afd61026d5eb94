"""Coordinate-descent tuning of the hand-set stereo model on synthetic pairs (never Middlebury).

    python -m train.stereo.tune [--n 8] [--seed 100] [--rounds 1] [--keys cost.census ...] [scene options]

Each round sweeps one setting at a time over a short list, keeps the value with the lowest mean
bad > 1 px (nonocc) on the pairs of :func:`train.stereo.synth_bench.synthetic_set`, and prints it. The scene
options (``--tint``, ``--floor``, ``--layers``, ``--camouflage``, ``--thin``, ``--supersample``) are
:func:`train.stereo.synth_bench.add_scene_options`'.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from gbp_torch.tasks.stereo.cost import CostConfig
from gbp_torch.tasks.stereo.factors import HandsetFactors
from gbp_torch.tasks.stereo.handset import HandsetStereo, SolveSchedule
from gbp_torch.tasks.stereo.sgm import SGMConfig

from .synth_bench import add_scene_options, evaluate_on, scene_config, synthetic_set

GRID = {
    "factors.smooth": [0.03, 0.06, 0.1, 0.2, 0.4, 0.8],
    "factors.edge_t": [0.01, 0.02, 0.04, 0.08],
    "factors.data_k_px": [0.75, 1.5, 3.0],
    "factors.smooth_k_px": [0.125, 0.25, 0.5, 1.0],
    "factors.conf_power": [0.5, 1.0, 2.0],
    "factors.floor": [0.005, 0.02, 0.05, 0.15],
    "cost.aggregate_radius": [2, 3, 4],
    "cost.census": [5, 7],
    "cost.gradient_weight": [0.0, 0.5, 1.0],
    "cost.guided_eps": [0.0, 0.0003, 0.001, 0.003, 0.01],
    "cost.window_shift": [0, 1, 2],
    "sgm.paths": [0, 4, 8],
    "sgm.p1": [0.005, 0.01, 0.03, 0.06],
    "sgm.p2": [0.15, 0.3, 0.6, 1.0],
    "sgm.edge_t": [0.0, 0.02, 0.05, 0.1],
    "schedule.theta": [(0.0005, 0.005, 0.2), (0.002, 0.02, 0.2), (0.01, 0.05, 0.3)],
    "schedule.outer": [2, 3, 4],
    "schedule.median": [(1, 1), (1, 7), (5, 7), (7, 7), (9, 9)],  # samples per side, see median_dilation
    "schedule.median_dilation": [1, 2, 3],
    "schedule.median_sigma": [0.02, 0.03, 0.05, 0.1],
}


def build(settings: dict) -> HandsetStereo:
    """A model from ``{"factors.smooth": 0.1, "cost.census": 5, ...}``."""
    groups: dict[str, dict] = {"factors": {}, "cost": {}, "schedule": {}, "sgm": {}}
    for key, val in settings.items():
        g, name = key.split(".")
        groups[g][name] = val
    cost = CostConfig(**groups["cost"], sgm=SGMConfig(**groups["sgm"]))
    return HandsetStereo(cost=cost, factors=HandsetFactors(**groups["factors"]),
                         schedule=SolveSchedule(**groups["schedule"]))


def defaults() -> dict:
    """The current defaults of every swept setting."""
    model = HandsetStereo()
    out = {}
    for key in GRID:
        g, name = key.split(".")
        obj = model.cost.sgm if g == "sgm" else getattr(model, g)
        out[key] = getattr(obj, name) if not dataclasses.is_dataclass(obj) else dataclasses.asdict(obj)[name]
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    add_scene_options(ap)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keys", nargs="*", default=None, help="settings to sweep (default: all)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = synthetic_set(args.n, args.seed, config=scene_config(args))
    best = defaults()
    score = evaluate_on(build(best), pairs)
    print("start", score, flush=True)
    for _ in range(args.rounds):
        for key in args.keys or GRID:
            for val in GRID[key]:
                if val == best[key]:
                    continue
                trial = dict(best, **{key: val})
                s = evaluate_on(build(trial), pairs)
                print(f"  {key}={val}: bad1 {s['bad1']:.2f} mae {s['mae']:.3f} ({s['seconds']:.2f} s)", flush=True)
                if s["bad1"] < score["bad1"]:
                    best, score = trial, s
            print(f"{key} -> {best[key]} (bad1 {score['bad1']:.2f})", flush=True)
    print("best", best, score)


if __name__ == "__main__":
    main()
