"""PyTorch's own op table (OpInfo, torch.testing._internal) run through clgraph: for every op
clgraph has, its sample inputs (a few per dtype) in float32, int64 and bool give PyTorch's
values, dtypes and shapes, and in float64 PyTorch's gradients (of a fixed random weighting
of the outputs). The lambdas OpInfo wraps an op in run with ``torch`` bound to clgraph.

Runs where PyTorch 2.13 and its test helpers are installed (CI has neither: these tests
add nothing to its time). CLGRAPH_OPINFO_SAMPLES sets the samples per dtype (default 1).
Ops whose results are not comparable (random draws, ties broken differently, eigenvector
signs) and the few known differences are listed below with their reasons."""

from __future__ import annotations

import math
import os
import types

import numpy as np
import pytest

import clgraph as cg

SAMPLES = int(os.environ.get("CLGRAPH_OPINFO_SAMPLES", "1"))


def _op_db():
    try:
        import torch

        if not torch.__version__.startswith("2.13."):
            return None, []
        from torch.testing._internal.common_methods_invocations import op_db
    except ImportError:  # no PyTorch, or its test helpers (expecttest) are missing
        return None, []
    return torch, op_db


torch, OP_DB = _op_db()

# not comparable value by value: random draws, results defined up to a sign or an order
NOT_COMPARABLE = {
    "bernoulli", "cauchy", "exponential", "geometric", "log_normal", "multinomial", "normal",
    "normal.number_mean", "normal.in_place", "uniform", "rand_like", "randn_like",
    "randint_like", "randint", "randn", "rand", "new_empty", "new_empty_strided", "empty",
    "empty_like", "empty_strided", "empty_permuted", "nn.functional.dropout",
    "nn.functional.dropout2d", "nn.functional.dropout3d", "nn.functional.alpha_dropout",
    "nn.functional.feature_alpha_dropout.with_train",
    "nn.functional.feature_alpha_dropout.without_train", "nn.functional.rrelu",
    "nn.functional.fractional_max_pool2d", "nn.functional.fractional_max_pool3d",
    "nn.functional.scaled_dot_product_attention", "nn.functional.multi_head_attention_forward",
    "linalg.eig", "linalg.eigh", "linalg.eigvals", "svd_lowrank", "pca_lowrank", "randperm",
    "nonzero_static",
}
# index results where PyTorch's CPU kernels break ties in an order of their own (unstable
# sorts): values are compared, indices are not
TIED_INDICES = {"sort", "argsort", "topk", "kthvalue", "msort", "mode", "median",
                "nanmedian"}
# known differences, each with its reason
KNOWN: dict[str, str] = {
    "as_strided_scatter": "PyTorch's gradient of the input is the complement of the true one "
                          "(its own gradcheck fails; OpInfo marks it an expected failure)",
    "nn.functional.ctc_loss": "PyTorch's backward assumes log_probs came out of log_softmax "
                              "and adds exp(log_probs) * grad; clgraph gives the true "
                              "derivative (equal through a log_softmax)",
    "max_pool2d_with_indices_backward": "an ATen-internal op (torch.ops.aten)",
    "chalf": "no complex32 dtype",
    "to_sparse": "no sparse layouts",
}


def _resolve(name):
    obj = cg
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _clgraph_fn(op):
    """The clgraph callable for an OpInfo: its wrapper lambda with ``torch`` bound to
    clgraph, the Tensor method, or the function of the same name."""
    f = op.op
    if isinstance(f, types.FunctionType) and (f.__module__ or "").startswith(
            "torch.testing._internal"):
        g = dict(f.__globals__, torch=cg)
        if "F" in g:
            g["F"] = cg.nn.functional
        return types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)
    if "." in op.name:  # nn.functional.unfold is not Tensor.unfold
        return _resolve(op.name)
    base = op.name
    if getattr(torch.Tensor, base, None) is f or (hasattr(torch.Tensor, base)
                                                  and not hasattr(torch, base)):
        if not hasattr(cg.Tensor, base):
            return None
        attr = getattr(cg.Tensor, base)
        if isinstance(attr, property):
            return lambda x: getattr(x, base)
        return lambda x, *a, **k: getattr(x, base)(*a, **k)
    return _resolve(op.name)


class _Skip(Exception):
    pass


def _to_cg(x):
    if isinstance(x, torch.Tensor):
        if x.layout != torch.strided or x.is_complex() or x.dtype == torch.bfloat16:
            raise _Skip
        t = cg.tensor(x.detach().resolve_conj().resolve_neg().numpy().copy(),
                      dtype=getattr(cg, str(x.dtype).split(".")[1]))
        return t.requires_grad_(True) if x.requires_grad else t
    if isinstance(x, torch.dtype):
        return getattr(cg, str(x).split(".")[1])
    if isinstance(x, torch.device):
        return "cpu"
    if isinstance(x, torch.memory_format):
        return getattr(cg, str(x).split(".")[1])
    if isinstance(x, torch.Size):
        return tuple(x)
    if isinstance(x, (list, tuple)):
        vals = [_to_cg(v) for v in x]
        return type(x)(*vals) if hasattr(x, "_fields") else type(x)(vals)
    if isinstance(x, dict):
        return {k: _to_cg(v) for k, v in x.items()}
    if isinstance(x, torch.Generator) or (callable(x) and not isinstance(x, type)):
        raise _Skip
    return x


def _leaves(y, acc):
    if isinstance(y, (torch.Tensor, cg.Tensor)):
        acc.append(y)
    elif isinstance(y, (list, tuple)):
        for v in y:
            _leaves(v, acc)
    return acc


def _compare(want, got, where, values=True, tied=False):
    if isinstance(want, torch.Tensor):
        assert isinstance(got, cg.Tensor), f"{where}: a {type(got).__name__}, not a tensor"
        assert str(got.dtype) == str(want.dtype), f"{where}: dtype {got.dtype}, torch {want.dtype}"
        assert tuple(got.shape) == tuple(want.shape), \
            f"{where}: shape {tuple(got.shape)}, torch {tuple(want.shape)}"
        if not values or want.numel() == 0:
            return
        if want.dtype == torch.bfloat16:  # numpy has no bfloat16
            want, got = want.float(), got.float()
        w, g = want.detach().resolve_conj().numpy(), got.detach().numpy()
        if w.dtype.kind in "fc":
            tol = (1e-3, 1e-4) if w.dtype in (np.float32, np.complex64) else (1e-7, 1e-9)
            ok = np.allclose(g, w, rtol=tol[0], atol=tol[1], equal_nan=True)
        else:
            ok = np.array_equal(g, w)
        assert ok, f"{where}: values differ\ntorch {w.ravel()[:6]}\nclgraph {g.ravel()[:6]}"
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), \
            f"{where}: {type(got).__name__} of {len(got) if hasattr(got, '__len__') else '?'}"
        for i, (w, g) in enumerate(zip(want, got)):
            _compare(w, g, f"{where}[{i}]", values and not (tied and i == 1))
    elif isinstance(want, float):
        assert math.isclose(float(got), want, rel_tol=1e-4, abs_tol=1e-6) or (
            math.isnan(want) and math.isnan(float(got))), f"{where}: {got} vs {want}"
    elif isinstance(want, (bool, int)):
        assert got == want, f"{where}: {got} vs {want}"


def _check_values(op, fn, dtype):
    # argsort of bools is all ties, ordered by PyTorch's unstable sort in its own way
    values = not (op.name == "argsort" and dtype == torch.bool)
    for s in list(op.sample_inputs("cpu", dtype, requires_grad=False))[:SAMPLES]:
        try:
            want = op.op(s.input, *s.args, **s.kwargs)
        except Exception:
            continue  # PyTorch refuses this sample
        try:
            args = _to_cg(s.input), _to_cg(s.args), _to_cg(s.kwargs)
        except _Skip:
            continue
        got = fn(args[0], *args[1], **args[2])
        _compare(want, got, f"{op.name} ({dtype})", values, tied=op.name in TIED_INDICES)


def _check_grads(op, fn):
    rng = np.random.default_rng(0)
    for s in list(op.sample_inputs("cpu", torch.float64, requires_grad=True))[:SAMPLES]:
        try:
            want = op.op(s.input, *s.args, **s.kwargs)
            args = _to_cg(s.input), _to_cg(s.args), _to_cg(s.kwargs)
        except _Skip:
            continue
        except Exception:
            continue
        outs = [o for o in _leaves(want, []) if o.dtype.is_floating_point and o.requires_grad]
        ins = [t for t in _leaves([s.input, list(s.args), list(s.kwargs.values())], [])
               if t.requires_grad]
        if not outs or not ins:
            continue
        ws = [rng.standard_normal(tuple(o.shape)) for o in outs]
        loss = sum((o * torch.tensor(w)).sum() for o, w in zip(outs, ws))
        tg = torch.autograd.grad(loss, ins, allow_unused=True)
        got = fn(args[0], *args[1], **args[2])
        couts = [o for o in _leaves(got, []) if o.dtype.is_floating_point and o.requires_grad]
        assert len(couts) == len(outs), \
            f"{op.name}: {len(couts)} differentiable outputs, torch {len(outs)}"
        cins = [t for t in _leaves([args[0], list(args[1]), list(args[2].values())], [])
                if t.requires_grad]
        closs = sum((o * cg.tensor(w, dtype=o.dtype)).sum() for o, w in zip(couts, ws))
        cgr = cg.autograd.grad(closs, cins, allow_unused=True)
        for i, (a, b) in enumerate(zip(tg, cgr)):
            a = np.zeros(tuple(ins[i].shape)) if a is None or a._is_zerotensor() else a.numpy()
            b = np.zeros(tuple(ins[i].shape)) if b is None else b.numpy()
            assert np.allclose(b, a, rtol=1e-6, atol=1e-7, equal_nan=True), \
                f"{op.name}: gradient {i} differs\ntorch {a.ravel()[:4]}\nclgraph {b.ravel()[:4]}"


def _key(op):
    return op.name + ("." + op.variant_test_name if op.variant_test_name else "")


CASES = [op for op in OP_DB if _key(op) not in NOT_COMPARABLE and not op.name.startswith(
    ("_", "sparse.", "jiterator", "torch.", "masked.", "signal.windows.", "ops."))]


@pytest.mark.skipif(torch is None, reason="PyTorch 2.13 and its test helpers are the reference")
@pytest.mark.parametrize("op", CASES, ids=_key)
def test_opinfo(op):
    key = _key(op)
    if key in KNOWN:
        pytest.skip(KNOWN[key])
    fn = _clgraph_fn(op)
    if fn is None:
        pytest.skip(f"clgraph has no {op.name}")
    for dtype in (torch.float32, torch.int64, torch.bool):
        if dtype in op.dtypes:
            _check_values(op, fn, dtype)
    if op.supports_autograd and torch.float64 in op.dtypes:
        _check_grads(op, fn)
