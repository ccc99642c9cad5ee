"""A toy model/dataset for the training-loop tests."""
from __future__ import annotations

import dataclasses
import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    dim: int = 4
    hidden: int = 16


class ToyRegressor(nn.Module):
    """y = MLP(x) with a frozen input projection (checks frozen parameters stay untouched)."""

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.frozen = nn.Linear(config.dim, config.dim)
        self.frozen.requires_grad_(False)
        self.net = nn.Sequential(nn.Linear(config.dim, config.hidden), nn.ReLU(), nn.Dropout(0.1),
                                 nn.Linear(config.hidden, 1))

    def forward(self, batch):
        pred = self.net(self.frozen(batch["x"])).squeeze(-1)
        mse = ((pred - batch["y"]) ** 2).mean()
        return {"loss": mse, "mse": mse}


def toy_data(n: int = 64, dim: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    w = torch.randn(dim, generator=g)
    y = torch.sin(x @ w)
    return [{"x": x[i], "y": y[i]} for i in range(n)]


def collate(items):
    return {"x": torch.stack([i["x"] for i in items]), "y": torch.stack([i["y"] for i in items])}
