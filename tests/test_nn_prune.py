"""nn.utils.prune: masks and pruned tensors against numpy references, the forward
pre-hook and its state dict, iterative and global pruning, remove(), gradients through the
kept entries only, PyTorch's errors, and PyTorch parity (masks where no equal values meet
at the boundary, and error messages) where installed. Also
nn.utils.stateless.functional_call."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import nn
from clgraph.autograd import gradcheck
from clgraph.nn.utils import prune


def _weights(shape, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    if ties:
        return rng.integers(-3, 4, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def _module(shape, seed=0, ties=False, dtype=cg.float32):
    """A Linear (2-d shape) or Conv2d (4-d shape) with the given weight."""
    cg.manual_seed(seed)
    m = nn.Linear(shape[1], shape[0]) if len(shape) == 2 else nn.Conv2d(shape[1], shape[0],
                                                                         shape[2:])
    m = m.to(dtype)
    with cg.no_grad():
        m.weight.copy_(cg.tensor(_weights(shape, seed, ties)))
    return m


def _count(amount, n):
    return amount if isinstance(amount, int) else round(amount * n)


def np_l1_mask(w, amount, mask=None):
    """Distinct magnitudes: prune the ``amount`` smallest of the entries still kept."""
    mask = np.ones_like(w) if mask is None else mask.copy()
    kept = np.flatnonzero(mask.reshape(-1))
    k = _count(amount, kept.size)
    drop = kept[np.argsort(np.abs(w.reshape(-1)[kept]), kind="stable")[:k]]
    mask.reshape(-1)[drop] = 0
    return mask


def np_ln_mask(w, amount, n, dim):
    axes = tuple(d for d in range(w.ndim) if d != dim % w.ndim)
    if n == math.inf:
        norm = np.abs(w).max(axis=axes)
    elif n == -math.inf:
        norm = np.abs(w).min(axis=axes)
    else:
        norm = (np.abs(w) ** n).sum(axis=axes) ** (1 / n)
    keep = np.argsort(-norm, kind="stable")[:w.shape[dim] - _count(amount, w.shape[dim])]
    mask = np.zeros_like(w)
    index = [slice(None)] * w.ndim
    index[dim] = keep
    mask[tuple(index)] = 1
    return mask


# --- masks against numpy ---------------------------------------------------------------

@pytest.mark.parametrize("amount", [0, 1, 7, 20, 0.0, 0.3, 0.55, 1.0])
def test_l1_unstructured(amount):
    m = _module((4, 5))
    w = m.weight.detach().numpy()
    out = prune.l1_unstructured(m, "weight", amount=amount)
    assert out is m
    mask = np_l1_mask(w, amount)
    np.testing.assert_array_equal(m.weight_mask.numpy(), mask)
    assert m.weight_mask.dtype == cg.float32
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * mask)
    np.testing.assert_array_equal(m.weight_orig.detach().numpy(), w)
    assert isinstance(m.weight_orig, nn.Parameter) and "weight" not in m._parameters
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert [n for n, _ in m.named_parameters()] == ["bias", "weight_orig"]
    assert [n for n, _ in m.named_buffers()] == ["weight_mask"]
    assert prune.is_pruned(m)
    assert isinstance(next(iter(m._forward_pre_hooks.values())), prune.L1Unstructured)


@pytest.mark.parametrize("n,dim", [(1, 0), (2, 1), (2, -1), (math.inf, 0), (-math.inf, 2),
                                   (3, 3)])
@pytest.mark.parametrize("amount", [2, 0.5])
def test_ln_structured(n, dim, amount):
    m = _module((6, 4, 3, 2), seed=1)
    w = m.weight.detach().numpy()
    prune.ln_structured(m, "weight", amount=amount, n=n, dim=dim)
    mask = np_ln_mask(w, amount, n, dim)
    np.testing.assert_array_equal(m.weight_mask.numpy(), mask)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * mask)


def test_importance_scores():
    m = _module((4, 5))
    w = m.weight.detach().numpy()
    scores = _weights((4, 5), seed=9)
    prune.l1_unstructured(m, "weight", amount=6, importance_scores=cg.tensor(scores))
    np.testing.assert_array_equal(m.weight_mask.numpy(), np_l1_mask(scores, 6))
    m = _module((4, 5))
    prune.ln_structured(m, "weight", 0.5, 1, 0, importance_scores=cg.tensor(scores))
    np.testing.assert_array_equal(m.weight_mask.numpy(), np_ln_mask(scores, 0.5, 1, 0))
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * np_ln_mask(scores, 0.5, 1, 0))


def test_random_unstructured_and_structured():
    m = _module((5, 8))
    prune.random_unstructured(m, "weight", amount=0.25)
    mask = m.weight_mask.numpy()
    assert set(np.unique(mask)) <= {0.0, 1.0} and (mask == 0).sum() == 10
    prune.random_unstructured(m, "weight", amount=6)  # six more among the 30 kept
    mask2 = m.weight_mask.numpy()
    assert (mask2 == 0).sum() == 16 and (mask2 <= mask).all()
    cg.manual_seed(3)
    a = prune.RandomUnstructured(amount=4).compute_mask(cg.ones(3, 4), cg.ones(3, 4)).numpy()
    cg.manual_seed(3)
    b = prune.RandomUnstructured(amount=4).compute_mask(cg.ones(3, 4), cg.ones(3, 4)).numpy()
    np.testing.assert_array_equal(a, b)

    m = _module((6, 3, 2, 2))
    prune.random_structured(m, "weight", amount=2, dim=1)
    mask = m.weight_mask.numpy()
    per_channel = mask.sum(axis=(0, 2, 3))
    assert sorted(per_channel) == [0, 0, 24]
    prune.random_structured(m, "weight", amount=0.5, dim=0)  # three of the six rows
    per_row = m.weight_mask.numpy().sum(axis=(1, 2, 3))
    assert sorted(per_row) == [0, 0, 0, 4, 4, 4]


def test_identity_and_custom_from_mask():
    m = _module((3, 4))
    w = m.weight.detach().numpy()
    prune.identity(m, "weight")
    np.testing.assert_array_equal(m.weight_mask.numpy(), np.ones((3, 4), np.float32))
    keep = (np.arange(12).reshape(3, 4) % 3 != 0)
    prune.custom_from_mask(m, "weight", mask=cg.tensor(keep))
    np.testing.assert_array_equal(m.weight_mask.numpy(), keep.astype(np.float32))
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * keep)
    hook = next(iter(m._forward_pre_hooks.values()))
    assert isinstance(hook, prune.PruningContainer) and len(hook) == 2
    assert [type(h) for h in hook] == [prune.Identity, prune.CustomFromMask]


def test_iterative_pruning_combines_masks():
    m = _module((6, 5), seed=2)
    w = m.weight.detach().numpy()
    prune.l1_unstructured(m, "weight", amount=0.2)
    prune.ln_structured(m, "weight", amount=1, n=2, dim=0)
    prune.l1_unstructured(m, "weight", amount=0.5)
    hook = next(iter(m._forward_pre_hooks.values()))
    assert isinstance(hook, prune.PruningContainer) and len(hook) == 3
    assert [type(h) for h in hook] == [prune.L1Unstructured, prune.LnStructured,
                                       prune.L1Unstructured]
    assert len(m._forward_pre_hooks) == 1
    mask = np_l1_mask(w, 0.2)
    row_norm = np.sqrt(((w * mask) ** 2).sum(axis=1))
    # the structured step ranks the rows still kept (all six) by the pruned weight's norm
    mask[np.argmin(row_norm)] = 0
    mask = np_l1_mask(w, 0.5, mask)
    np.testing.assert_array_equal(m.weight_mask.numpy(), mask)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w * mask)


def test_global_unstructured():
    a, b = _module((4, 5), seed=3), _module((3, 3, 2, 2), seed=4)
    prune.l1_unstructured(b, "weight", amount=5)
    wa, wb = a.weight.detach().numpy(), b.weight.detach().numpy()
    prior = b.weight_mask.numpy()
    params = [(a, "weight"), (b, "weight"), (a, "bias")]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.4)
    flat_w = np.concatenate([wa.ravel(), (wb * prior).ravel(), a.bias.detach().numpy()])
    flat_mask = np_l1_mask(flat_w, 0.4, np.concatenate([np.ones(20), prior.ravel(),
                                                          np.ones(4)]).astype(np.float32))
    got = np.concatenate([a.weight_mask.numpy().ravel(), b.weight_mask.numpy().ravel(),
                          a.bias_mask.numpy()])
    np.testing.assert_array_equal(got, flat_mask)
    assert isinstance(next(iter(b._forward_pre_hooks.values())), prune.PruningContainer)
    assert [type(h) for h in a._forward_pre_hooks.values()] == [prune.CustomFromMask] * 2


def test_prune_method_on_a_tensor():
    t = cg.tensor([[0.5, -2.0, 0.1], [3.0, -0.2, 1.0]])
    out = prune.L1Unstructured(amount=2).prune(t)
    np.testing.assert_allclose(out.numpy(), [[0.5, -2.0, 0], [3.0, 0, 1.0]])
    scores = cg.tensor([[9.0, 1.0, 9.0], [9.0, 9.0, 0.0]])
    out = prune.L1Unstructured(amount=2).prune(t, importance_scores=scores)
    np.testing.assert_allclose(out.numpy(), [[0.5, 0, 0.1], [3.0, -0.2, 0]])


# --- the hook, remove, state dicts -----------------------------------------------------

def test_forward_recomputes_the_pruned_weight():
    m = _module((3, 4))
    prune.l1_unstructured(m, "weight", amount=5)
    mask = m.weight_mask.numpy()
    x = cg.tensor(_weights((2, 4), seed=5))
    with cg.no_grad():
        m.weight_orig.mul_(2.0)
    y = m(x).detach().numpy()
    w = m.weight_orig.detach().numpy() * mask
    np.testing.assert_allclose(y, x.numpy() @ w.T + m.bias.detach().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(m.weight.detach().numpy(), w)


def test_remove():
    m = _module((3, 4))
    prune.l1_unstructured(m, "weight", amount=5)
    prune.random_unstructured(m, "weight", amount=2)
    pruned = m.weight.detach().numpy()
    assert prune.remove(m, "weight") is m
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    np.testing.assert_array_equal(m.weight.detach().numpy(), pruned)
    assert (pruned == 0).sum() == 7
    assert list(m.state_dict()) == ["bias", "weight"]
    assert not m._forward_pre_hooks and not prune.is_pruned(m)
    with pytest.raises(ValueError, match="Parameter 'weight' of module Linear.* has to be "
                                         "pruned before pruning can be removed"):
        prune.remove(m, "weight")


def test_is_pruned_sees_submodules():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert not prune.is_pruned(net)
    prune.random_unstructured(net[2], "bias", amount=1)
    assert prune.is_pruned(net)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias_orig",
                                      "2.bias_mask"]


def test_state_dict_load():
    src = _module((4, 5))
    prune.l1_unstructured(src, "weight", amount=0.5)
    sd = src.state_dict()
    dst = _module((4, 5), seed=8)
    prune.identity(dst, "weight")
    dst.load_state_dict(sd)
    np.testing.assert_array_equal(dst.weight_mask.numpy(), src.weight_mask.numpy())
    x = cg.tensor(_weights((2, 5), seed=1))
    np.testing.assert_allclose(dst(x).detach().numpy(), src(x).detach().numpy())
    plain = _module((4, 5))
    with pytest.raises(RuntimeError, match="Missing key\\(s\\) in state_dict: \"weight\""):
        plain.load_state_dict(sd)


# --- gradients -------------------------------------------------------------------------

def test_gradient_only_through_kept_entries():
    m = _module((4, 5), dtype=cg.float64)
    prune.l1_unstructured(m, "weight", amount=8)
    mask = m.weight_mask.numpy()
    x = cg.tensor(np.random.default_rng(2).standard_normal((3, 5)))
    (m(x) ** 2).sum().backward()
    y = x.numpy() @ (m.weight_orig.detach().numpy() * mask).T + m.bias.detach().numpy()
    dense = 2 * y.T @ x.numpy()
    np.testing.assert_allclose(m.weight_orig.grad.numpy(), dense * mask, rtol=1e-10)
    assert (m.weight_orig.grad.numpy()[mask == 0] == 0).all()
    assert m.weight_mask.grad is None and not m.weight_mask.requires_grad

    hook = next(iter(m._forward_pre_hooks.values()))

    def f(orig):
        m._parameters["weight_orig"] = orig
        return (hook.apply_mask(m) ** 3).sum()

    orig = m.weight_orig.detach().clone().requires_grad_()
    assert gradcheck(f, (orig,))


def test_pruned_model_trains():
    cg.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    prune.global_unstructured([(net[0], "weight"), (net[2], "weight")],
                              pruning_method=prune.L1Unstructured, amount=0.5)
    prune.random_structured(net[0], "weight", amount=2, dim=0)
    masks = [net[0].weight_mask.numpy(), net[2].weight_mask.numpy()]
    opt = cg.optim.SGD(net.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = cg.tensor(rng.standard_normal((32, 4)).astype(np.float32))
    y = cg.tensor(rng.standard_normal((32, 1)).astype(np.float32))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    net(x)
    for layer, mask in zip((net[0], net[2]), masks):
        assert (layer.weight.detach().numpy()[mask == 0] == 0).all()
        np.testing.assert_array_equal(layer.weight_mask.numpy(), mask)


# --- errors ----------------------------------------------------------------------------

def test_errors():
    m = _module((3, 4))
    with pytest.raises(ValueError, match="amount=13 should be smaller than the number of "
                                         "parameters to prune=12"):
        prune.l1_unstructured(m, "weight", amount=13)
    assert "weight" in m._parameters and not m._forward_pre_hooks  # left as it was
    with pytest.raises(ValueError, match=r"amount=-1 should either be a float in the range "
                                         r"\[0, 1\] or a non-negative integer"):
        prune.random_unstructured(m, "weight", amount=-1)
    with pytest.raises(ValueError, match="amount=1.5 should either"):
        prune.L1Unstructured(1.5)
    with pytest.raises(TypeError, match="Invalid type for amount: 0.5. Must be int or float."):
        prune.l1_unstructured(m, "weight", amount="0.5")
    with pytest.raises(IndexError, match=r"Invalid index 2 for tensor of size "):
        prune.ln_structured(m, "weight", amount=1, n=2, dim=2)
    with pytest.raises(ValueError, match="amount=5 should be smaller than the number of "
                                         "parameters to prune=4"):
        prune.random_structured(m, "weight", amount=5, dim=1)
    with pytest.raises(ValueError, match="Structured pruning can only be applied to "
                                         "multidimensional tensors"):
        prune.ln_structured(m, "bias", amount=1, n=1, dim=0)
    with pytest.raises(AssertionError, match="importance_scores should have the same shape"):
        prune.l1_unstructured(m, "weight", 1, importance_scores=cg.ones(4, 3))
    with pytest.raises(TypeError, match='Only "unstructured" PRUNING_TYPE supported'):
        prune.global_unstructured([(m, "weight")], prune.RandomStructured, amount=1)
    with pytest.raises(TypeError, match="parameters is not an Iterable"):
        prune.global_unstructured(3, prune.L1Unstructured, amount=1)
    with pytest.raises(TypeError, match="importance_scores must be of type dict"):
        prune.global_unstructured([(m, "weight")], prune.L1Unstructured,
                                  importance_scores=[1], amount=1)
    other = prune.Identity()
    other._tensor_name = "bias"
    container = prune.PruningContainer(prune.Identity.apply(_module((2, 2)), "weight"))
    with pytest.raises(ValueError, match="Can only add pruning methods acting on the "
                                         "parameter named 'weight'"):
        container.add_pruning_method(other)
    with pytest.raises(TypeError, match="is not a BasePruningMethod subclass"):
        container.add_pruning_method(3)
    assert "weight" in m._parameters and not prune.is_pruned(m)


# --- ties ------------------------------------------------------------------------------

def test_ties_at_the_boundary_prune_the_lower_indices_first():
    """PyTorch leaves the order of equal values to its topk (CPU and CUDA differ): here the
    lower flat indices are pruned first, and NaN counts as the largest magnitude."""
    m = nn.Linear(4, 2)
    with cg.no_grad():
        m.weight.copy_(cg.tensor([[1.0, 2.0, 1.0, 1.0], [float("nan"), 1.0, 3.0, 1.0]]))
    prune.l1_unstructured(m, "weight", amount=3)
    assert m.weight_mask.tolist() == [[0, 1, 0, 0], [1, 1, 1, 1]]
    prune.l1_unstructured(m, "weight", amount=2)  # of those still kept
    assert m.weight_mask.tolist() == [[0, 1, 0, 0], [1, 0, 1, 0]]


# --- PyTorch parity --------------------------------------------------------------------

def _torch_prune():
    """PyTorch and its prune module (which ``import torch`` alone does not load)."""
    torch = torch_or_skip()
    return torch, importlib.import_module("torch.nn.utils.prune")


def _pair(torch, shape, seed, ties):
    c = _module(shape, seed, ties)
    t = (torch.nn.Linear(shape[1], shape[0]) if len(shape) == 2
         else torch.nn.Conv2d(shape[1], shape[0], shape[2:]))
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(c.weight.detach().numpy()))
        t.bias.copy_(torch.from_numpy(c.bias.detach().numpy()))
    return t, c


def _same_outcome(torch, t, c, fn, *args, exact=True, **kwargs):
    """Apply torch's and clgraph's ``fn`` to the two modules; same error, or same mask and
    pruned weight (with ``exact=False``, where equal values may straddle the boundary, and
    iterative pruning then goes its own way: the same errors and state-dict keys only;
    with ``exact="values"``, unstructured: as many pruned and the same kept magnitudes)."""
    errors = []
    for lib, m in ((_torch_prune()[1], t), (prune, c)):
        try:
            getattr(lib, fn)(m, "weight", *args, **kwargs)
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - the two libraries' errors are compared
            errors.append(e)
    assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1]), errors
    if hasattr(t, "weight_mask"):
        cm, tm = c.weight_mask.numpy(), t.weight_mask.numpy()
        cw, tw = c.weight.detach().numpy(), t.weight.detach().numpy()
        if exact is True:
            np.testing.assert_array_equal(cm, tm)
            np.testing.assert_array_equal(cw, tw)
        elif exact == "values":
            assert cm.sum() == tm.sum()
            np.testing.assert_array_equal(np.sort(np.abs(cw), None), np.sort(np.abs(tw), None))
        assert list(c.state_dict()) == list(t.state_dict())


@pytest.mark.parametrize("ties", [False, True])
def test_parity_l1_unstructured(ties):
    torch = torch_or_skip()
    for amount in (0, 3, 0.3, 0.5, 1.0, 21, -1, 1.5):
        t, c = _pair(torch, (4, 5), 1, ties)
        exact = "values" if ties else True
        _same_outcome(torch, t, c, "l1_unstructured", amount, exact=exact)
        _same_outcome(torch, t, c, "l1_unstructured", 0.4, exact=exact)


@pytest.mark.parametrize("ties", [False, True])
def test_parity_ln_structured_iterative(ties):
    torch = torch_or_skip()
    for n in (1, 2, math.inf, -math.inf, 0, 3):
        for dim in (0, 1, -1, 3, 4, -5):
            t, c = _pair(torch, (6, 3, 2, 2), dim % 3, ties)
            # the 0-"norm" (a count) ties whole channels, and so does the smallest magnitude
            # (-inf) once channels hold pruned zeros
            exact = not ties and n not in (0, -math.inf)
            _same_outcome(torch, t, c, "ln_structured", 0.5, n, dim, exact=exact)
            _same_outcome(torch, t, c, "ln_structured", 1, n, dim, exact=exact)
            _same_outcome(torch, t, c, "l1_unstructured", 5, exact=exact)
            _same_outcome(torch, t, c, "ln_structured", 2, n, 0, exact=exact)
            _same_outcome(torch, t, c, "l1_unstructured", 0.5, exact=exact)


def test_parity_global_custom_and_importance():
    torch, tprune = _torch_prune()
    (ta, ca), (tb, cb) = _pair(torch, (4, 5), 2, False), _pair(torch, (3, 3, 2, 2), 3, False)
    scores = _weights((4, 5), seed=6)
    keep = _weights((3, 3, 2, 2), seed=7, ties=True) != 0
    _same_outcome(torch, tb, cb, "custom_from_mask", mask=None)  # torch and clgraph fail alike
    for lib, a, b, s in ((tprune, ta, tb, torch.from_numpy(scores)),
                         (prune, ca, cb, cg.tensor(scores))):
        lib.custom_from_mask(b, "weight", mask=(torch.from_numpy(keep) if lib is not prune
                                                else cg.tensor(keep)))
        lib.l1_unstructured(b, "weight", amount=4)
        lib.global_unstructured([(a, "weight"), (b, "weight"), (a, "bias")],
                                pruning_method=lib.L1Unstructured,
                                importance_scores={(a, "weight"): s}, amount=0.35)
        lib.global_unstructured([(a, "weight"), (b, "weight")],
                                pruning_method=lib.L1Unstructured, amount=7)
    for t, c in ((ta, ca), (tb, cb)):
        np.testing.assert_array_equal(c.weight_mask.numpy(), t.weight_mask.numpy())
        np.testing.assert_array_equal(c.weight.detach().numpy(), t.weight.detach().numpy())
        assert list(c.state_dict()) == list(t.state_dict())
    np.testing.assert_array_equal(ca.bias_mask.numpy(), ta.bias_mask.numpy())


# --- nn.utils.stateless ----------------------------------------------------------------

def test_stateless_functional_call():
    m = _module((2, 3))
    w = cg.ones(2, 3)
    x = cg.tensor([[1.0, 2.0, 3.0]])
    with pytest.warns(FutureWarning, match="torch.nn.utils.stateless.functional_call` is "
                                           "deprecated as of PyTorch 2.0"):
        y = nn.utils.stateless.functional_call(m, {"weight": w}, x)
    np.testing.assert_allclose(y.detach().numpy(), 6.0 + m.bias.detach().numpy()[None])
    assert m.weight is m._parameters["weight"] and not (m.weight.detach().numpy() == 1).all()
    with pytest.warns(FutureWarning), pytest.raises(RuntimeError, match="Unexpected key"):
        nn.utils.stateless.functional_call(m, {"foo": w}, (x,), strict=True)
