"""Vision tasks built on GBP, one package each: :mod:`.denoise` (stereo and flow to come).

A task package holds its model, its hand-set baseline, its output dataclass and metrics.
"""
