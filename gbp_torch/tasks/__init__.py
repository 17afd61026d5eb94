"""Vision tasks built on GBP, one package each: :mod:`.denoise`, :mod:`.stereo` and :mod:`.flow`; :mod:`.settings` holds
the checks of their settings dataclasses, :mod:`.sparsification` the ranking measure of their uncertainties.

A task package holds its model, its hand-set baseline, its output dataclass and metrics.
"""
