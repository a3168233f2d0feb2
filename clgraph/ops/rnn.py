"""Recurrent cells as op rows (kernels/rnn.cl): one time step's gate arithmetic in one
kernel, forward and backward, so an eager LSTM or GRU step is its hidden product plus one
launch (and its backward two products plus one launch). The products by the weights stay
matmuls. Under create_graph the VJPs are composed of ordinary ops, so the cells
differentiate twice; cg.compile records the cells like any op."""

from __future__ import annotations

from .. import codegen
from .. import dtypes as dt
from . import registry
from .registry import OpDef, apply, register


def _kernel(info, name: str, d: dt.dtype):
    codegen.check_dtype(info, d)
    defines = codegen.storage_defines(d) + (("ACC", d.compute),)
    if d is dt.float64:
        defines += (("USE_FP64", "1"),)
    return codegen.template_kernel(info, "rnn.cl", name, defines)


def _mat(name: str, t) -> dict:
    """A (N, k*H) operand read in place: rows with contiguous elements."""
    t = t.detach()
    if t.stride(-1) != 1 and t.shape[-1] > 1:
        t = t.contiguous()
    return {name: t._storage.buf, f"{name}_off": t._offset, f"{name}_rs": t.stride(0),
            "_keep_" + name: t}


def _launch(name: str, like, values: dict, N: int, H: int):
    info = like.device.info
    kern = _kernel(info, name, like.dtype)
    L = codegen.local_size(info)
    n = N * H
    if n:
        registry.launch(info, kern, name, (-(-n // L) * L,), (L,),
                        codegen.pack(kern, {**values, "N": N, "H": H}))


def _empty(shape, like):
    return registry.Tensor._empty(shape, like.dtype, like.device)


# --- LSTM -------------------------------------------------------------------------------


def _run_lstm(op, args, attrs, out=None):
    xg, hg, c = args
    N, H = c.shape
    h_out, c_out = _empty((N, H), c), _empty((N, H), c)
    _launch("lstm_cell", c, {**_mat("xg", xg), **_mat("hg", hg), **_mat("c", c),
                             "h_out": h_out._storage.buf, "c_out": c_out._storage.buf}, N, H)
    return h_out, c_out


def _run_lstm_backward(op, args, attrs, out=None):
    xg, hg, c, dh, dc = args
    N, H = c.shape
    dgates, dc_out = _empty((N, 4 * H), c), _empty((N, H), c)
    _launch("lstm_cell_backward", c, {
        **_mat("xg", xg), **_mat("hg", hg), **_mat("c", c), **_mat("dh", dh),
        **_mat("dc", dc), "dgates": dgates._storage.buf, "dc_out": dc_out._storage.buf}, N, H)
    return dgates, dc_out


def lstm_composed(xg, hg, c):
    """The LSTM cell as ordinary ops (the create_graph path and the reference)."""
    i, f, g, o = (xg + hg).chunk(4, dim=-1)
    c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c2.tanh(), c2


def _lstm_vjp(gs, xg, hg, c, out):
    dh, dc = gs
    if not out[0].requires_grad:  # no create_graph: the fused backward
        dgates, dcp = apply(LSTM_CELL_BACKWARD, xg, hg, c, dh, dc)
        return dgates, dgates, dcp
    i, f, g, o = (t.sigmoid() if k != 2 else t.tanh()
                  for k, t in enumerate((xg + hg).chunk(4, dim=-1)))
    tc = (f * c + i * g).tanh()
    gc = dc + dh * o * (1 - tc * tc)
    dgates = registry.functions.cat([gc * g * i * (1 - i), gc * c * f * (1 - f),
                                     gc * i * (1 - g * g), dh * tc * o * (1 - o)], -1)
    return dgates, dgates, gc * f


LSTM_CELL = register(OpDef("lstm_cell", "rnn", None, _run_lstm, _lstm_vjp))
LSTM_CELL_BACKWARD = register(OpDef("lstm_cell_backward", "rnn", None, _run_lstm_backward,
                                    differentiable=False))


def lstm_cell(xg, hg, c):
    """(h', c') of one LSTM step from the gates' two parts (input and hidden products,
    biases included in either) and the cell state c."""
    return apply(LSTM_CELL, xg, hg, c)


# --- GRU --------------------------------------------------------------------------------


def _run_gru(op, args, attrs, out=None):
    x, hm, b, h = args
    N, H = h.shape
    h_out = _empty((N, H), h)
    _launch("gru_cell", h, {**_mat("x", x), **_mat("hm", hm), **_mat("h", h),
                            "b": b.contiguous()._storage.buf, "h_out": h_out._storage.buf},
            N, H)
    return h_out


def _run_gru_backward(op, args, attrs, out=None):
    x, hm, b, h, dh = args
    N, H = h.shape
    dx, dhm, dh_out = _empty((N, 3 * H), h), _empty((N, 3 * H), h), _empty((N, H), h)
    _launch("gru_cell_backward", h, {
        **_mat("x", x), **_mat("hm", hm), **_mat("h", h), **_mat("dh", dh),
        "b": b.contiguous()._storage.buf, "dx": dx._storage.buf, "dhm": dhm._storage.buf,
        "dh_out": dh_out._storage.buf}, N, H)
    return dx, dhm, dh_out


def gru_composed(x, hm, b, h):
    xr, xz, xn = x.chunk(3, dim=-1)
    hr, hz, hn = (hm + b).chunk(3, dim=-1)
    r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
    n = (xn + r * hn).tanh()
    return n + z * (h - n)


def _gru_vjp(g, x, hm, b, h, out):
    if not out.requires_grad:
        dx, dhm, dh = apply(GRU_CELL_BACKWARD, x, hm, b, h, g)
    else:
        xr, xz, xn = x.chunk(3, dim=-1)
        hr, hz, hn = (hm + b).chunk(3, dim=-1)
        r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        a = g * (1 - z) * (1 - n * n)
        br, bz = a * hn * r * (1 - r), g * (h - n) * z * (1 - z)
        cat = registry.functions.cat
        dx, dhm, dh = cat([br, bz, a], -1), cat([br, bz, a * r], -1), g * z
    return dx, dhm, dhm.sum(0), dh


GRU_CELL = register(OpDef("gru_cell", "rnn", None, _run_gru, _gru_vjp))
GRU_CELL_BACKWARD = register(OpDef("gru_cell_backward", "rnn", None, _run_gru_backward,
                                   differentiable=False))


def gru_cell(x, hm, b, h):
    """h' of one GRU step: ``x`` the input product with its bias (N, 3H), ``hm`` the hidden
    product without bias (N, 3H), ``b`` the hidden bias (3H), ``h`` the state."""
    return apply(GRU_CELL, x, hm, b, h)
