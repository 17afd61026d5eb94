"""The denoising task's training side: LightningModule (lit_module), data (datasets, datamodule),
evaluation tables (evaluate, with conditions and baselines) and variance calibration (calibrate)."""
