"""Fixtures shared by the training tests."""

from __future__ import annotations

import pytest
import torch

from tascmt.training.trainer import Trainer


@pytest.fixture
def initial_weights(monkeypatch):
    """The parameters of every model a trainer builds, as the trainer initialised them (before any step)."""
    built: list[dict[str, torch.Tensor]] = []
    build_model = Trainer.build_model

    def recording(self):
        model = build_model(self)
        built.append({k: v.detach().clone() for k, v in model.named_parameters()})
        return model

    monkeypatch.setattr(Trainer, "build_model", recording)
    return built
