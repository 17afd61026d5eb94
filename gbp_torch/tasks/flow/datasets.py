"""Readers of the flow benchmarks' training pairs under the data root (:mod:`gbp_torch.paths`).

Layouts (see ``shared/data/README.md``): ``flow/middlebury/<Scene>/{frame10,frame11}.png, flow10.flo``;
``flow/sintel/training/{clean,final}/<scene>/frame_000{2,3}.png`` with ``flow/``, ``invalid/`` and
``occlusions/`` beside them; ``flow/kitti/training/image_2/<id>_1{0,1}.png`` with 16-bit
``flow_occ`` / ``flow_noc`` ground truth. A missing folder raises FileNotFoundError naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ...io import read_flo, read_image, read_kitti_flow
from ...paths import dataset_dir

MIDDLEBURY = "flow/middlebury"
SINTEL = "flow/sintel"
KITTI = "flow/kitti"


@dataclass
class FlowSample:
    """One evaluation pair.

    Attributes:
        name: e.g. ``"Grove2"``, ``"alley_1"``, ``"000010"``.
        frame1, frame2: (C, H, W) float32 in [0, 1] (C = 1 or 3).
        flow: (2, H, W) ground truth, NaN where unknown.
        valid: (H, W) bool pixels that count in the "all" scores (known flow, not marked invalid).
        nonocc: (H, W) bool pixels visible in both frames (with known flow), or None when the
            benchmark gives no occlusion mask (Middlebury).
    """

    name: str
    frame1: Tensor
    frame2: Tensor
    flow: Tensor
    valid: Tensor
    nonocc: Tensor | None = None


def _same_channels(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Frames whose channel counts differ (a colour file with equal channels reads as gray) -> both RGB."""
    if a.shape[0] != b.shape[0]:
        a, b = a.expand(3, -1, -1).contiguous(), b.expand(3, -1, -1).contiguous()
    return a, b


def _pair(p1: Path, p2: Path) -> tuple[Tensor, Tensor]:
    return _same_channels(read_image(p1), read_image(p2))


def _mask(path: Path, valid_shape: Tensor) -> Tensor:
    """A 0 / 255 mask PNG as (H, W) bool (all False when the file is absent)."""
    if not path.is_file():
        return torch.zeros(valid_shape.shape[-2:], dtype=torch.bool)
    return read_image(path)[0] > 0.5


def middlebury(root: str | os.PathLike | None = None) -> list[FlowSample]:
    """The 8 Middlebury training scenes with ground truth, sorted by name."""
    base = dataset_dir(MIDDLEBURY, root)
    out = []
    for scene in sorted(p for p in base.iterdir() if (p / "flow10.flo").is_file()):
        f1, f2 = _pair(scene / "frame10.png", scene / "frame11.png")
        flow = read_flo(scene / "flow10.flo")
        out.append(FlowSample(scene.name, f1, f2, flow, torch.isfinite(flow).all(0)))
    if not out:
        raise FileNotFoundError(f"no Middlebury scene (<Scene>/flow10.flo) under {base}")
    return out


def sintel(pass_name: str = "clean", root: str | os.PathLike | None = None) -> list[FlowSample]:
    """The Sintel pairs of ``pass_name`` (``"clean"`` or ``"final"``): first frame of each scene and the next."""
    if pass_name not in ("clean", "final"):
        raise ValueError(f"pass_name must be 'clean' or 'final', got {pass_name!r}")
    base = dataset_dir(f"{SINTEL}/training", root)
    images = dataset_dir(f"{SINTEL}/training/{pass_name}", root)
    out = []
    for scene in sorted(p for p in images.iterdir() if p.is_dir()):
        frames = sorted(scene.glob("frame_*.png"))
        gt = base / "flow" / scene.name / frames[0].with_suffix(".flo").name
        f1, f2 = _pair(frames[0], frames[1])
        flow = read_flo(gt)
        valid = torch.isfinite(flow).all(0) & ~_mask(base / "invalid" / scene.name / frames[0].name, valid_shape=flow)
        nonocc = valid & ~_mask(base / "occlusions" / scene.name / frames[0].name, valid_shape=flow)
        out.append(FlowSample(scene.name, f1, f2, flow, valid, nonocc))
    return out


def kitti(root: str | os.PathLike | None = None) -> list[FlowSample]:
    """The KITTI 2015 pairs: ``flow`` from ``flow_occ`` (all pixels with GT), ``nonocc`` from ``flow_noc``."""
    base = dataset_dir(f"{KITTI}/training", root)
    out = []
    for gt in sorted((base / "flow_occ").glob("*_10.png")):
        stem = gt.name[:-len("_10.png")]
        f1, f2 = _pair(base / "image_2" / f"{stem}_10.png", base / "image_2" / f"{stem}_11.png")
        noc = base / "flow_noc" / gt.name
        nonocc = torch.isfinite(read_kitti_flow(noc)).all(0) if noc.is_file() else None
        flow = read_kitti_flow(gt)
        out.append(FlowSample(stem, f1, f2, flow, torch.isfinite(flow).all(0), nonocc))
    return out
