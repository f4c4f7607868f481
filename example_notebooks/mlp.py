"""The small MLP of 05_beyond_sklearn.ipynb, in a module so that the registry can rebuild it
(a class defined in a notebook cannot be imported by another process)."""

from torch import nn


class MLP(nn.Module):
    def __init__(self, n_in: int = 10, hidden: int = 32) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )  # fmt: skip

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.layers(x)
