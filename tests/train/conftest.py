from pathlib import Path

import pytest
from train_helpers import compose_train_cfg


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory) -> Path:
    """last.ckpt of a 2-step training run of the tiny CNN."""
    from train.train import train

    out = tmp_path_factory.mktemp("trained")
    metrics = train(compose_train_cfg(out, "trainer.max_steps=2", "logger=none"))
    return Path(metrics["last_ckpt"])
