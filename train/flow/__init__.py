"""Optical-flow evaluation (``python -m train.eval --task flow``)."""
