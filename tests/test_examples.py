"""The examples run as tests in a fast mode: the seed tutorial end to end, and a few
epochs of each digits model with the loss falling."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_seed_tutorial_runs(capsys):
    runpy.run_path(str(EXAMPLES / "seed_tutorial.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "SimpleNN(\n  (fc1): Linear(in_features=2, out_features=2, bias=True)" in out
    assert "grad_fn=<MeanBackward0>" in out
    assert out.count("Epoch [") == 10


def _args(**kw):
    base = dict(device=None, epochs=3, batch_size=64, lr=3e-3, seed=0, compile=False,
                plot=None, max_steps=None)
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("name,cls,images,compiled", [("digits_mlp", "MLP", False, False),
                                                       ("digits_cnn", "CNN", True, False),
                                                       ("digits_mlp", "MLP", False, True)])
def test_digits_examples_learn(name, cls, images, compiled):
    pytest.importorskip("sklearn")
    sys.path.insert(0, str(EXAMPLES))
    try:
        mod = __import__(name)
        common = __import__("_common")
        acc, losses = common.train(getattr(mod, cls)(), _args(compile=compiled),
                                   images=images)
    finally:
        sys.path.remove(str(EXAMPLES))
    k = max(1, len(losses) // 5)
    assert sum(losses[-k:]) / k < 0.5 * sum(losses[:k]) / k
    assert acc > 0.8


def test_compile_inspect_example(tmp_path, capsys, monkeypatch):
    dot = tmp_path / "g.dot"
    monkeypatch.setattr(sys, "argv", ["compile_inspect.py", "--dot", str(dot)])
    runpy.run_path(str(EXAMPLES / "compile_inspect.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "gelu_like: eager 10 launches, compiled 1" in out
    assert "__kernel void cgf_" in out
    assert dot.read_text().startswith("digraph")
