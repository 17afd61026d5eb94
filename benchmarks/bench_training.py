"""Training throughput of the shipped denoiser config: patches per second.

Runs the real pipeline (Train400 patches with on-the-fly noise, the LightningModule,
AdamW, Lightning's Trainer) for a few steps per row and times the steps after a
warm-up. Rows: the shipped GBP denoiser (conf/model/gbp.yaml) in float32 and in
bf16-mixed precision (the CNN in bfloat16, the GBP solve in float32), and the same
network without GBP (model=gbp_ablation). Ratios are against the first row.

    python benchmarks/bench_training.py [--threads 2] [--steps 12] [--warmup 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

ROWS = [("gbp", "32-true"), ("gbp", "bf16-mixed"), ("gbp_ablation", "32-true"), ("gbp_ablation", "bf16-mixed")]


def measure(model: str, precision: str, steps: int, warmup: int) -> dict:
    import lightning.pytorch as L
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={model}", "data.patches_per_epoch=100000"])
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
    batch = int(cfg.data.batch_size)
    return {"model": model, "precision": precision, "batch": batch, "patch": int(cfg.data.patch_size),
            "s_per_step": seconds, "patches_per_s": batch / seconds}


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
    rows = [measure(m, p, args.steps, args.warmup) for m, p in ROWS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    base = rows[0]["patches_per_s"]
    print(f"training throughput, {args.threads} threads, batch {rows[0]['batch']} x {rows[0]['patch']}^2 patches, "
          f"{args.steps} timed steps after {args.warmup}")
    print(f"{'model':14s} {'precision':11s} {'s/step':>7s} {'patches/s':>10s} {'vs first':>9s}")
    for r in rows:
        print(f"{r['model']:14s} {r['precision']:11s} {r['s_per_step']:7.3f} {r['patches_per_s']:10.1f} "
              f"{r['patches_per_s'] / base:8.2f}x")


if __name__ == "__main__":
    main()
