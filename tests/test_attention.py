"""Attention: scaled_dot_product_attention against a numpy reference (masks of every kind,
causal, scale, grouped heads, fully masked rows, long sequences) and gradchecks;
MultiheadAttention, TransformerEncoderLayer and TransformerEncoder: PyTorch's state-dict
keys, masks and results (parity where torch is installed)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
import clgraph.nn as nn
import clgraph.nn.functional as F
from clgraph.autograd import gradcheck, gradgradcheck


def sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    """The documented definition, in float64; a fully masked row gives zeros."""
    L, S = q.shape[-2], k.shape[-2]
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * s
    if causal:
        mask = np.tril(np.ones((L, S), bool))
    if mask is not None:
        scores = np.where(mask, scores, -np.inf) if mask.dtype == bool else scores + mask
    mx = scores.max(-1, keepdims=True)
    dead = mx == -np.inf
    e = np.exp(scores - np.where(dead, 0, mx))
    w = np.where(dead, 0, e / np.where(dead, 1, e.sum(-1, keepdims=True)))
    return w @ v


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("kind", ["plain", "causal", "bool", "float", "scale", "dead_row",
                                  "broadcast_mask"])
def test_sdpa_against_numpy(kind):
    q, k, v = RNG.standard_normal((2, 3, 5, 4)), RNG.standard_normal((2, 3, 7, 4)), \
        RNG.standard_normal((2, 3, 7, 6))
    kw, rk = {}, {}
    if kind == "causal":
        kw, rk = {"is_causal": True}, {"causal": True}
    elif kind in ("bool", "dead_row"):
        m = RNG.random((5, 7)) > 0.4
        if kind == "dead_row":
            m[2] = False
        kw, rk = {"attn_mask": cg.tensor(m)}, {"mask": m}
    elif kind == "float":
        m = RNG.standard_normal((5, 7))
        kw, rk = {"attn_mask": cg.tensor(m)}, {"mask": m}
    elif kind == "scale":
        kw, rk = {"scale": 0.3}, {"scale": 0.3}
    elif kind == "broadcast_mask":
        m = RNG.random((2, 1, 5, 7)) > 0.3
        kw, rk = {"attn_mask": cg.tensor(m)}, {"mask": m}
    got = F.scaled_dot_product_attention(cg.tensor(q), cg.tensor(k), cg.tensor(v), **kw)
    np.testing.assert_allclose(got.numpy(), sdpa_ref(q, k, v, **rk), rtol=1e-12, atol=1e-12)
    if kind == "dead_row":
        assert np.all(got.numpy()[:, :, 2] == 0)


def test_sdpa_long_causal_sequence_and_grouped_heads():
    q = RNG.standard_normal((1, 2, 300, 8)).astype(np.float32)
    k = RNG.standard_normal((1, 2, 300, 8)).astype(np.float32)
    v = RNG.standard_normal((1, 2, 300, 8)).astype(np.float32)
    got = F.scaled_dot_product_attention(cg.tensor(q), cg.tensor(k), cg.tensor(v),
                                         is_causal=True)
    np.testing.assert_allclose(got.numpy(), sdpa_ref(q.astype(np.float64), k, v, causal=True),
                               rtol=1e-4, atol=1e-5)
    q4 = RNG.standard_normal((1, 4, 5, 8))
    kg, vg = RNG.standard_normal((1, 2, 6, 8)), RNG.standard_normal((1, 2, 6, 3))
    got = F.scaled_dot_product_attention(cg.tensor(q4), cg.tensor(kg), cg.tensor(vg),
                                         enable_gqa=True)
    want = sdpa_ref(q4, np.repeat(kg, 2, axis=1), np.repeat(vg, 2, axis=1))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_sdpa_gradients_and_errors():
    q, k, v = (cg.tensor(RNG.standard_normal(s), requires_grad=True)
               for s in ((2, 3, 4), (2, 5, 4), (2, 5, 2)))
    m = cg.tensor(RNG.random((3, 5)) > 0.3)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=m),
                     (q, k, v))
    assert gradgradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c,
                                                                         is_causal=True),
                         (q, k, v))
    with pytest.raises(RuntimeError, match="Explicit attn_mask should not be set when "
                                           "is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=True)


def test_sdpa_dropout_is_seeded():
    q, k, v = (cg.ones(1, 4, 8, 4) for _ in range(3))
    cg.manual_seed(3)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    cg.manual_seed(3)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, 1.0)  # some weights dropped, the others scaled by 2


# --- modules ------------------------------------------------------------------------------


def test_module_structure_and_masks_helper():
    m = nn.MultiheadAttention(8, 2)
    assert list(m.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                    "out_proj.bias"]
    assert np.all(m.in_proj_bias.detach().numpy() == 0)
    assert np.all(m.out_proj.bias.detach().numpy() == 0)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    assert list(layer.state_dict()) == [
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight",
        "linear2.bias", "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"]
    enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(8))
    keys = list(enc.state_dict())
    assert keys[0] == "layers.0.self_attn.in_proj_weight" and keys[-1] == "norm.bias"
    assert len(keys) == 2 * 12 + 2
    mask = nn.Transformer.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(mask, np.triu(np.full((4, 4), -np.inf), 1))
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(cg.ones(3, 1, 8), cg.ones(3, 1, 8), cg.ones(3, 1, 8), is_causal=True)


def test_multihead_attention_against_numpy_and_gradcheck():
    E, H, L, S, N = 6, 3, 4, 5, 2
    m = nn.MultiheadAttention(E, H).double()
    q, kv = RNG.standard_normal((L, N, E)), RNG.standard_normal((S, N, E))
    kpm = RNG.random((N, S)) < 0.3
    kpm[:, 0] = False
    out, w = m(cg.tensor(q), cg.tensor(kv), cg.tensor(kv), key_padding_mask=cg.tensor(kpm))
    W, b = m.in_proj_weight.detach().numpy(), m.in_proj_bias.detach().numpy()

    def proj(x, i, n):
        y = x @ W[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E]
        return y.reshape(n, N, H, E // H).transpose(1, 2, 0, 3)

    mask = np.where(kpm, -np.inf, 0.0)[:, None, None, :]
    scores = proj(q, 0, L) @ np.swapaxes(proj(kv, 1, S), -1, -2) / math.sqrt(E // H) + mask
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = (p @ proj(kv, 2, S)).transpose(2, 0, 1, 3).reshape(L, N, E)
    o = o @ m.out_proj.weight.detach().numpy().T + m.out_proj.bias.detach().numpy()
    np.testing.assert_allclose(out.detach().numpy(), o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), p.mean(1), rtol=1e-10, atol=1e-12)
    x = cg.tensor(RNG.standard_normal((L, N, E)), requires_grad=True)
    assert gradcheck(lambda t: m(t, t, t, need_weights=False)[0], (x,))


def test_modules_match_torch():
    torch = torch_or_skip()
    E, H = 8, 2

    def same(m, t):
        m.load_state_dict({k: cg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})

    x = RNG.standard_normal((5, 3, E))
    am = RNG.random((5, 5)) < 0.3
    np.fill_diagonal(am, False)
    for kw in ({}, {"attn_mask": am}, {"need_weights": False},
               {"average_attn_weights": False}):
        t, m = torch.nn.MultiheadAttention(E, H).double(), nn.MultiheadAttention(E, H).double()
        same(m, t)
        kc = {k: cg.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        kt = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        xc, xt = cg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        o, w = m(xc, xc, xc, **kc)
        ot, wt = t(xt, xt, xt, **kt)
        (o * o).sum().backward()
        (ot * ot).sum().backward()
        np.testing.assert_allclose(o.detach().numpy(), ot.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), atol=1e-11)
        assert (w is None) == (wt is None)
        if w is not None:
            np.testing.assert_allclose(w.detach().numpy(), wt.detach().numpy(), atol=1e-12)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5).double()
    for norm_first, act in ((False, "relu"), (True, "gelu")):
        tl = torch.nn.TransformerEncoderLayer(E, H, 16, dropout=0.0, norm_first=norm_first,
                                              activation=act).double()
        ml = nn.TransformerEncoderLayer(E, H, 16, dropout=0.0, norm_first=norm_first,
                                        activation=act).double()
        same(ml, tl)
        te = torch.nn.TransformerEncoder(tl, 2, enable_nested_tensor=False)
        me = nn.TransformerEncoder(ml, 2)
        same(me, te)
        got = me(cg.tensor(x), mask=cg.tensor(mask.numpy()), is_causal=True)
        want = te(torch.tensor(x), mask=mask, is_causal=True)
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), atol=1e-12)


def test_multihead_attention_kdim_vdim_bias_kv_zero_attn_structure():
    m = nn.MultiheadAttention(8, 2, kdim=6, vdim=5, add_bias_kv=True, add_zero_attn=True)
    assert not m._qkv_same_embed_dim and m.in_proj_weight is None
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 6)), ("v_proj_weight", (8, 5)),
        ("in_proj_bias", (24,)), ("bias_k", (1, 1, 8)), ("bias_v", (1, 1, 8)),
        ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert np.all(m.in_proj_bias.detach().numpy() == 0)
    assert np.abs(m.bias_k.detach().numpy()).sum() > 0  # xavier_normal_
    assert nn.MultiheadAttention(8, 2, kdim=8, vdim=8)._qkv_same_embed_dim
    assert list(nn.MultiheadAttention(8, 2, kdim=6, bias=False).state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]
    out, w = m(cg.ones(3, 8), cg.ones(4, 6), cg.ones(4, 5))  # unbatched
    assert tuple(out.shape) == (3, 8) and tuple(w.shape) == (3, 6)


def test_multihead_attention_kdim_vdim_numpy_and_gradcheck():
    E, H, L, S, N, kd, vd = 6, 2, 3, 4, 2, 5, 3
    m = nn.MultiheadAttention(E, H, kdim=kd, vdim=vd, add_bias_kv=True,
                              add_zero_attn=True).double()
    q, k, v = (RNG.standard_normal(s) for s in ((L, N, E), (S, N, kd), (S, N, vd)))
    kpm = RNG.random((N, S)) < 0.3
    out, w = m(cg.tensor(q), cg.tensor(k), cg.tensor(v), key_padding_mask=cg.tensor(kpm))
    P = {n: t.detach().numpy() for n, t in m.named_parameters()}
    b = P["in_proj_bias"]

    def heads(y):
        return y.reshape(y.shape[0], N, H, E // H).transpose(1, 2, 0, 3)

    qp = heads(q @ P["q_proj_weight"].T + b[:E])
    kp = np.concatenate([k @ P["k_proj_weight"].T + b[E:2 * E],
                         np.broadcast_to(P["bias_k"], (1, N, E))])
    vp = np.concatenate([v @ P["v_proj_weight"].T + b[2 * E:],
                         np.broadcast_to(P["bias_v"], (1, N, E))])
    zero = np.zeros((N, H, 1, E // H))
    kp, vp = (np.concatenate([heads(x), zero], 2) for x in (kp, vp))
    mask = np.where(np.pad(kpm, ((0, 0), (0, 2))), -np.inf, 0.0)[:, None, None, :]
    scores = qp @ np.swapaxes(kp, -1, -2) / math.sqrt(E // H) + mask
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    o = (p @ vp).transpose(2, 0, 1, 3).reshape(L, N, E)
    o = o @ P["out_proj.weight"].T + P["out_proj.bias"]
    np.testing.assert_allclose(out.detach().numpy(), o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), p.mean(1), rtol=1e-10, atol=1e-12)
    xs = [cg.tensor(a, requires_grad=True) for a in (q, k, v)]
    assert gradcheck(lambda a, b, c: m(a, b, c, need_weights=False)[0], tuple(xs))


@pytest.mark.parametrize("kw", [{"kdim": 6, "vdim": 7}, {"add_bias_kv": True},
                                {"add_zero_attn": True, "batch_first": True},
                                {"kdim": 6, "vdim": 7, "add_bias_kv": True,
                                 "add_zero_attn": True, "bias": False}])
def test_multihead_attention_options_match_torch(kw):
    torch = torch_or_skip()
    E, H, L, S, N = 8, 2, 4, 5, 3
    t = torch.nn.MultiheadAttention(E, H, **kw).double()
    m = nn.MultiheadAttention(E, H, **kw).double()
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: cg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    bf = kw.get("batch_first", False)
    shapes = [(n, d) for n, d in ((L, E), (S, kw.get("kdim", E)), (S, kw.get("vdim", E)))]
    qkv = [RNG.standard_normal((N, n, d) if bf else (n, N, d)) for n, d in shapes]
    kpm = RNG.random((N, S)) < 0.3
    masks = [{}, {"key_padding_mask": kpm, "attn_mask": RNG.random((L, S)) < 0.2},
             {"attn_mask": RNG.standard_normal((N * H, L, S))}]
    for extra in masks:
        for need_weights in (True, False):
            xc = [cg.tensor(a, requires_grad=True) for a in qkv]
            xt = [torch.tensor(a, requires_grad=True) for a in qkv]
            o, w = m(*xc, need_weights=need_weights, **{a: cg.tensor(b) for a, b in
                                                        extra.items()})
            ot, wt = t(*xt, need_weights=need_weights, **{a: torch.tensor(b) for a, b in
                                                          extra.items()})
            (o * o).sum().backward()
            (ot * ot).sum().backward()
            np.testing.assert_allclose(o.detach().numpy(), ot.detach().numpy(), atol=1e-12)
            for a, b in zip(xc, xt):
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-11)
            for (name, a), b in zip(m.named_parameters(), t.parameters()):
                np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-10,
                                           err_msg=name)
                a.grad, b.grad = None, None
            if need_weights:
                np.testing.assert_allclose(w.detach().numpy(), wt.detach().numpy(),
                                           atol=1e-12)


@pytest.mark.parametrize("dtype", [cg.float16, cg.float32, cg.float64])
def test_causal_fill_of_tril(dtype):
    """The causal mask is tril's kernel filling the upper triangle with -inf (one pass);
    its gradient is tril's."""
    from clgraph.ops.registry import REGISTRY, apply

    x = cg.tensor(RNG.standard_normal((2, 3, 5)), dtype=dtype)
    got = apply(REGISTRY["tril"], x, diagonal=0, fill=-math.inf).float().numpy()
    want = np.where(np.tril(np.ones((3, 5), bool)), x.float().numpy(), -np.inf)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cg.tril(x).float().numpy(), np.tril(x.float().numpy()))


# --- the fused kernels (ops/attention.py): float32, no dropout --------------------------------

FUSED_CASES = [  # (B, H, L, S, E, Ev), options
    ((1, 1, 1, 1, 16, 16), {}),
    ((2, 3, 7, 33, 16, 32), {}),
    ((2, 3, 33, 7, 32, 16), {"causal": True}),
    ((1, 2, 300, 300, 64, 64), {"causal": True}),
    ((2, 2, 17, 23, 16, 16), {"mask": "bool"}),
    ((2, 2, 17, 23, 16, 16), {"mask": "dead"}),
    ((2, 2, 17, 23, 16, 16), {"mask": "float"}),
    ((3, 19, 40, 32, 16), {"mask": "bool3"}),  # one batch dim, mask (L, S)
]


def _fused_operands(shape, opts, rng):
    *batch, L, S, E, Ev = shape
    q = rng.standard_normal((*batch, L, E)).astype(np.float32)
    k = rng.standard_normal((*batch, S, E)).astype(np.float32)
    v = rng.standard_normal((*batch, S, Ev)).astype(np.float32)
    mask = None
    kind = opts.get("mask")
    if kind in ("bool", "dead", "bool3"):
        mask = rng.random((L, S)) > 0.3
        if kind == "dead":
            mask = np.broadcast_to(mask, (batch[0], 1, L, S)).copy()
            mask[0, 0, 3] = False  # a query with every key masked
    elif kind == "float":
        mask = rng.standard_normal((batch[0], 1, L, S)).astype(np.float32)
    return q, k, v, mask


@pytest.mark.parametrize("shape,opts", FUSED_CASES, ids=lambda x: str(x))
def test_fused_attention_values_and_gradients(shape, opts):
    """The fused forward and backward against the float64 composition of ops, on odd
    lengths (a query block's tail, a key block's tail), masks and causal."""
    rng = np.random.default_rng(5)
    q, k, v, mask = _fused_operands(shape, opts, rng)
    g = rng.standard_normal(q.shape[:-1] + (v.shape[-1],)).astype(np.float32)
    causal = opts.get("causal", False)
    outs = {}
    for dtype in (np.float32, np.float64):
        ts = [cg.tensor(a.astype(dtype), requires_grad=True) for a in (q, k, v)]
        m = None if mask is None else cg.tensor(mask if mask.dtype == bool else mask.astype(dtype))
        with cg.profile() as prof:
            y = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=causal)
            (y * cg.tensor(g.astype(dtype))).sum().backward()
        names = " ".join(prof.functions)  # sdpa_fwd, or sdpa_fwd_tiled on GPUs
        fused = "sdpa_fwd" in names and "sdpa_bwd_dkv" in names
        assert fused == (dtype == np.float32), prof.functions
        outs[dtype] = [y.detach().numpy()] + [t.grad.numpy() for t in ts]
    for got, want in zip(outs[np.float32], outs[np.float64]):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    if opts.get("mask") == "dead":
        assert np.all(outs[np.float32][0][0, :, 3] == 0)


def test_fused_attention_memory_grows_linearly():
    """No L x S matrix: at L = S = 2048 the scores alone would take 32 MiB."""
    rng = np.random.default_rng(6)
    q, k, v = (cg.tensor(rng.standard_normal((1, 2, 2048, 16)).astype(np.float32),
                         requires_grad=True) for _ in range(3))
    cg.cl.reset_peak_memory_stats()
    base = cg.cl.memory_allocated()
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    y.sum().backward()
    peak = cg.cl.max_memory_allocated() - base
    assert peak < 4 * 2**20, peak  # inputs are 256 KiB each
    ref = sdpa_ref(q.detach().numpy()[:, :, :64].astype(np.float64),
                   k.detach().numpy()[:, :, :64], v.detach().numpy()[:, :, :64], causal=True)
    np.testing.assert_allclose(y.detach().numpy()[:, :, :64], ref, rtol=1e-4, atol=1e-5)


def test_fused_attention_differentiates_twice_and_compiles():
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((2, 2, 9, 16)) for _ in range(3)]
    second = {}
    for dtype in (np.float32, np.float64):
        q, k, v = (cg.tensor(a.astype(dtype), requires_grad=True) for a in arrays)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        (gq,) = cg.autograd.grad((y * y).sum(), q, create_graph=True)
        (gq * gq).sum().backward()
        second[dtype] = (q.grad.numpy(), k.grad.numpy(), v.grad.numpy())
    for got, want in zip(second[np.float32], second[np.float64]):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)

    q, k, v = (cg.tensor(a.astype(np.float32), requires_grad=True) for a in arrays)

    def step():
        for t in (q, k, v):
            t.grad = None
        y = F.scaled_dot_product_attention(q, k, v)
        y.pow(2).sum().backward()
        return y.detach(), q.grad, k.grad, v.grad

    eager = [t.numpy().copy() for t in step()]
    fc = cg.compile(step)
    for _ in range(3):
        for got, want in zip(fc(), eager):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_fused_attention_reads_strided_heads_in_place():
    """Heads split from a packed (B, L, 3 * H * E) projection, as attention layers make
    them: the kernels read the permuted views in place, and the output's heads merge back
    into (B, L, H * E) as a view."""
    rng = np.random.default_rng(8)
    B, L, H, E = 2, 21, 3, 16
    packed = rng.standard_normal((B, L, 3 * H * E)).astype(np.float32)
    t = cg.tensor(packed, requires_grad=True)
    q, k, v = (t[..., i * H * E:(i + 1) * H * E].reshape(B, L, H, E).permute(0, 2, 1, 3)
               for i in range(3))
    with cg.profile() as prof:
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not any("copy" in f or "contiguous" in f for f in prof.functions), prof.functions
    merged = y.permute(0, 2, 1, 3).reshape(B, L, H * E)
    assert merged._storage is y._storage  # a view: no copy to merge the heads
    merged.pow(2).sum().backward()
    t64 = cg.tensor(packed.astype(np.float64), requires_grad=True)
    q6, k6, v6 = (t64[..., i * H * E:(i + 1) * H * E].reshape(B, L, H, E).permute(0, 2, 1, 3)
                  for i in range(3))
    y6 = F.scaled_dot_product_attention(q6, k6, v6, is_causal=True)
    y6.permute(0, 2, 1, 3).reshape(B, L, H * E).pow(2).sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), y6.detach().numpy(), rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(t.grad.numpy(), t64.grad.numpy(), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("gpu", [False, True])
def test_fused_attention_gradients_tile_the_packed_projection(gpu, monkeypatch):
    """The backward writes dq, dk and dv side by side in one buffer laid out as the packed
    projection's q, k, v: the gradient reaches the projection through views, with no cat or
    copy kernel; one tensor used as q, k and v (views that overlap) still gets the sum of
    the three gradients."""
    if gpu:
        monkeypatch.setattr(importlib.import_module("clgraph.device"), "_KERNELS", "gpu")
    from clgraph.ops.join import split_views
    rng = np.random.default_rng(11)
    B, L, H, E = 2, 32, 2, 16
    packed = rng.standard_normal((B, L, 3 * H * E))
    results = []
    for d in (cg.float32, cg.float64):
        t = cg.tensor(packed, dtype=d, requires_grad=True)
        q, k, v = (y.reshape(B, L, H, E).permute(0, 2, 1, 3)
                   for y in split_views(t * 1.0, (H * E,) * 3, -1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        loss = y.permute(0, 2, 1, 3).reshape(B, L, H * E).pow(2).sum()
        with cg.profile() as prof:
            loss.backward()
        if d is cg.float32:
            copies = [f for f in prof.functions if "cat" in f or "to_dtype" in f]
            assert not copies, prof.functions
        results.append(t.grad.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=2e-4, atol=2e-4)
    x = cg.tensor(packed[..., :H * E].reshape(B, L, H, E), requires_grad=True)
    same = x.permute(0, 2, 1, 3)
    F.scaled_dot_product_attention(same, same, same).sum().backward()
    x64 = cg.tensor(packed[..., :H * E].reshape(B, L, H, E).astype(np.float64),
                    requires_grad=True)
    s64 = x64.permute(0, 2, 1, 3)
    F.scaled_dot_product_attention(s64, s64, s64).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("gpu", [False, True])
def test_fused_attention_dropout(gpu, monkeypatch):
    """dropout_p in the fused kernels: the weights they drop (a hash of two seeds from the
    default generator and the position) are the same forward and backward; values and
    gradients equal the float64 composition with those weights; about p of them dropped;
    manual_seed reproduces a call, the next call draws new seeds."""
    import importlib

    from clgraph.ops import attention as A

    if gpu:
        monkeypatch.setattr(importlib.import_module("clgraph.device"), "_KERNELS", "gpu")
    rng = np.random.default_rng(9)
    B, H, L, S, E, p = 2, 3, 37, 41, 16, 0.3
    arrays = [rng.standard_normal(s).astype(np.float32) for s in
              ((B, H, L, E), (B, H, S, E), (B, H, S, E))]
    g = rng.standard_normal((B, H, L, E))
    m = rng.random((L, S)) > 0.2
    for kw in ({}, {"is_causal": True}, {"attn_mask": cg.tensor(m)}):
        q, k, v = (cg.tensor(a, requires_grad=True) for a in arrays)
        cg.manual_seed(5)
        with cg.profile() as prof:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, **kw)
            (y * cg.tensor(g.astype(np.float32))).sum().backward()
        assert any(f.startswith("sdpa_fwd") for f in prof.functions), prof.functions
        cg.manual_seed(5)
        w = A.dropout_weights(q.detach(), k.detach(), cg.randint(0, 2**31 - 1, (2,)), p)
        wn = w.numpy().astype(np.float64)
        assert abs((wn > 0).mean() - (1 - p)) < 0.03 and np.allclose(wn[wn > 0], 1 / (1 - p))
        t64 = [cg.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
        s = (t64[0] * (1 / math.sqrt(E))) @ t64[1].transpose(-2, -1)
        if kw.get("is_causal"):
            s = s.masked_fill(cg.tensor(~np.tril(np.ones((L, S), bool))), -math.inf)
        elif "attn_mask" in kw:
            s = s.masked_fill(cg.tensor(~m), -math.inf)
        y64 = (s.softmax(-1) * cg.tensor(wn)) @ t64[2]
        (y64 * cg.tensor(g)).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), y64.detach().numpy(), rtol=1e-4,
                                   atol=1e-5)
        for a, b in zip((q, k, v), t64):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-4, atol=1e-4)
    q, k, v = (cg.tensor(a) for a in arrays)
    cg.manual_seed(2)
    a1, a2 = (F.scaled_dot_product_attention(q, k, v, dropout_p=p).numpy() for _ in range(2))
    cg.manual_seed(2)
    b1 = F.scaled_dot_product_attention(q, k, v, dropout_p=p).numpy()
    np.testing.assert_array_equal(a1, b1)
    assert not np.allclose(a1, a2)


def test_fused_attention_dropout_create_graph_and_compile():
    """create_graph composes ops with the same dropped weights (first derivatives equal the
    fused ones); a compiled call draws new seeds at each replay, as eager calls do."""
    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal((1, 2, 13, 16)).astype(np.float32) for _ in range(3)]
    grads = []
    for create in (False, True):
        q, k, v = (cg.tensor(a, requires_grad=True) for a in arrays)
        cg.manual_seed(3)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=0.25)
        got = cg.autograd.grad(y.pow(2).sum(), (q, k, v), create_graph=create)
        grads.append([t.detach().numpy() for t in got])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    q, k, v = (cg.tensor(a) for a in arrays)

    def f(q):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.25) * 2

    cg.manual_seed(4)
    eager = [f(q).numpy() for _ in range(3)]
    fc = cg.compile(f)
    cg.manual_seed(4)
    compiled = [fc(q).numpy() for _ in range(3)]
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert not np.allclose(compiled[1], compiled[2])


# --- 16-bit operands: tensor cores (sdpa_*_mma), or the float32 kernels ----------------------

@pytest.fixture
def emulated_tensor_cores(monkeypatch):
    """The GPU kernels with mma.sync done in software (its fragment layout), any device."""
    from clgraph.ops import attention as A
    from clgraph.ops import gemm

    monkeypatch.setattr(importlib.import_module("clgraph.device"), "_KERNELS", "gpu")
    monkeypatch.setenv("CLGRAPH_TENSOR_CORES", "emulate")
    monkeypatch.setattr(gemm, "_probed", {})
    monkeypatch.setattr(A, "_mma_probed", {})
    return A


def _half_case(d, shape, opts, rng):
    """Operands rounded to ``d`` (so that float64 sees the same values), the gradient, the
    mask, and the float64 outputs: y and the three input gradients."""
    q, k, v, mask = _fused_operands(shape, opts, rng)
    g = rng.standard_normal(q.shape[:-1] + (v.shape[-1],))
    rounded = [cg.tensor(a, dtype=d).double() for a in (q, k, v)]
    if mask is not None and mask.dtype != bool:
        mask = cg.tensor(mask, dtype=d).double().numpy()
    ts = [t.clone().requires_grad_() for t in rounded]
    m = None if mask is None else cg.tensor(mask)
    y = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=opts.get("causal", False))
    (y * cg.tensor(g)).sum().backward()
    want = [y.detach().numpy()] + [t.grad.numpy() for t in ts]
    return rounded, g, mask, want


def _run_half(d, rounded, g, mask, opts):
    ts = [t.to(d).requires_grad_() for t in rounded]
    m = None if mask is None else cg.tensor(mask, dtype=None if mask.dtype == bool else d)
    with cg.profile() as prof:
        y = F.scaled_dot_product_attention(*ts, attn_mask=m, is_causal=opts.get("causal", False))
        (y * cg.tensor(g, dtype=d)).sum().backward()
    assert y.dtype is d and all(t.grad.dtype is d for t in ts)
    got = [y.detach().double().numpy()] + [t.grad.double().numpy() for t in ts]
    return got, [f for f in prof.functions if f.startswith("sdpa")][-3:]  # (after a probe)


def _close(got, want, d):
    tol = 2e-3 if d is cg.float16 else 1.5e-2  # one rounding of P and of the outputs
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, np.abs(b).max()))


MMA_CASES = [  # dtype, (B, H, L, S, E, Ev), options: tails of every block; the probe's head
    # dims (64, 40) where a case needs no build of its own (emulated builds take PoCL ~30 s)
    (cg.float16, (1, 2, 130, 150, 64, 40), {"causal": True}),
    (cg.bfloat16, (2, 3, 7, 33, 64, 40), {}),
    # the backward's 32-row blocks; rows not a multiple of 8 (loads of one element)
    (cg.float16, (1, 1, 65, 100, 116, 72), {"causal": True}),
]


@pytest.mark.parametrize("d,shape,opts", MMA_CASES, ids=lambda x: str(x))
def test_tensor_core_attention_forward_and_backward(emulated_tensor_cores, d, shape, opts):
    """float16 and bfloat16 attention on the tensor-core kernels (FlashAttention-2's
    fragments, the instruction emulated): values and gradients against float64 on the same
    rounded operands, within one rounding of the probabilities and of the outputs."""
    rng = np.random.default_rng(12)
    rounded, g, mask, want = _half_case(d, shape, opts, rng)
    got, fns = _run_half(d, rounded, g, mask, opts)
    assert fns == ["sdpa_fwd_mma", "sdpa_bwd_dq_mma", "sdpa_bwd_dkv_mma"], fns
    _close(got, want, d)


def test_tensor_core_attention_masks_and_dropout_match_the_float32_kernels(
        emulated_tensor_cores):
    """Masks (bool with a fully masked row, float) and dropout in the tensor-core kernels:
    the same values and gradients as the float32 kernels on the same operands and seeds
    (the same weights dropped)."""
    rng = np.random.default_rng(13)
    B, H, L, S = 2, 2, 37, 41
    arrays = [cg.tensor(rng.standard_normal(s), dtype=cg.float16).float()
              for s in ((B, H, L, 64), (B, H, S, 64), (B, H, S, 40))]
    g = rng.standard_normal((B, H, L, 40))
    dead = rng.random((L, S)) > 0.3
    dead[3] = False
    masks = [cg.tensor(dead), cg.tensor(rng.standard_normal((B, 1, L, S)), dtype=cg.float16)]
    for m in masks:
        outs, names = {}, {}
        for d in (cg.float16, cg.float32):
            ts = [a.to(d).detach().requires_grad_() for a in arrays]
            cg.manual_seed(5)
            with cg.profile() as prof:
                y = F.scaled_dot_product_attention(*ts, attn_mask=m if m.dtype is cg.bool
                                                   else m.to(d), dropout_p=0.3)
                (y * cg.tensor(g, dtype=d)).sum().backward()
            names[d] = [f for f in prof.functions if f.startswith("sdpa")][-3:]
            outs[d] = [y.detach().double().numpy()] + [t.grad.double().numpy() for t in ts]
        assert names[cg.float16] == ["sdpa_fwd_mma", "sdpa_bwd_dq_mma", "sdpa_bwd_dkv_mma"]
        assert names[cg.float32][0] == "sdpa_fwd_tiled", names
        _close(outs[cg.float16], outs[cg.float32], cg.float16)
        if m.dtype is cg.bool:  # the fully masked row: zeros, and zero gradients
            assert np.all(outs[cg.float16][0][:, :, 3] == 0)
            assert np.all(outs[cg.float16][1][:, :, 3] == 0)


def test_tensor_core_attention_probe_rejects_wrong_kernels(emulated_tensor_cores, monkeypatch):
    """A device whose tensor-core kernels build but compute wrong gradients never uses
    them: 16-bit operands take the float32 kernels, with the same results."""
    A = emulated_tensor_cores
    real = A._run_sdpa_backward_mma

    def wrong(*args):
        return tuple(t * 0.5 for t in real(*args))

    monkeypatch.setattr(A, "_run_sdpa_backward_mma", wrong)
    rng = np.random.default_rng(14)
    rounded, g, mask, want = _half_case(cg.float16, (1, 2, 9, 11, 64, 40), {}, rng)
    got, fns = _run_half(cg.float16, rounded, g, mask, {})
    assert fns == ["sdpa_fwd_tiled", "sdpa_bwd_dq_tiled", "sdpa_bwd_dkv_tiled"], fns
    assert list(A._mma_probed.values()) == [False]
    _close(got, want, cg.float16)


@pytest.mark.parametrize("d", [cg.float16, cg.bfloat16], ids=str)
def test_half_attention_runs_the_fused_float32_kernels(d):
    """Without tensor cores, 16-bit attention still runs fused (no L x S matrix): the
    float32 kernels on float32 copies, the outputs and gradients rounded back."""
    rng = np.random.default_rng(15)
    opts = {"mask": "bool"}
    rounded, g, mask, want = _half_case(d, (2, 2, 17, 23, 16, 16), opts, rng)
    got, fns = _run_half(d, rounded, g, mask, opts)
    assert fns and all(f.split("_tiled")[0] in ("sdpa_fwd", "sdpa_bwd_dq", "sdpa_bwd_dkv")
                       for f in fns), fns
    _close(got, want, d)
