import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")

# The small tensors of the tests gain nothing from intra-op threads, and on a
# shared 2-core machine OpenMP spinning makes them many times slower.
torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
