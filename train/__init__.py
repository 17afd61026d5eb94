"""Training and evaluation of the denoisers: Lightning modules, Hydra entry points (conf/)."""
