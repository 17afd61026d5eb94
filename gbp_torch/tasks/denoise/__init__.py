"""Denoising: the learned GBP denoiser, its CNN ablation, hand-set GBP and median baselines,
noise models and blind noise-level estimation."""
