"""Where data lives: the shipped samples and the configurable data root."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (parent of the ``gbp_torch`` package).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where an installed wheel keeps the folders shipped beside the package (``checkpoints``, ``samples``): the
#: build copies them in (``setup.py``), so a regular ``pip install`` finds the weights as an editable one does.
PACKAGED = Path(__file__).resolve().parent / "shipped"

#: Environment variable overriding the data root.
DATA_ROOT_ENV = "GBP_DATA_ROOT"


def shipped_dir(name: str) -> Path:
    """A folder shipped with the project (``"checkpoints"``, ``"samples"``): the copy inside an installed wheel,
    else the repository's own (a checkout or an editable install)."""
    packaged = PACKAGED / name
    return packaged if packaged.is_dir() else REPO_ROOT / name


def samples_dir() -> Path:
    """Small images shipped with the project (see samples/README.md)."""
    return shipped_dir("samples")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$GBP_DATA_ROOT``, else ``../shared/data``
    beside the repository."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ROOT_ENV)
    return Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data")


def dataset_dir(relative: str, root: str | os.PathLike | None = None) -> Path:
    """A dataset folder under the data root, e.g. ``"denoise/bsd68"``; raises
    ``FileNotFoundError`` that says what is missing and where to put it."""
    base = data_root(root)
    path = base / relative
    if not path.is_dir() or not any(path.iterdir()):
        raise FileNotFoundError(
            f"dataset folder {path} is missing or empty. Put the '{relative}' images there "
            f"(see ../shared/data/README.md for the layout), or point ${DATA_ROOT_ENV} "
            f"(or the data.root config option) at a folder that contains '{relative}'."
        )
    return path
