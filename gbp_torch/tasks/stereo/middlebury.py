"""Reader of the Middlebury 2003 evaluation scenes under the data root.

Layout (see ../shared/data/README.md): ``<root>/stereo/middlebury2003/<scene>/{left,right,disp_left,
nonocc,all,disc}.png`` and ``scenes.json`` (per scene ``scale``, ``max_disp``). The data root is
``root``, else ``$GBP_DATA_ROOT``, else ``../shared/data`` (:mod:`gbp_torch.paths`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from ...io import read_gray, read_image
from ...paths import dataset_dir

#: The four scenes of the Middlebury v2 table.
SCENES = ("tsukuba", "venus", "teddy", "cones")
FOLDER = "stereo/middlebury2003"


@dataclass
class StereoScene:
    """One scene.

    Attributes:
        name: scene name.
        left, right: (1, C, H, W) in [0, 1].
        gt: (1, 1, H, W) disparity in px (0 = unknown).
        masks: ``nonocc``, ``all``, ``disc``: (1, 1, H, W) bool, pixels evaluated.
        max_disp: upper end of the usual search range.
    """

    name: str
    left: Tensor
    right: Tensor
    gt: Tensor
    masks: dict[str, Tensor]
    max_disp: int


def middlebury_dir(root: str | os.PathLike | None = None) -> Path:
    """The scenes' folder; FileNotFoundError naming it and where to put it when missing."""
    return dataset_dir(FOLDER, root)


def _gray255(path: Path) -> Tensor:
    return (read_gray(path) * 255.0).round()


def load_scene(name: str, root: str | os.PathLike | None = None) -> StereoScene:
    """Read one scene (images, GT in px, masks, max_disp)."""
    base = middlebury_dir(root)
    folder = base / name
    if not folder.is_dir():
        known = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise FileNotFoundError(f"scene folder {folder} is missing (scenes there: {', '.join(known) or 'none'}); "
                                f"put {name}/left.png, right.png, disp_left.png, nonocc.png, all.png, disc.png there")
    info_path = base / "scenes.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} is missing: it gives each scene's disparity scale and max_disp")
    info = json.loads(info_path.read_text())
    if name not in info:
        raise FileNotFoundError(f"{info_path} has no entry for scene {name!r}")
    scale, max_disp = info[name]["scale"], int(info[name]["max_disp"])
    gt = _gray255(folder / "disp_left.png") / scale
    disc = _gray255(folder / "disc.png")
    masks = {"nonocc": _gray255(folder / "nonocc.png") > 127, "all": _gray255(folder / "all.png") > 127,
             "disc": disc > 200}
    return StereoScene(name, read_image(folder / "left.png")[None], read_image(folder / "right.png")[None],
                       gt[None, None], {k: v[None, None] for k, v in masks.items()}, max_disp)
