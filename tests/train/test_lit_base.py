"""TaskLitModule's guard: an update with non-finite gradients is skipped, the others go through."""

import lightning.pytorch as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from train.lit_base import TaskLitModule


class _Regression(TaskLitModule):
    task = "test"

    def __init__(self, poisoned_steps: tuple[int, ...]):
        super().__init__()
        self.build(nn.Linear(3, 1), {"_target_": "torch.optim.SGD", "lr": 0.1}, None)
        self.poisoned_steps = poisoned_steps
        self.weights_after = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = (self.net(x) - y).square().mean()
        if self.global_step in self.poisoned_steps:
            loss = loss * torch.tensor(float("nan"))  # a NaN that reaches every gradient
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.weights_after.append(self.net.weight.detach().clone())


def test_non_finite_gradients_skip_the_update_and_training_goes_on():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=2)
    model = _Regression(poisoned_steps=(1,))
    start = model.net.weight.detach().clone()
    trainer = L.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    with pytest.warns(UserWarning, match="step 1: non-finite gradients, update skipped"):
        trainer.fit(model, data)
    w = [start, *model.weights_after]
    assert model.skipped_steps == 1
    assert torch.isfinite(w[-1]).all()
    assert torch.equal(w[2], w[1])  # the poisoned step left the weights alone
    assert not torch.equal(w[1], w[0]) and not torch.equal(w[3], w[2])  # the finite ones moved them
