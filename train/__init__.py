"""Training and evaluation with Lightning + Hydra (conf/): one entry point per job, one package per task.

    train.train     train(cfg) + @hydra.main, task-agnostic: instantiates cfg.data, cfg.model, cfg.trainer
    train.eval      front end: dispatches ``python -m train.eval [--task TASK]`` to train/<task>/evaluate.py
    train/denoise/  the denoising task: lit_module, datasets, datamodule, conditions, baselines, evaluate, calibrate
    shared          lit_base (optimizer, schedule, task in checkpoints), metrics, precision, init_weights,
                    config (compose conf/ outside @hydra.main), checkpoint (read .ckpt), export (shipped .pt)
"""
