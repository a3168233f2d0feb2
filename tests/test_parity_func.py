"""PyTorch parity of the function transforms and utilities: autograd.functional, cg.func
(grad, vjp, jvp, jacrev, jacfwd, hessian, vmap, functional_call, stack_module_state),
cg.random, cg.testing, nn.attention, amp.custom_fwd/custom_bwd, the utils.data samplers
and data sets, and nn.utils (norms, fusion, skip_init, orthogonal, deprecated init names).

Each case is written once against a framework module ``M`` and run on clgraph and, where
torch is installed, on torch; values are also checked against float64 finite differences
or closed forms, so CI without torch still checks them."""

import math
import warnings

import numpy as np
import pytest

import clgraph as cg
import clgraph.nn as nn

RNG = np.random.default_rng(0)
X3 = RNG.standard_normal(3)
Y2 = RNG.standard_normal(2)
XB = RNG.standard_normal((4, 3))


def _np(x):
    if isinstance(x, (tuple, list)):
        return type(x)(_np(v) for v in x)
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    if hasattr(x, "detach"):
        return np.asarray(x.detach().cpu().numpy() if hasattr(x, "cpu") else x.detach().numpy())
    return x


def _close(a, b, tol=1e-6):
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), (a, b)
        for u, v in zip(a, b):
            _close(u, v, tol)
        return
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _close(a[k], b[k], tol)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def _t(M, a):
    return M.tensor(a, dtype=M.float64)


def _fd_jacobian(f, x, eps=1e-6):
    """Central differences of numpy f at numpy x: shape f(x).shape + x.shape."""
    base = np.asarray(f(x))
    jac = np.zeros(base.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        jac[(...,) + idx] = (np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps)
    return jac


# --- cases written once for clgraph and torch ------------------------------------------------

def _af(M):
    return M.autograd.functional


VALUE_CASES = {
    "jacobian": lambda M: _af(M).jacobian(lambda a: a.sin() * a.sum(), _t(M, X3)),
    "jacobian_tuple": lambda M: _af(M).jacobian(
        lambda a, b: (a * b.sum(), (a ** 2).sum() * b), (_t(M, X3), _t(M, Y2))),
    "jacobian_tuple_in": lambda M: _af(M).jacobian(lambda a, b: a.sum() * b,
                                                   (_t(M, X3), _t(M, Y2))),
    "jacobian_tuple_out": lambda M: _af(M).jacobian(lambda a: (a.exp(), a.sum()), _t(M, X3)),
    "jacobian_indep": lambda M: _af(M).jacobian(lambda a: M.ones(2, dtype=M.float64),
                                                _t(M, X3)),
    "jacobian_vectorize": lambda M: _af(M).jacobian(lambda a: a.tanh(), _t(M, X3),
                                                    vectorize=True),
    "jacobian_forward": lambda M: _af(M).jacobian(lambda a: a.tanh(), _t(M, X3),
                                                  vectorize=True, strategy="forward-mode"),
    "hessian": lambda M: _af(M).hessian(lambda a: (a ** 3).sum() + a.prod(), _t(M, X3)),
    "hessian_tuple": lambda M: _af(M).hessian(lambda a, b: (a.sin().sum() * b.exp().sum()),
                                              (_t(M, X3), _t(M, Y2))),
    "vjp": lambda M: _af(M).vjp(lambda a: a.exp() * 2, _t(M, X3), _t(M, X3[::-1].copy())),
    "vjp_scalar": lambda M: _af(M).vjp(lambda a: (a ** 2).sum(), _t(M, X3)),
    "vjp_tuple": lambda M: _af(M).vjp(lambda a, b: (a * 2, b.sum() * a),
                                      (_t(M, X3), _t(M, Y2)), (_t(M, X3), _t(M, X3))),
    "jvp": lambda M: _af(M).jvp(lambda a: a.sin() * a, _t(M, X3), _t(M, X3 * 0 + 1)),
    "jvp_tuple": lambda M: _af(M).jvp(lambda a, b: (a * b.sum(), b.exp()),
                                      (_t(M, X3), _t(M, Y2)), (_t(M, X3), _t(M, Y2))),
    "hvp": lambda M: _af(M).hvp(lambda a: (a ** 3).sum(), _t(M, X3), _t(M, X3)),
    "vhp": lambda M: _af(M).vhp(lambda a: (a.sin() * a).sum(), _t(M, X3), _t(M, X3)),
    "hvp_linear": lambda M: _af(M).hvp(lambda a: a.sum(), _t(M, X3), _t(M, X3)),
    "func_grad": lambda M: M.func.grad(lambda a: (a.sin() * a).sum())(_t(M, X3)),
    "func_grad_argnums": lambda M: M.func.grad(lambda a, b: (a * b.sum()).sum(),
                                               argnums=(0, 1))(_t(M, X3), _t(M, Y2)),
    "func_grad_dict": lambda M: M.func.grad(lambda d: (d["w"] ** 2).sum() * d["b"].sum())(
        {"w": _t(M, X3), "b": _t(M, Y2)}),
    "func_grad_and_value_aux": lambda M: M.func.grad_and_value(
        lambda a: ((a ** 2).sum(), a.mean()), has_aux=True)(_t(M, X3)),
    "func_grad_grad": lambda M: M.func.grad(
        lambda a: M.func.grad(lambda b: (b ** 3).sum())(a).sum())(_t(M, X3)),
    "func_vjp": lambda M: (lambda r: (r[0], r[1](_t(M, X3))))(
        M.func.vjp(lambda a: a.exp(), _t(M, X3))),
    "func_jvp": lambda M: M.func.jvp(lambda a: a.exp() * a, (_t(M, X3),),
                                     (_t(M, X3 * 0 + 1),)),
    "func_jvp_aux": lambda M: M.func.jvp(lambda a: (a.exp(), a.sum()), (_t(M, X3),),
                                         (_t(M, X3),), has_aux=True),
    "func_jvp_indep": lambda M: M.func.jvp(lambda a: (M.ones(2, dtype=M.float64), a * 2),
                                           (_t(M, X3),), (_t(M, X3),)),
    "func_jacrev": lambda M: M.func.jacrev(lambda a: a.sin() * a.sum())(_t(M, X3)),
    "func_jacrev_tuple": lambda M: M.func.jacrev(lambda a, b: {"p": a * b.sum(), "q": b},
                                                 argnums=(0, 1))(_t(M, X3), _t(M, Y2)),
    "func_jacfwd": lambda M: M.func.jacfwd(lambda a: a.exp() * a.sum())(_t(M, X3)),
    "func_hessian": lambda M: M.func.hessian(lambda a: (a.sin() * a.sum()).sum())(_t(M, X3)),
    "func_vmap": lambda M: M.func.vmap(lambda a, b: a * b + a.sum(), in_dims=(0, None))(
        _t(M, XB), _t(M, X3)),
    "func_vmap_dims": lambda M: M.func.vmap(lambda a: (a.sum(0), a * 2), in_dims=1,
                                            out_dims=(0, 1))(_t(M, XB)),
    "func_vmap_nested": lambda M: M.func.vmap(M.func.vmap(lambda a: a.exp().sum()))(
        _t(M, XB)),
    "func_vmap_grad": lambda M: M.func.vmap(M.func.grad(lambda a: (a.sin() * a).sum()))(
        _t(M, XB)),
    "func_grad_vmap": lambda M: M.func.grad(
        lambda a: M.func.vmap(lambda r: (r ** 2).sum())(a).sum())(_t(M, XB)),
    "func_vmap_jacrev": lambda M: M.func.vmap(M.func.jacrev(lambda a: a.sin() * a.sum()))(
        _t(M, XB)),
    "func_vmap_kwargs_dict": lambda M: M.func.vmap(lambda d, k=None: d["a"] * k,
                                                   in_dims=({"a": 0},))(
        {"a": _t(M, XB)}, k=_t(M, X3)),
    "func_vmap_negative_dims": lambda M: M.func.vmap(lambda a: a * 2, in_dims=-1,
                                                     out_dims=-1)(_t(M, XB)),
    "func_vmap_out_none": lambda M: M.func.vmap(lambda a: (a.sum(), 1), out_dims=(0, None))(
        _t(M, XB)),
    "func_hessian_argnums": lambda M: M.func.hessian(lambda a, b: (a.sin() * b.sum()).sum(),
                                                     argnums=(0, 1))(_t(M, X3), _t(M, Y2)),
    "func_vmap_hessian": lambda M: M.func.vmap(M.func.jacrev(M.func.jacrev(
        lambda a: (a.sin() * a.sum()).sum())))(_t(M, XB)),
    "func_vmap_empty_batch": lambda M: M.func.vmap(lambda a: (a.sum(), a * 2), in_dims=1,
                                                   out_dims=(0, 1))(M.zeros(3, 0)),
    "func_vmap_unbatched_out": lambda M: M.func.vmap(lambda a: M.ones(2, dtype=M.float64))(
        _t(M, X3)),
    "vmap_top_level": lambda M: M.vmap(lambda a: a.sum())(_t(M, XB)),
}


@pytest.mark.parametrize("name", sorted(VALUE_CASES))
def test_values_match_torch(name):
    ours = _np(VALUE_CASES[name](cg))
    torch = pytest.importorskip("torch")
    _close(ours, _np(VALUE_CASES[name](torch)))


ERROR_CASES = {
    "jacobian_strict": lambda M: _af(M).jacobian(lambda a: M.ones(2, dtype=M.float64),
                                                 _t(M, X3), strict=True),
    "jacobian_strategy": lambda M: _af(M).jacobian(lambda a: a, _t(M, X3), strategy="x"),
    "jacobian_fwd_novec": lambda M: _af(M).jacobian(lambda a: a, _t(M, X3),
                                                    strategy="forward-mode"),
    "jacobian_strict_vec": lambda M: _af(M).jacobian(lambda a: a, _t(M, X3), strict=True,
                                                     vectorize=True),
    "jacobian_list_input": lambda M: _af(M).jacobian(lambda a, b: a + b,
                                                     [_t(M, X3), _t(M, X3)]),
    "jacobian_number_out": lambda M: _af(M).jacobian(lambda a: 1.0, _t(M, X3)),
    "hessian_tuple_out": lambda M: _af(M).hessian(lambda a: (a.sum(),), _t(M, X3)),
    "hessian_vector_out": lambda M: _af(M).hessian(lambda a: a, _t(M, X3)),
    "vjp_v_none": lambda M: _af(M).vjp(lambda a: a * 2, _t(M, X3)),
    "vjp_v_shape": lambda M: _af(M).vjp(lambda a: a * 2, _t(M, X3), _t(M, Y2)),
    "vjp_v_count": lambda M: _af(M).vjp(lambda a: a * 2, _t(M, X3), (_t(M, X3), _t(M, X3))),
    "jvp_v_none": lambda M: _af(M).jvp(lambda a: a * 2, _t(M, X3)),
    "hvp_linear_strict": lambda M: _af(M).hvp(lambda a: a.sum(), _t(M, X3), _t(M, X3),
                                              strict=True),
    "grad_nonscalar": lambda M: M.func.grad(lambda a: a * 2)(_t(M, X3)),
    "grad_number_arg": lambda M: M.func.grad(lambda a: a * 2)(1.0),
    "grad_argnum_range": lambda M: M.func.grad(lambda a: a.sum(), argnums=1)(_t(M, X3)),
    "grad_argnum_type": lambda M: M.func.grad(lambda a: a.sum(), argnums=1.0)(_t(M, X3)),
    "grad_argnums_empty": lambda M: M.func.grad(lambda a: a.sum(), argnums=())(_t(M, X3)),
    "grad_aux_not_pair": lambda M: M.func.grad(lambda a: a.sum(), has_aux=True)(_t(M, X3)),
    "grad_int_input": lambda M: M.func.grad(lambda a: a.sum())(M.arange(3)),
    "grad_number_out": lambda M: M.func.grad(lambda a: 1.0)(_t(M, X3)),
    "vmap_sizes": lambda M: M.func.vmap(lambda a, b: a + b)(_t(M, XB), _t(M, X3)),
    "vmap_nothing_batched": lambda M: M.func.vmap(lambda a: a, in_dims=(None,))(_t(M, X3)),
    "vmap_in_dim_range": lambda M: M.func.vmap(lambda a: a, in_dims=2)(_t(M, X3)),
    "vmap_in_dims_type": lambda M: M.func.vmap(lambda a: a, in_dims=1.0)(_t(M, X3)),
    "vmap_number_out": lambda M: M.func.vmap(lambda a: 1)(_t(M, X3)),
    "vmap_out_dim_range": lambda M: M.func.vmap(lambda a: a, out_dims=2)(_t(M, XB)),
    "vmap_scalar_in": lambda M: M.func.vmap(lambda a: a)(_t(M, 1.0)),
    "vmap_number_in": lambda M: M.func.vmap(lambda a: a)(1.0),
    "vmap_random": lambda M: M.func.vmap(lambda a: a + M.rand(()))(_t(M, X3)),
    "vmap_randomness_arg": lambda M: M.func.vmap(lambda a: a, randomness="x")(_t(M, X3)),
    "vmap_no_inputs": lambda M: M.func.vmap(lambda: 1)(),
    "jvp_primals_not_tuple": lambda M: M.func.jvp(lambda a: a, _t(M, X3), _t(M, X3)),
    "jvp_tangent_shape": lambda M: M.func.jvp(lambda a: a, (_t(M, X3),), (_t(M, Y2),)),
    "jvp_tangent_number": lambda M: M.func.jvp(lambda a: a, (_t(M, X3),), (1.0,)),
    "jvp_strict": lambda M: M.func.jvp(lambda a: M.ones(2, dtype=M.float64), (_t(M, X3),),
                                       (_t(M, X3),), strict=True),
    "jvp_number_out": lambda M: M.func.jvp(lambda a: 1.0, (_t(M, X3),), (_t(M, X3),)),
    "vjp_cotangent_shape": lambda M: M.func.vjp(lambda a: a * 2, _t(M, X3))[1](_t(M, Y2)),
    "jacrev_number_out": lambda M: M.func.jacrev(lambda a: 1.0)(_t(M, X3)),
    "jacrev_chunk": lambda M: M.func.jacrev(lambda a: a, chunk_size=0)(_t(M, X3)),
    "jacrev_aux": lambda M: M.func.jacrev(lambda a: a, has_aux=True)(_t(M, X3)),
    "jacfwd_aux": lambda M: M.func.jacfwd(lambda a: a, has_aux=True)(_t(M, X3)),
    "jvp_aux": lambda M: M.func.jvp(lambda a: a, (_t(M, X3),), (_t(M, X3),), has_aux=True),
    "vjp_aux": lambda M: M.func.vjp(lambda a: a, _t(M, X3), has_aux=True),
    "vjp_bool_out": lambda M: M.func.vjp(lambda a: a > 0, _t(M, X3)),
    "vjp_fn_number": lambda M: M.func.vjp(lambda a: a * 2, _t(M, X3))[1](1.0),
    "grad_argnums_dup": lambda M: M.func.grad(lambda a, b: (a * b).sum(), argnums=(0, 0))(
        _t(M, X3), _t(M, X3)),
    "vmap_chunk": lambda M: M.func.vmap(lambda a: a, chunk_size=0)(_t(M, X3)),
    "vmap_out_dims_structure": lambda M: M.func.vmap(lambda a: (a, a), out_dims=(0, 0, 0))(
        _t(M, X3)),
    "functional_call_strict": lambda M: M.func.functional_call(
        M.nn.Linear(2, 2), {"weight": M.ones(2, 2)}, (M.ones(2),), strict=True),
    "functional_call_dup": lambda M: M.func.functional_call(
        M.nn.Linear(2, 2), ({"weight": M.ones(2, 2)}, {"weight": M.ones(2, 2)}),
        (M.ones(2),)),
    "functional_call_not_dict": lambda M: M.func.functional_call(M.nn.Linear(2, 2), 3,
                                                                 (M.ones(2),)),
    "stack_module_state_empty": lambda M: M.func.stack_module_state([]),
    "stack_module_state_modes": lambda M: M.func.stack_module_state(
        [M.nn.Linear(2, 2), M.nn.Linear(2, 2).eval()]),
    "stack_module_state_requires_grad": lambda M: M.func.stack_module_state(
        [M.nn.Linear(2, 2), M.nn.Linear(2, 2).requires_grad_(False)]),
    "stack_module_state_classes": lambda M: M.func.stack_module_state(
        [M.nn.Linear(2, 2), M.nn.Conv1d(2, 2, 1)]),
}


def _error(fn, M):
    try:
        fn(M)
    except Exception as exc:  # noqa: BLE001  (the type is what is compared)
        return type(exc), str(exc)
    raise AssertionError("no exception raised")


def _canon(text: str) -> str:
    """PyTorch prints pytree specs as TreeSpec(...); clgraph prints the shape."""
    for cut in (" in_dims has structure", " out_dims has structure", " Got primals with"):
        text = text.split(cut)[0]
    return text


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_errors_match_torch(name):
    kind, msg = _error(ERROR_CASES[name], cg)
    assert issubclass(kind, (ValueError, RuntimeError, TypeError, AssertionError,
                             NotImplementedError, IndexError))
    assert msg
    torch = pytest.importorskip("torch")
    t_kind, t_msg = _error(ERROR_CASES[name], torch)
    assert kind is t_kind, (kind, t_kind, msg, t_msg)
    assert _canon(msg) == _canon(t_msg)


# --- without torch: closed forms and finite differences -----------------------------------


def test_jacobian_and_hessian_against_finite_differences():
    f_np = lambda a: np.sin(a) * a.sum()  # noqa: E731
    jac = cg.autograd.functional.jacobian(lambda a: a.sin() * a.sum(), _t(cg, X3))
    _close(_np(jac), _fd_jacobian(f_np, X3), 1e-6)
    g_np = lambda a: 3 * a ** 2 + np.cos(a)  # noqa: E731  (gradient of sum(a^3) + sum(sin a))
    hess = cg.func.hessian(lambda a: (a ** 3).sum() + a.sin().sum())(_t(cg, X3))
    _close(_np(hess), _fd_jacobian(g_np, X3), 1e-5)
    jr = cg.func.jacrev(lambda a, b: a * b.sum(), argnums=1)(_t(cg, X3), _t(cg, Y2))
    _close(_np(jr), np.repeat(X3[:, None], 2, axis=1))


def test_jvp_vjp_and_hvp_closed_forms():
    x, v = _t(cg, X3), _t(cg, X3[::-1].copy())
    out, jv = cg.func.jvp(lambda a: a.exp(), (x,), (v,))
    _close(_np(jv), np.exp(X3) * X3[::-1])
    _, vj = cg.autograd.functional.vjp(lambda a: a.exp(), x, v)
    _close(_np(vj), np.exp(X3) * X3[::-1])
    _, hv = cg.autograd.functional.hvp(lambda a: (a ** 3).sum(), x, v)
    _close(_np(hv), 6 * X3 * X3[::-1])
    _, vh = cg.autograd.functional.vhp(lambda a: (a ** 3).sum(), x, v)
    _close(_np(vh), 6 * X3 * X3[::-1])


def test_create_graph_results_differentiate_again():
    x = _t(cg, X3).requires_grad_()
    jac = cg.autograd.functional.jacobian(lambda a: a ** 3, x, create_graph=True)
    assert jac.requires_grad
    (g,) = cg.autograd.grad(jac.sum(), x)
    _close(_np(g), 6 * X3)
    assert not cg.autograd.functional.jacobian(lambda a: a ** 3, x).requires_grad


def test_func_results_keep_outer_graph_only():
    x = _t(cg, X3)
    g = cg.func.grad(lambda a: (a ** 2).sum())(x)
    assert not g.requires_grad and g.grad_fn is None
    w = _t(cg, Y2[:1].repeat(3)).requires_grad_()
    g = cg.func.grad(lambda a: (a * w).sum())(x)  # depends on w from outside
    assert g.requires_grad
    (gw,) = cg.autograd.grad(g.sum(), w)
    _close(_np(gw), np.ones(3))
    with cg.no_grad():
        assert not cg.func.grad(lambda a: (a * w).sum())(x).requires_grad


def test_vmap_matches_a_loop_and_nests():
    xb = _t(cg, XB)
    out = cg.func.vmap(lambda a: (a.exp() * a).sum())(xb)
    _close(_np(out), (np.exp(XB) * XB).sum(1))
    pair = cg.func.vmap(lambda a, b: (a * b, b), in_dims=(1, None), out_dims=(1, 0))(
        xb, _t(cg, 2.0))
    _close(_np(pair[0]), XB * 2)
    assert tuple(pair[1].shape) == (3,)
    per_sample = cg.func.vmap(cg.func.grad(lambda a: (a ** 3).sum()))(xb)
    _close(_np(per_sample), 3 * XB ** 2)


def test_vmap_randomness_modes():
    x = cg.zeros(4, 3)
    with pytest.raises(RuntimeError, match="randomness error mode"):
        cg.func.vmap(lambda a: a + cg.rand(3))(x)
    same = cg.func.vmap(lambda a: a + cg.rand(3), randomness="same")(x).numpy()
    assert np.allclose(same, same[:1])
    diff = cg.func.vmap(lambda a: a + cg.rand(3), randomness="different")(x).numpy()
    assert not np.allclose(diff, diff[:1])


def test_functional_call_replaces_and_restores():
    cg.manual_seed(0)
    m = nn.Linear(3, 2)
    w0 = m.weight
    params = {"weight": cg.ones(2, 3), "bias": cg.zeros(2)}
    out = cg.func.functional_call(m, params, cg.tensor([[1.0, 2.0, 3.0]]))
    _close(_np(out), [[6.0, 6.0]])
    assert m.weight is w0
    out = cg.func.functional_call(m, ({"weight": cg.ones(2, 3)}, {"bias": cg.ones(2)}),
                                  args=(), kwargs={"input": cg.ones(1, 3)})
    _close(_np(out), [[4.0, 4.0]])
    tied = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 2, bias=False))
    tied[1].weight = tied[0].weight
    x = cg.ones(1, 2)
    out = cg.func.functional_call(tied, {"0.weight": cg.eye(2) * 2}, (x,))
    _close(_np(out), [[4.0, 4.0]])
    out = cg.func.functional_call(tied, {"0.weight": cg.eye(2) * 2}, (x,), tie_weights=False)
    _close(_np(out), _np(tied[1](x * 2)))


def test_ensemble_with_stack_module_state_and_vmap():
    cg.manual_seed(0)
    models = [nn.Linear(3, 2) for _ in range(3)]
    params, buffers = cg.func.stack_module_state(models)
    assert tuple(params["weight"].shape) == (3, 2, 3) and params["weight"].is_leaf
    assert params["weight"].requires_grad and buffers == {}
    base = nn.Linear(3, 2)
    x = _t(cg, XB).float()

    def call(p, b, inp):
        return cg.func.functional_call(base, (p, b), (inp,))

    out = cg.func.vmap(call, in_dims=(0, 0, None))(params, buffers, x)
    expected = np.stack([_np(m(x)) for m in models])
    _close(_np(out), expected, 1e-5)


def test_per_sample_grads_of_a_module():
    cg.manual_seed(0)
    model = nn.Linear(3, 1)
    params = {k: v.detach() for k, v in model.named_parameters()}
    x = _t(cg, XB).float()

    def loss(p, sample):
        return cg.func.functional_call(model, p, (sample[None],)).pow(2).sum()

    grads = cg.func.vmap(cg.func.grad(loss), in_dims=(None, 0))(params, x)
    w, b = _np(model.weight)[0], _np(model.bias)[0]
    pred = XB @ w + b
    _close(_np(grads["weight"]), (2 * pred)[:, None, None] * XB[:, None, :], 1e-4)
    _close(_np(grads["bias"]), (2 * pred)[:, None], 1e-4)


# --- cg.random ------------------------------------------------------------------------------


def test_random_state_and_fork_rng():
    cg.random.manual_seed(5)
    assert cg.random.initial_seed() == 5
    state = cg.random.get_rng_state()
    a = cg.rand(4).numpy()
    cg.random.set_rng_state(state)
    np.testing.assert_array_equal(cg.rand(4).numpy(), a)
    cg.random.set_rng_state(state)
    with cg.random.fork_rng(devices=[]):
        cg.rand(100)
    np.testing.assert_array_equal(cg.rand(4).numpy(), a)
    cg.random.set_rng_state(state)
    with cg.random.fork_rng(enabled=False):
        cg.rand(4)
    assert not np.array_equal(cg.rand(4).numpy(), a)
    s = cg.random.seed()
    assert cg.random.initial_seed() == s
    assert cg.random.thread_safe_generator() is None


# --- cg.testing -----------------------------------------------------------------------------


ASSERT_CASES = {
    "values": lambda M: M.testing.assert_close(M.tensor([1., 2., 3.]), M.tensor([1., 2.1, 3.])),
    "values_2d": lambda M: M.testing.assert_close(M.tensor([[1., 2.], [3., 4.]]),
                                                  M.tensor([[1., 2.], [3.5, 4.]])),
    "ints": lambda M: M.testing.assert_close(M.tensor([1, 2]), M.tensor([1, 3])),
    "bool": lambda M: M.testing.assert_close(M.tensor([True]), M.tensor([False])),
    "shape": lambda M: M.testing.assert_close(M.zeros(2), M.zeros(3)),
    "dtype": lambda M: M.testing.assert_close(M.zeros(2), M.zeros(2, dtype=M.float64)),
    "nan": lambda M: M.testing.assert_close(M.tensor([math.nan]), M.tensor([math.nan])),
    "inf": lambda M: M.testing.assert_close(M.tensor([math.inf]), M.tensor([-math.inf])),
    "scalar": lambda M: M.testing.assert_close(1.0, 1.1),
    "scalar_int": lambda M: M.testing.assert_close(1, 2),
    "scalar_types": lambda M: M.testing.assert_close(1, 1.0),
    "zero_dim": lambda M: M.testing.assert_close(M.tensor(1.), M.tensor(2.)),
    "rtol_only": lambda M: M.testing.assert_close(1.0, 1.0, rtol=1e-3),
    "atol_only": lambda M: M.testing.assert_close(1.0, 1.0, atol=1e-3),
    "msg": lambda M: M.testing.assert_close(1.0, 2.0, msg="boom"),
    "msg_callable": lambda M: M.testing.assert_close(1.0, 2.0, msg=lambda m: "X" + m[:12]),
    "list": lambda M: M.testing.assert_close([M.ones(2), 1.0], [M.ones(2), 1.5]),
    "list_len": lambda M: M.testing.assert_close([1.0], [1.0, 2.0]),
    "dict": lambda M: M.testing.assert_close({"a": M.ones(2)}, {"a": M.zeros(2)}),
    "dict_keys": lambda M: M.testing.assert_close({"a": 1.}, {"b": 1.}),
    "numpy": lambda M: M.testing.assert_close(np.ones(2), np.zeros(2)),
    "strings": lambda M: M.testing.assert_close("a", "b"),
    "booleans": lambda M: M.testing.assert_close(True, False),
    "zero_dim_bool": lambda M: M.testing.assert_close(M.tensor(True), M.tensor(False)),
    "int_float_unchecked": lambda M: M.testing.assert_close(M.tensor([1]), M.tensor([1.5]),
                                                            check_dtype=False),
    "bfloat16": lambda M: M.testing.assert_close(M.tensor([1.0], dtype=M.bfloat16),
                                                 M.tensor([1.1], dtype=M.bfloat16)),
    "float16": lambda M: M.testing.assert_close(M.tensor([1.0], dtype=M.float16),
                                                M.tensor([1.1], dtype=M.float16)),
    "nan_vs_number": lambda M: M.testing.assert_close(M.tensor([1.0, math.nan]),
                                                      M.tensor([1.0, 2.0])),
    "nested": lambda M: M.testing.assert_close({"a": [1.0, {"b": M.ones(2)}]},
                                               {"a": [1.0, {"b": M.zeros(2)}]}),
    "msg_shape": lambda M: M.testing.assert_close(M.zeros(2), M.zeros(3), msg="boom"),
    "make_low_high": lambda M: M.testing.make_tensor(4, dtype=M.float32, device="cpu", low=2,
                                                     high=1),
    "make_nan": lambda M: M.testing.make_tensor(4, dtype=M.float32, device="cpu",
                                                low=math.nan),
    "make_int_grad": lambda M: M.testing.make_tensor(4, dtype=M.int64, device="cpu",
                                                     requires_grad=True),
    "make_int_equal": lambda M: M.testing.make_tensor(4, dtype=M.int64, device="cpu", low=1,
                                                      high=1),
}


@pytest.mark.parametrize("name", sorted(ASSERT_CASES))
def test_assert_close_and_make_tensor_errors(name):
    kind, msg = _error(ASSERT_CASES[name], cg)
    assert kind in (AssertionError, ValueError, TypeError)
    torch = pytest.importorskip("torch")
    t_kind, t_msg = _error(ASSERT_CASES[name], torch)
    assert kind is t_kind
    assert msg == t_msg


def test_assert_close_passes_and_tolerances():
    cg.testing.assert_close(cg.tensor([1.0, 2.0]), cg.tensor([1.0, 2.0 + 1e-6]))
    cg.testing.assert_close(cg.tensor([math.nan]), cg.tensor([math.nan]), equal_nan=True)
    cg.testing.assert_close(cg.zeros(2), cg.zeros(2, dtype=cg.float64), check_dtype=False)
    cg.testing.assert_close(cg.tensor([1.0], dtype=cg.float16),
                            cg.tensor([1.0005], dtype=cg.float16))
    cg.testing.assert_close({"a": [cg.ones(2), 3]}, {"a": [cg.ones(2), 3]})
    cg.testing.assert_close(cg.zeros(0), cg.zeros(0))
    cg.testing.assert_close(np.float64(1.0), 1.0)
    with pytest.raises(AssertionError, match="Greatest absolute difference: 0.5 at index"):
        cg.testing.assert_close(cg.tensor([1.0]), cg.tensor([1.5]), rtol=0.1, atol=0.1)
    cg.testing.assert_close(cg.tensor([1.0]), cg.tensor([1.5]), rtol=0.0, atol=0.6)


def test_make_tensor():
    t = cg.testing.make_tensor(2, 3, dtype=cg.float32, device="cpu")
    assert tuple(t.shape) == (2, 3) and t.dtype is cg.float32
    a = cg.testing.make_tensor((1000,), dtype=cg.float64, device="cpu").numpy()
    assert -9 <= a.min() and a.max() < 9 and a.std() > 3
    i = cg.testing.make_tensor(1000, dtype=cg.int64, device="cpu").numpy()
    assert i.min() == -9 and i.max() == 9
    u = cg.testing.make_tensor(1000, dtype=cg.uint8, device="cpu", low=-5).numpy()
    assert u.min() >= 0 and u.max() <= 9
    i8 = cg.testing.make_tensor(1000, dtype=cg.int8, device="cpu", low=-200).numpy()
    assert i8.min() >= -128
    b = cg.testing.make_tensor(100, dtype=cg.bool, device="cpu").numpy()
    assert b.dtype == np.bool_ and b.any() and not b.all()
    nc = cg.testing.make_tensor(2, 3, dtype=cg.float32, device="cpu", noncontiguous=True)
    assert tuple(nc.shape) == (2, 3) and not nc.is_contiguous()
    z = cg.testing.make_tensor(300, dtype=cg.int64, device="cpu", low=-1, high=2,
                               exclude_zero=True)
    assert not (z.numpy() == 0).any()
    g = cg.testing.make_tensor(3, dtype=cg.float32, device="cpu", requires_grad=True)
    assert g.requires_grad and g.is_leaf
    with pytest.warns(FutureWarning, match="low==high"):
        cg.testing.make_tensor(2, dtype=cg.float32, device="cpu", low=1, high=1)


# --- nn.attention ---------------------------------------------------------------------------


def test_sdpa_kernel_flags_and_empty_list():
    from clgraph.nn.attention import SDPBackend, sdpa_kernel

    assert int(SDPBackend.MATH) == 0 and repr(SDPBackend.FLASH_ATTENTION) == (
        "<SDPBackend.FLASH_ATTENTION: 1>")
    cuda = cg.backends.cuda
    with sdpa_kernel(SDPBackend.MATH):
        assert cuda.math_sdp_enabled() and not cuda.flash_sdp_enabled()
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION],
                         set_priority=True):
            assert cuda.flash_sdp_enabled() and not cuda.math_sdp_enabled()
        assert cuda.math_sdp_enabled() and not cuda.flash_sdp_enabled()
    assert cuda.flash_sdp_enabled() and cuda.math_sdp_enabled()
    q = cg.randn(1, 2, 4)
    with sdpa_kernel([]):
        with pytest.raises(RuntimeError, match="No viable backend"):
            cg.nn.functional.scaled_dot_product_attention(q, q, q)
    assert tuple(cg.nn.functional.scaled_dot_product_attention(q, q, q).shape) == (1, 2, 4)
    with pytest.raises(AssertionError, match="got str"):
        with sdpa_kernel("math"):
            pass


@pytest.mark.parametrize("variant,L,S", [("upper_left", 3, 5), ("lower_right", 3, 5),
                                         ("lower_right", 4, 4)])
def test_causal_bias(variant, L, S):
    from clgraph.nn.attention import bias

    mask = getattr(bias, f"causal_{variant}")(L, S)
    assert isinstance(mask, bias.CausalBias) and isinstance(mask, cg.Tensor)
    offset = 0 if variant == "upper_left" else S - L
    np.testing.assert_array_equal(mask.numpy(), np.tril(np.ones((L, S), bool), offset))
    q, k, v = (RNG.standard_normal(s).astype(np.float32) for s in ((2, L, 4), (2, S, 4),
                                                                   (2, S, 4)))
    out = cg.nn.functional.scaled_dot_product_attention(cg.tensor(q), cg.tensor(k),
                                                        cg.tensor(v), attn_mask=mask)
    torch = pytest.importorskip("torch")
    from torch.nn.attention import bias as tbias

    tmask = getattr(tbias, f"causal_{variant}")(L, S)
    ref = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), attn_mask=tmask)
    _close(_np(out), ref.numpy(), 1e-5)
    with pytest.raises(AssertionError, match="only supports 2D"):
        bias.causal_lower_right(1, 2, 3)


# --- amp ------------------------------------------------------------------------------------


def test_custom_fwd_and_custom_bwd():
    seen = {}

    class MulTwo(cg.autograd.Function):
        @staticmethod
        @cg.amp.custom_fwd(device_type="cl", cast_inputs=cg.float32)
        def forward(ctx, a):
            seen["fwd"] = (a.dtype, cg.is_autocast_enabled())
            return a * 2

        @staticmethod
        @cg.amp.custom_bwd(device_type="cl")
        def backward(ctx, g):
            seen["bwd"] = cg.is_autocast_enabled()
            return g * 2

    x = cg.ones(3, dtype=cg.float16, requires_grad=True)
    with cg.autocast("cl"):
        y = MulTwo.apply(x)
    assert seen["fwd"] == (cg.float32, False) and y.dtype is cg.float32
    y.sum().backward()
    assert seen["bwd"] is False
    _close(_np(x.grad).astype(np.float64), [2.0] * 3)

    class Plain(cg.autograd.Function):
        @staticmethod
        @cg.amp.custom_fwd(device_type="cl")
        def forward(ctx, a):
            return a * 1

        @staticmethod
        @cg.amp.custom_bwd(device_type="cl")
        def backward(ctx, g):
            seen["plain_bwd"] = cg.is_autocast_enabled()
            return g

    x = cg.ones(3, requires_grad=True)
    with cg.autocast("cl"):
        y = Plain.apply(x)
    y.float().sum().backward()
    assert seen["plain_bwd"] is True
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        cg.amp.custom_fwd(device_type=None)
    assert cg.amp.is_autocast_available("cuda") and not cg.amp.is_autocast_available("xla")


# --- utils.data -----------------------------------------------------------------------------


class _Stream(cg.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_samplers_and_datasets():
    data = cg.utils.data
    cg.manual_seed(0)
    w = data.WeightedRandomSampler([0.0, 1.0, 0.0], 6)
    assert list(w) == [1] * 6 and len(w) == 6 and w.weights.dtype.is_floating_point
    drawn = list(data.WeightedRandomSampler([1, 1, 1], 3, replacement=False))
    assert sorted(drawn) == [0, 1, 2]
    s = data.SubsetRandomSampler([5, 6, 7, 8])
    assert sorted(s) == [5, 6, 7, 8] and len(s) == 4
    chain = data.ChainDataset([_Stream(2), _Stream(3)])
    assert list(chain) == [0, 1, 0, 1, 2] and len(chain) == 5
    assert isinstance(_Stream(1) + _Stream(2), data.ChainDataset)
    st = data.StackDataset([1, 2], [3, 4])
    assert st[1] == (2, 4) and len(st) == 2 and st.__getitems__([0, 1]) == [(1, 3), (2, 4)]
    assert data.StackDataset(a=[1, 2], b=[3, 4])[0] == {"a": 1, "b": 3}
    loader = data.DataLoader(data.StackDataset(cg.arange(4), cg.arange(4) * 2), batch_size=2)
    batches = [[_np(t).tolist() for t in b] for b in loader]
    assert batches == [[[0, 1], [0, 2]], [[2, 3], [4, 6]]]
    assert data.get_worker_info() is None


DATA_ERRORS = {
    "weighted_num_samples": lambda M: M.utils.data.WeightedRandomSampler([0.1, 0.9], 0),
    "weighted_num_samples_bool": lambda M: M.utils.data.WeightedRandomSampler([1, 2], True),
    "weighted_replacement": lambda M: M.utils.data.WeightedRandomSampler([1, 2], 2,
                                                                         replacement=1),
    "weighted_2d": lambda M: M.utils.data.WeightedRandomSampler([[0.1, 0.9]], 2),
    "weighted_too_many": lambda M: list(M.utils.data.WeightedRandomSampler(
        [1, 2], 3, replacement=False)),
    "chain_map_style": lambda M: list(M.utils.data.ChainDataset(
        [M.utils.data.TensorDataset(M.ones(2))])),
    "stack_both": lambda M: M.utils.data.StackDataset([1, 2], b=[3, 4]),
    "stack_none": lambda M: M.utils.data.StackDataset(),
    "stack_sizes": lambda M: M.utils.data.StackDataset([1, 2], [3]),
}


@pytest.mark.parametrize("name", sorted(DATA_ERRORS))
def test_data_errors_match_torch(name):
    kind, msg = _error(DATA_ERRORS[name], cg)
    torch = pytest.importorskip("torch")
    assert (kind, msg) == _error(DATA_ERRORS[name], torch)


# --- nn.utils and nn.init -------------------------------------------------------------------


def test_total_norm_and_clipping():
    grads = [RNG.standard_normal(3), RNG.standard_normal((2, 2))]
    for norm_type in (2.0, 1.0, math.inf):
        total = cg.nn.utils.get_total_norm([_t(cg, g) for g in grads], norm_type)
        flat = np.concatenate([g.ravel() for g in grads])
        ref = np.abs(flat).max() if norm_type == math.inf else np.linalg.norm(flat, norm_type)
        _close(_np(total), ref)
    params = [nn.Parameter(_t(cg, g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = _t(cg, g)
    total = cg.nn.utils.get_total_norm([p.grad for p in params])
    cg.nn.utils.clip_grads_with_norm_(params, 1.0, total)
    _close(_np(cg.nn.utils.get_total_norm([p.grad for p in params])), 1.0, 1e-5)
    with pytest.warns(FutureWarning, match="clip_grad_norm` is now deprecated"):
        cg.nn.utils.clip_grad_norm(params, 0.5)
    _close(_np(cg.nn.utils.get_total_norm([p.grad for p in params])), 0.5, 1e-5)
    with pytest.warns(UserWarning, match="empty generator"):
        cg.nn.utils.clip_grad_norm_((p for p in []), 1.0)
    _close(_np(cg.nn.utils.get_total_norm([])), 0.0)
    with pytest.raises(RuntimeError, match="non-finite"):
        cg.nn.utils.get_total_norm([cg.tensor([math.inf])], error_if_nonfinite=True)


def test_fusion_matches_unfused_eval():
    cg.manual_seed(0)
    conv, bn = nn.Conv2d(3, 4, 3).eval(), nn.BatchNorm2d(4).eval()
    tconv, tbn = nn.ConvTranspose2d(4, 3, 3).eval(), nn.BatchNorm2d(3).eval()
    lin, bn1 = nn.Linear(3, 4).eval(), nn.BatchNorm1d(4).eval()
    with cg.no_grad():
        for b in (bn, tbn, bn1):
            n = b.num_features
            b.running_mean.copy_(cg.randn(n))
            b.running_var.copy_(cg.rand(n) + 0.5)
            b.weight.copy_(cg.randn(n))
            b.bias.copy_(cg.randn(n))
    x = cg.randn(2, 3, 6, 6)
    fused = cg.nn.utils.fuse_conv_bn_eval(conv, bn)
    assert fused is not conv and isinstance(fused.weight, nn.Parameter)
    _close(_np(fused(x)), _np(bn(conv(x))), 1e-5)
    y = cg.randn(2, 4, 5, 5)
    fused_t = cg.nn.utils.fuse_conv_bn_eval(tconv, tbn, transpose=True)
    _close(_np(fused_t(y)), _np(tbn(tconv(y))), 1e-5)
    z = cg.randn(5, 3)
    _close(_np(cg.nn.utils.fuse_linear_bn_eval(lin, bn1)(z)), _np(bn1(lin(z))), 1e-5)
    with pytest.raises(AssertionError, match="Fusion only for eval"):
        cg.nn.utils.fuse_conv_bn_eval(conv.train(), bn)
    with pytest.raises(AssertionError, match="linear.out_features == bn.num_features"):
        cg.nn.utils.fuse_linear_bn_eval(nn.Linear(3, 5).eval(), bn1)
    w, b = cg.nn.utils.fuse_linear_bn_weights(lin.weight, None, bn1.running_mean,
                                              bn1.running_var, bn1.eps, bn1.weight, bn1.bias)
    assert isinstance(w, nn.Parameter) and tuple(b.shape) == (4,)


def test_skip_init():
    m = cg.nn.utils.skip_init(nn.Linear, 3, 4)
    assert isinstance(m, nn.Linear) and tuple(m.weight.shape) == (4, 3)
    with pytest.raises(RuntimeError, match="Expected a Module"):
        cg.nn.utils.skip_init(int)

    class NoDevice(nn.Module):
        def __init__(self):
            super().__init__()

    with pytest.raises(RuntimeError, match="Module must support a 'device' arg"):
        cg.nn.utils.skip_init(NoDevice)


@pytest.mark.parametrize("shape,orthogonal_map,trivialization", [
    ((4, 4), None, True), ((5, 3), None, True), ((3, 5), None, True),
    ((4, 4), "cayley", True), ((5, 3), "householder", False), ((3, 5), "householder", True)])
def test_orthogonal_parametrization(shape, orthogonal_map, trivialization):
    from clgraph.nn.utils.parametrizations import orthogonal

    w0 = RNG.standard_normal(shape).astype(np.float32)
    m = nn.Linear(shape[1], shape[0])
    with cg.no_grad():
        m.weight.copy_(cg.tensor(w0))
    orthogonal(m, orthogonal_map=orthogonal_map, use_trivialization=trivialization)
    w = _np(m.weight).astype(np.float64)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    _close(gram, np.eye(min(shape)), 1e-5)
    m.weight.sum().backward()
    assert m.parametrizations.weight.original.grad is not None
    q = np.linalg.qr(RNG.standard_normal((max(shape), min(shape))))[0].astype(np.float32)
    q = q if shape[0] >= shape[1] else q.T
    m.weight = cg.tensor(q)  # assigning an orthogonal matrix gives it back
    _close(_np(m.weight), q, 1e-5)
    torch = pytest.importorskip("torch")
    tm = torch.nn.Linear(shape[1], shape[0])
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(w0))
    torch.nn.utils.parametrizations.orthogonal(tm, orthogonal_map=orthogonal_map,
                                               use_trivialization=trivialization)
    # a non-square base draws random columns, which the weight (its first columns) ignores
    _close(w, tm.weight.detach().numpy(), 1e-4)


def test_orthogonal_errors():
    from clgraph.nn.utils.parametrizations import orthogonal

    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        orthogonal(nn.Linear(2, 2), "bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of'):
        orthogonal(nn.Linear(2, 2), orthogonal_map="qr")
    m = orthogonal(nn.Linear(2, 2), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="not possible to assign"):
        m.weight = cg.eye(2)


@pytest.mark.parametrize("old,args", [
    ("uniform", ()), ("normal", ()), ("constant", (0.5,)), ("eye", ()), ("dirac", ()),
    ("xavier_uniform", ()), ("xavier_normal", ()), ("kaiming_uniform", ()),
    ("kaiming_normal", ()), ("orthogonal", ()), ("sparse", (0.5,))])
def test_deprecated_init_names_warn(old, args):
    shape = (3, 3, 3) if old == "dirac" else (3, 4)
    t = cg.empty(*shape)
    with pytest.warns(FutureWarning, match=f"`nn.init.{old}` is now deprecated in favor of "
                                           f"`nn.init.{old}_`"):
        out = getattr(cg.nn.init, old)(t, *args)
    assert out is t and getattr(cg.nn.init, old).__name__ == old
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(cg.nn.init, old + "_")(t, *args)
