"""The training config (conf/train.yaml) composed outside ``@hydra.main``, and the task it names."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: the task of a config or checkpoint that names none (written before tasks had names)
DEFAULT_TASK = "denoise"


def compose_config(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """conf/<config_name>.yaml composed with Hydra ``key=value`` overrides."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


def config_task(cfg: DictConfig) -> str:
    """The config's ``task`` key (set by conf/task/<task>.yaml, chosen by an experiment)."""
    return str(cfg.get("task") or DEFAULT_TASK)


def split_overrides(items: Sequence[str]) -> tuple[str | None, list[str]]:
    """Command-line ``key=value`` items -> (the ``ckpt=PATH`` value or None, the Hydra overrides)."""
    ckpt, overrides = None, []
    for item in items:
        if item.startswith("ckpt="):
            ckpt = item.split("=", 1)[1] or None
        elif "=" in item:
            overrides.append(item)
        else:
            raise ValueError(f"expected key=value, got {item!r}")
    return ckpt, overrides
