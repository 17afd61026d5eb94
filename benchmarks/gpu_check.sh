#!/usr/bin/env bash
# The CUDA checks, for a machine with a GPU (about 5 minutes on one card); without CUDA it says so and exits 0.
#   benchmarks/gpu_check.sh            (uses .venv/bin/python, or $PYTHON)
# Writes results/gpu/{cuda_tests,public_solve,finetune}.txt for the README to quote:
# - the tests marked `cuda`;
# - the public grid.solve on the GPU against scipy CG on the CPU, with one FCG step against the time of
#   copying the image once at the card's measured copy bandwidth (its memory roofline), eager and with
#   the V-cycle compiled (MultigridConfig(compile=True));
# - a 60-step bf16-mixed fine-tune of the sigma-25 denoiser on the GPU (throughput in the log).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device here; nothing to check"
    exit 0
fi
mkdir -p results/gpu
"$PY" -c "import torch; print(torch.cuda.get_device_name(0), torch.__version__)" | tee results/gpu/device.txt
"$PY" -m pytest -q -m cuda -p no:cacheprovider 2>&1 | tee results/gpu/cuda_tests.txt
for n in 512 2048; do
    "$PY" benchmarks/bench_public_solve.py --device cuda --size "$n" --repeat 5 2>&1 | tee -a results/gpu/public_solve.txt
    "$PY" benchmarks/bench_public_solve.py --device cuda --size "$n" --repeat 5 --compile 2>&1 \
        | tee -a results/gpu/public_solve.txt  # the V-cycle through torch.compile: small levels' launches fused
done
WANDB_MODE=disabled "$PY" -m train.train experiment=gbp_finetune init_weights=checkpoints/gbp_denoiser_sigma25.pt \
    trainer=gpu trainer.precision=bf16-mixed trainer.max_steps=60 trainer.limit_val_batches=2 logger=csv \
    task_name=gpu_check 2>&1 | tail -n 20 | tee results/gpu/finetune.txt
