"""Training throughput of the shipped denoiser config: patches per second.

Runs the real pipeline (Train400 patches with on-the-fly noise, the LightningModule,
AdamW, Lightning's Trainer) for a few steps per row and times the steps after a
warm-up. Rows: the GBP denoiser of conf/model/gbp.yaml in float32 and in bf16-mixed
precision (the CNN in bfloat16, the GBP solve in float32), the same network without
GBP (model=gbp_ablation), and the shipped gaussian model's recipe (experiment=gbp_context:
a half-resolution context branch, 48 patches of 56^2). Ratios (of pixels/s) are against
the first row. bf16 rows are fast only where the CPU has native bfloat16 (the header says;
elsewhere ``train.train`` falls back to float32, see train/precision.py).

    python benchmarks/bench_training.py [--threads 2] [--steps 12] [--warmup 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: (label, config overrides, precision)
ROWS = [(label, overrides, precision)
        for label, overrides in (("gbp", ["model=gbp"]), ("gbp_ablation", ["model=gbp_ablation"]),
                                 ("gbp_context", ["experiment=gbp_context"]))
        for precision in ("32-true", "bf16-mixed")]


def measure(label: str, overrides: list[str], precision: str, steps: int, warmup: int) -> dict:
    import lightning.pytorch as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from gbp_torch.nets import count_parameters

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*overrides, "data.patches_per_epoch=100000"])
    L.seed_everything(0, verbose=False)
    datamodule = instantiate(cfg.data)
    lit = instantiate(cfg.model, _recursive_=False)
    stamps: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_end(self, *args) -> None:
            stamps.append(time.perf_counter())

    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, max_steps=warmup + steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, num_sanity_val_steps=0, callbacks=[Clock()])
    trainer.fit(lit, datamodule=datamodule)
    seconds = (stamps[-1] - stamps[warmup - 1]) / steps
    batch, patch = int(cfg.data.batch_size), int(cfg.data.patch_size)
    params = count_parameters(lit.net)
    return {"model": label, "precision": precision, "batch": batch, "patch": patch, "parameters": params,
            "s_per_step": seconds, "patches_per_s": batch / seconds, "mpixels_per_s": batch * patch**2 / seconds / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    rows = [measure(*row, args.steps, args.warmup) for row in ROWS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    base = rows[0]["mpixels_per_s"]
    from train.precision import cpu_has_native_bf16

    print(f"training throughput, {args.threads} threads, {args.steps} timed steps after {args.warmup}; "
          f"native bfloat16 on this CPU: {'yes' if cpu_has_native_bf16() else 'no (bf16 rows emulated)'}")
    print(f"{'model':13s} {'params':>7s} {'precision':11s} {'batch':>8s} {'s/step':>7s} {'patches/s':>10s} "
          f"{'Mpx/s':>6s} {'vs first':>9s}")
    for r in rows:
        print(f"{r['model']:13s} {r['parameters']:7d} {r['precision']:11s} {r['batch']:3d}x{r['patch']:2d}^2 "
              f"{r['s_per_step']:7.3f} {r['patches_per_s']:10.1f} {r['mpixels_per_s']:6.3f} "
              f"{r['mpixels_per_s'] / base:8.2f}x")


if __name__ == "__main__":
    main()
