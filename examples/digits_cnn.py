"""Train a small CNN on scikit-learn's digits (1x8x8 images) and print the test accuracy.

    pip install -e ".[examples]"
    python examples/digits_cnn.py [--device cl:0] [--epochs 40] [--compile] [--plot loss.png]
"""

from __future__ import annotations

import clgraph.nn as nn
from _common import parse_args, train


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32x4x4
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 64x2x2
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.25),
                                        nn.Linear(64 * 2 * 2, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


if __name__ == "__main__":
    args = parse_args("CNN on the digits data set", epochs=40, lr=2e-3)
    train(CNN(), args, images=True)
