"""Train an MLP on scikit-learn's digits and print the held-out test accuracy.

    pip install -e ".[examples]"
    python examples/digits_mlp.py [--device cl:0] [--epochs 40] [--compile] [--plot loss.png]
"""

from __future__ import annotations

import clgraph.nn as nn
from _common import parse_args, train


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(256, 10),
        )

    def forward(self, x):
        return self.net(x)


if __name__ == "__main__":
    args = parse_args("MLP on the digits data set", epochs=40)
    train(MLP(), args, images=False)
