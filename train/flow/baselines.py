"""OpenCV flow baselines run in the same process (optional ``bench`` dependency:
opencv-contrib-python-headless; DeepFlow needs the contrib build).

Each baseline maps ``(frame1 (1, C, H, W), frame2) -> FlowOutput`` on 8-bit gray images like the
published OpenCV numbers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gbp_torch.tasks.flow.output import FlowOutput


def _gray8(frame: Tensor) -> np.ndarray:
    x = frame[0].detach().float().cpu()
    if x.shape[0] == 3:
        x = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
    else:
        x = x.mean(0)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


class OpenCVFlow:
    """An OpenCV dense flow method by name: ``"dis"`` (DIS, medium preset), ``"farneback"``, ``"deepflow"``."""

    def __init__(self, name: str):
        import cv2

        self.name = name
        if name == "dis":
            self._calc = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc
        elif name == "deepflow":
            if not hasattr(cv2, "optflow"):
                raise ImportError("DeepFlow needs opencv-contrib-python-headless (cv2.optflow)")
            self._calc = cv2.optflow.createOptFlow_DeepFlow().calc
        elif name == "farneback":
            self._calc = lambda a, b, f: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 5, 15, 3, 5, 1.2, 0)
        else:
            raise ValueError(f"unknown OpenCV flow method {name!r}")

    def __call__(self, frame1: Tensor, frame2: Tensor) -> FlowOutput:
        flow = self._calc(_gray8(frame1), _gray8(frame2), None)
        return FlowOutput(torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1)[None].to(frame1.dtype))


def available_baselines(names: list[str]) -> dict[str, OpenCVFlow]:
    """The baselines of ``names`` that this installation can run (missing OpenCV / contrib: skipped)."""
    out = {}
    for name in names:
        try:
            out[name] = OpenCVFlow(name)
        except ImportError:
            continue
    return out
