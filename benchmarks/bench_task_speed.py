"""Time per pair of the shipped stereo and flow models as a user runs them, beside OpenCV in the same process.

    python benchmarks/bench_task_speed.py [--threads 2] [--repeat 3] [--task flow --task stereo]

Each GBP timing covers what one call of the public API costs a user: reading the two PNGs
(``gbp_torch.io.read_image``), loading the model (``gbp_torch.pretrained.flow()`` /
``stereo()``, the CLI defaults) and running it; best of ``--repeat``. A second row times the CLI itself in a new
process (``gbp-flow A B -o F.flo``, ``gbp-stereo L R -o D.pfm --max-disp 64``): what a user waits for, Python's
imports of torch and the library included. The OpenCV methods (optional
``bench`` extra) get the already-read 8-bit gray frames, so their figure is compute only.

- flow: Middlebury RubberWhale (584 x 388), against DIS (medium preset) and DeepFlow.
  Target (issue 16): <= 3 s on 2 CPU cores.
- stereo: Middlebury 2003 teddy (450 x 375, 64 disparities), against SGBM.
  Target (issue 15): <= 2 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gbp_torch import pretrained  # noqa: E402
from gbp_torch.io.image import read_image  # noqa: E402
from gbp_torch.paths import dataset_dir  # noqa: E402

TARGETS = {"flow": 3.0, "stereo": 2.0}


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        with torch.no_grad():
            fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cli_seconds(main: str, args: list[str], output: str, repeat: int, threads: int) -> float:
    """Best wall time of ``repeat`` runs of the CLI entry point ``gbp_torch.cli.<main>`` in a new process, writing
    ``output`` (a file name) in a temporary folder, with ``threads`` OpenMP threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    code = f"from gbp_torch.cli import {main}; {main}()"
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, *args, "-o", str(Path(tmp) / output)], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    return min(times)


def frames(paths: tuple[Path, Path]) -> tuple[torch.Tensor, torch.Tensor]:
    return read_image(paths[0])[None], read_image(paths[1])[None]


def flow_rows(repeat: int, threads: int) -> list[tuple[str, float]]:
    folder = dataset_dir("flow/middlebury") / "RubberWhale"
    paths = folder / "frame10.png", folder / "frame11.png"

    def gbp():
        f1, f2 = frames(paths)
        return pretrained.flow()(f1, f2)

    rows = [(f"gbp_torch flow ({pretrained.DEFAULT_FLOW}, read + load + run)", best_of(gbp, repeat)),
            ("gbp-flow CLI, new process (imports + ... + write .flo)",
             cli_seconds("flow_main", [str(p) for p in paths], "flow.flo", repeat, threads))]
    try:
        from train.flow.baselines import available_baselines

        f1, f2 = frames(paths)
        for name, method in available_baselines(["dis", "deepflow"]).items():
            rows.append((f"OpenCV {name}", best_of(lambda m=method: m(f1, f2), repeat)))
    except ImportError:
        rows.append(("OpenCV (not installed: pip install -e '.[bench]')", float("nan")))
    return rows


def stereo_rows(repeat: int, threads: int) -> list[tuple[str, float]]:
    folder = dataset_dir("stereo/middlebury2003") / "teddy"
    paths = folder / "left.png", folder / "right.png"

    def gbp():
        left, right = frames(paths)
        return pretrained.stereo()(left, right, 64)

    rows = [(f"gbp_torch stereo ({pretrained.DEFAULT_STEREO}, read + load + run)", best_of(gbp, repeat)),
            ("gbp-stereo CLI, new process (imports + ... + write .pfm)",
             cli_seconds("stereo_main", [str(p) for p in paths] + ["--max-disp", "64"], "disp.pfm", repeat, threads))]
    from train.stereo.evaluate import sgbm_method

    sgbm = sgbm_method(threads)
    if sgbm is None:
        rows.append(("OpenCV SGBM (not installed: pip install -e '.[bench]')", float("nan")))
    else:
        left, right = frames(paths)
        rows.append(("OpenCV SGBM", best_of(lambda: sgbm(left, right, 64), repeat)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--task", action="append", choices=sorted(TARGETS), help="default: both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with contextlib.suppress(ImportError):  # OpenCV is optional (the bench extra)
        import cv2

        cv2.setNumThreads(args.threads)
    print(f"{args.threads} threads, best of {args.repeat}")
    print(f"{'task':<7}{'method':<58}{'s / pair':>9}")
    for task in args.task or sorted(TARGETS):
        rows = flow_rows(args.repeat, args.threads) if task == "flow" else stereo_rows(args.repeat, args.threads)
        for i, (name, seconds) in enumerate(rows):
            note = f"   target <= {TARGETS[task]:.0f} s: {'met' if seconds <= TARGETS[task] else 'missed'}" \
                if i == 0 else ""
            print(f"{task:<7}{name:<58}{seconds:>9.2f}{note}")


if __name__ == "__main__":
    main()
