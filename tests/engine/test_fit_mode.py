"""Every training phase trains in training mode, whatever mode its model was copied in.

Lightning keeps the mode it finds each submodule in; a model copied after an evaluation
(``eval()``) used to fine-tune with its dropout off and its BatchNorm statistics frozen.
"""

import torch
from torch import nn

from sparsest.engine.fit import _fit


class _Trainer:
    interrupted = False

    def fit(self, module, *args, **kwargs):
        self.modes = [m.training for m in module.modules()]
        x = torch.randn(16, 3)
        module(x)  # one training-mode forward: BatchNorm updates its running statistics


def test_fit_puts_every_submodule_in_training_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5)).eval()
    before = model[1].running_mean.clone()
    trainer = _Trainer()
    _fit(trainer, model)
    assert all(trainer.modes) and len(trainer.modes) == 4
    assert not torch.equal(model[1].running_mean, before)
