"""The examples run as tests in a fast mode: the seed tutorial end to end, and a few
epochs of each digits model with the loss falling."""

from __future__ import annotations

import argparse
import math
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


def test_char_transformer_learns(tmp_path, capsys):
    """The text example in a fast mode: a small model's held-out loss falls below the
    unigram model's, the checkpoint loads back, and it samples."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        mod = __import__("char_transformer")
        ckpt = tmp_path / "ct.pt"
        res = mod.main(["--steps", "80", "--lr", "5e-3", "--data-chars", "200000",
                        "--d-model", "32", "--heads", "2", "--context", "32",
                        "--batch-size", "16",
                        "--checkpoint", str(ckpt), "--sample", "20"])
    finally:
        sys.path.remove(str(EXAMPLES))
    assert res["steps"] == 80 and len(res["losses"]) == 80
    assert res["held_out"] < 0.9 * res["unigram"], res
    assert sum(res["losses"][-5:]) < sum(res["losses"][:5])
    import clgraph as cg

    saved = cg.load(str(ckpt))
    assert "tok.weight" in saved["model"] and len(saved["chars"]) > 50
    assert "sample:\ndef " in capsys.readouterr().out


def test_char_transformer_mixed_precision_runs():
    sys.path.insert(0, str(EXAMPLES))
    try:
        mod = __import__("char_transformer")
        res = mod.main(["--steps", "12", "--data-chars", "100000", "--d-model", "32",
                        "--heads", "2", "--context", "16", "--batch-size", "8",
                        "--checkpoint", "", "--sample", "5", "--amp"])
    finally:
        sys.path.remove(str(EXAMPLES))
    assert len(res["losses"]) == 12 and all(0 < v < 10 for v in res["losses"])
    assert res["held_out"] < res["unigram"] * 1.2


def _example(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def test_vae_digits_learns():
    """A few epochs of the VAE: its loss falls well below the untrained model's and its
    reconstructions beat the mean image."""
    pytest.importorskip("sklearn")
    res = _example("vae_digits").main(["--epochs", "5"])
    assert len(res["losses"]) == 5 and all(math.isfinite(v) for v in res["losses"])
    assert res["losses"][-1] < 0.8 * res["start_loss"], res
    assert res["test_loss"] < 0.8 * res["start_loss"], res
    assert res["reconstruction_error"] < res["baseline_error"], res


def test_dcgan_digits_runs(tmp_path, capsys):
    """A few DCGAN steps: finite losses, 16x16 samples in the generator's [-1, 1] range,
    and the picture (or a note that matplotlib is missing)."""
    pytest.importorskip("sklearn")
    png = tmp_path / "samples.png"
    res = _example("dcgan_digits").main(["--epochs", "1", "--max-steps", "4", "--width", "8",
                                         "--latent", "8", "--plot", str(png)])
    assert res["steps"] == 4 and len(res["d_losses"]) == len(res["g_losses"]) == 4
    assert all(math.isfinite(v) and v > 0 for v in res["d_losses"] + res["g_losses"])
    assert all(0 < p < 1 for p in res["d_real"] + res["d_fake"])
    s = res["samples"]
    assert s.shape == (64, 1, 16, 16) and s.min() >= -1 and s.max() <= 1 and s.std() > 0
    assert png.exists() or "matplotlib is not installed" in capsys.readouterr().out
