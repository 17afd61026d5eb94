"""The main job on shipped data: denoising, stereo and optical flow with the shipped GBP models.

Adds Gaussian noise (fixed seed) to each image in ``samples/denoise``, then
compares a 3x3 median filter, the hand-set GBP denoiser and the pretrained
(learned) multigrid-GBP denoiser. Writes ``<name>_noisy.png``,
``<name>_classical.png``, ``<name>_learned.png`` and ``<name>_std.png`` (the
learned model's per-pixel standard deviation, scaled to its maximum) and
prints a PSNR table with the learned model's uncertainty calibration
(fraction of pixels with |error| < 1.96 predicted std), and one row for a colour photo (the shipped
RubberWhale frame), denoised as R, G and B separately and in the opponent colour space
(:class:`~gbp_torch.tasks.denoise.colour.ColourDenoiser`). Then the default stereo model on the shipped
tsukuba pair and the default flow model on the shipped RubberWhale crop: one row each (bad > 1 px /
end-point error against the ground truth, coverage, time) and colour PNGs of the results.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .io import read_gray, write_image
from .metrics import coverage, psnr_db
from .paths import samples_dir
from .pretrained import DEFAULT_DENOISER, denoiser, names_of
from .tasks.denoise.classical import ClassicalDenoiser
from .vision import median_filter


def run_demo(out_dir: Path, sigma255: float = 25.0, seed: int = 0, model: str = DEFAULT_DENOISER) -> list[dict]:
    """Denoise every shipped sample; return one row of metrics per image."""
    images = sorted((samples_dir() / "denoise").glob("*.png"))
    if not images:
        raise FileNotFoundError(f"no sample images in {samples_dir() / 'denoise'}")
    sigma = sigma255 / 255.0
    learned, classical = denoiser(model), ClassicalDenoiser()
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for path in images:
        clean = read_gray(path)
        noisy = clean + sigma * torch.randn(clean.shape, generator=gen)
        t0 = time.perf_counter()
        with torch.no_grad():
            out = learned(noisy[None, None], torch.tensor([sigma]))
        seconds = time.perf_counter() - t0
        hand_set, _ = classical(noisy[None], sigma)
        mean, std = out.mean[0, 0], out.var[0, 0].sqrt()
        write_image(out_dir / f"{path.stem}_noisy.png", noisy)
        write_image(out_dir / f"{path.stem}_classical.png", hand_set[0])
        write_image(out_dir / f"{path.stem}_learned.png", mean)
        write_image(out_dir / f"{path.stem}_std.png", std / std.max())
        rows.append({
            "image": path.stem, "size": f"{clean.shape[1]}x{clean.shape[0]}", "noisy_db": psnr_db(noisy, clean),
            "median_db": psnr_db(median_filter(noisy[None, None], 3)[0, 0], clean),
            "classical_db": psnr_db(hand_set[0], clean), "learned_db": psnr_db(mean, clean),
            "coverage95": float(coverage(out.mean[0], out.var[0], clean[None])[0]), "seconds": seconds,
        })
    return rows


def run_colour_demo(out_dir: Path, sigma255: float = 25.0, seed: int = 0, model: str = DEFAULT_DENOISER) -> dict:
    """Denoise the shipped colour frame (``samples/flow/rubberwhale_frame10.png``) channel by channel and in the
    opponent space; PSNR of both, coverage and time of the latter."""
    from .io import read_image
    from .tasks.denoise.colour import ColourDenoiser

    clean = read_image(samples_dir() / "flow" / "rubberwhale_frame10.png")[None]
    sigma = sigma255 / 255.0
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    gray = denoiser(model)
    with torch.no_grad():
        separate = torch.cat([gray(noisy[:, c:c + 1], torch.tensor([sigma])).mean for c in range(3)], 1)
        t0 = time.perf_counter()
        out = ColourDenoiser(gray)(noisy, sigma)
        seconds = time.perf_counter() - t0
    write_image(out_dir / "rubberwhale_noisy.png", noisy[0])
    write_image(out_dir / "rubberwhale_denoised.png", out.mean[0])
    return {"image": "rubberwhale (colour)", "size": f"{clean.shape[-1]}x{clean.shape[-2]}",
            "noisy_db": psnr_db(noisy, clean), "separate_db": psnr_db(separate, clean),
            "opponent_db": psnr_db(out.mean, clean),
            "coverage95": float(coverage(out.mean, out.var, clean)[0]) if out.var is not None else float("nan"),
            "seconds": seconds}


def run_stereo_demo(out_dir: Path) -> dict:
    """The default stereo model on ``samples/stereo`` (tsukuba): bad > 1 px and MAE on non-occluded pixels."""
    from .io import read_disparity, read_image, write_disparity_color, write_std_map
    from .pretrained import DEFAULT_STEREO, stereo
    from .tasks.stereo.metrics import bad_pixels, coverage, mean_abs_error

    folder = samples_dir() / "stereo"
    left, right = (read_image(folder / f"tsukuba_{side}.png")[None] for side in ("left", "right"))
    gt = read_disparity(folder / "tsukuba_disp_left.png", scale=16).nan_to_num(0.0)[None, None]
    nonocc = read_gray(folder / "tsukuba_nonocc.png")[None, None] > 0.5
    t0 = time.perf_counter()
    with torch.no_grad():
        out = stereo()(left, right, 15)
    seconds = time.perf_counter() - t0
    write_disparity_color(out_dir / "tsukuba_disparity.png", out.disparity[0, 0], vmin=0.0, vmax=15.0)
    write_std_map(out_dir / "tsukuba_std.png", out.var[0, 0].sqrt())
    return {"task": f"stereo, tsukuba ({DEFAULT_STEREO})", "metric": "bad>1 % / MAE px",
            "value": f"{float(bad_pixels(out.disparity, gt, nonocc)[0]):.2f} / "
                     f"{float(mean_abs_error(out.disparity, gt, nonocc)[0]):.3f}",
            "coverage95": float(coverage(out.disparity, out.var, gt, nonocc)[0]), "seconds": seconds}


def run_flow_demo(out_dir: Path) -> dict:
    """The default flow model on ``samples/flow`` (a RubberWhale crop): end-point error on known pixels."""
    from .io import read_flo, read_image, write_flow_color, write_std_map
    from .pretrained import DEFAULT_FLOW, flow
    from .tasks.flow.metrics import epe, std_coverage

    folder = samples_dir() / "flow"
    f1, f2 = (read_image(folder / f"rubberwhale_frame{i}.png")[None] for i in (10, 11))
    gt = read_flo(folder / "rubberwhale_flow10.flo")[None]
    t0 = time.perf_counter()
    with torch.no_grad():
        out = flow()(f1, f2)
    seconds = time.perf_counter() - t0
    write_flow_color(out_dir / "rubberwhale_flow.png", out.flow[0])
    write_std_map(out_dir / "rubberwhale_std.png", out.std[0].square().sum(0).sqrt())  # brighter at motion edges
    return {"task": f"flow, RubberWhale crop ({DEFAULT_FLOW})", "metric": "EPE px",
            "value": f"{float(epe(out.flow, gt)[0]):.3f}", "coverage95": float(std_coverage(out.flow, out.std, gt)[0]),
            "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="gbp-demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/demo"), help="folder for the PNGs")
    ap.add_argument("--sigma", type=float, default=25.0, help="noise std on the 0-255 scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=DEFAULT_DENOISER, help="pretrained model (checkpoints/MANIFEST)")
    args = ap.parse_args(argv)
    if not 0 < args.sigma < 255:
        ap.error(f"--sigma must be in (0, 255), got {args.sigma:g}")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file; give a folder")
    known = names_of("denoise")
    if args.model not in known:
        ap.error(f"--model {args.model!r} is not a shipped denoiser; denoisers: {known}")
    rows = run_demo(args.out, args.sigma, args.seed, args.model)
    print(f"Gaussian noise sigma {args.sigma:g}/255, seed {args.seed}; PSNR in dB; model {args.model}")
    print(f"{'image':22s} {'size':>8s} {'noisy':>6s} {'median':>7s} {'hand-set GBP':>13s} {'learned GBP':>12s} "
          f"{'cover95':>8s} {'time s':>7s}")
    for r in rows:
        print(f"{r['image']:22s} {r['size']:>8s} {r['noisy_db']:6.2f} {r['median_db']:7.2f} {r['classical_db']:13.2f} "
              f"{r['learned_db']:12.2f} {r['coverage95']:8.3f} {r['seconds']:7.2f}")
    c = run_colour_demo(args.out, args.sigma, args.seed, args.model)
    print(f"{c['image']:22s} {c['size']:>8s} {c['noisy_db']:6.2f}  R, G, B separately {c['separate_db']:.2f}, "
          f"opponent space {c['opponent_db']:.2f} {c['coverage95']:8.3f} {c['seconds']:7.2f}")
    print(f"wrote noisy / classical / learned / std PNGs (colour: rubberwhale_noisy / _denoised) to {args.out}/\n")
    torch.set_num_threads(1)  # the dense tasks run faster on one thread on a small shared CPU
    rows = [run_stereo_demo(args.out), run_flow_demo(args.out)]
    print(f"{'task':36s} {'metric':>17s} {'value':>14s} {'cover95':>8s} {'time s':>7s}")
    for r in rows:
        print(f"{r['task']:36s} {r['metric']:>17s} {r['value']:>14s} {r['coverage95']:8.3f} {r['seconds']:7.2f}")
    print(f"wrote tsukuba_disparity / tsukuba_std / rubberwhale_flow / rubberwhale_std PNGs to {args.out}/")


if __name__ == "__main__":
    main()
