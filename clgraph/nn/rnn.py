"""Recurrent layers: nn.RNN, nn.LSTM and nn.GRU, and the single-step nn.RNNCell, nn.LSTMCell
and nn.GRUCell, with PyTorch's arguments, gate order, weight names (``weight_ih_l0``,
``bias_hh_l1_reverse``...; ``weight_ih`` for cells), initialization and results. A layer and
its cell share one step function per mode. Each layer and direction multiplies the whole
input sequence by its input weights in one matmul; a step is then one matmul by the hidden
weights and one fused kernel for the gates (ops/rnn.py, forward and backward)."""

from __future__ import annotations

import math
import warnings

from .. import amp as _amp
from .. import creation
from .. import dtypes as dt
from ..ops import rnn as _rnn_ops
from ..ops.registry import functions as _f
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import _factory
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence


def _rnn_tanh_step(xi, state, w_hh, b_hh):
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); ``xi`` is the
    input part, already multiplied."""
    (h,) = state
    return [F.linear(h, w_hh, b_hh).add(xi).tanh()]


def _rnn_relu_step(xi, state, w_hh, b_hh):
    """As _rnn_tanh_step with relu."""
    (h,) = state
    return [F.relu(F.linear(h, w_hh, b_hh).add(xi))]


def _common(*ts):
    """The operands in one dtype (autocast may leave the products in a lower one)."""
    d = ts[0].dtype
    for t in ts[1:]:
        d = dt.promote_types(d, t.dtype)
    return [t if t.dtype is d else t.to(d) for t in ts]


def _lstm_step(xi, state, w_hh, b_hh):
    """One LSTM step (gates i, f, g, o), its gate arithmetic one fused kernel
    (ops/rnn.py): returns [h', c']."""
    h, c = state
    if b_hh is not None:
        xi = xi + b_hh
    return list(_rnn_ops.lstm_cell(*_common(xi, F.linear(h, w_hh), c)))


def _gru_step(xi, state, w_hh, b_hh):
    """One GRU step (gates r, z, n; n = tanh(x_n + r * (W_hn h + b_hn))), its gate
    arithmetic one fused kernel."""
    (h,) = state
    hm = F.linear(h, w_hh)
    if b_hh is None:
        b_hh = creation.zeros(hm.shape[-1], dtype=hm.dtype, device=hm.device)
    return [_rnn_ops.gru_cell(*_common(xi, hm, b_hh, h))]


# mode -> (step, gate blocks in the weights, states carried)
_MODES = {"RNN_TANH": (_rnn_tanh_step, 1, 1), "RNN_RELU": (_rnn_relu_step, 1, 1),
          "LSTM": (_lstm_step, 4, 2), "GRU": (_gru_step, 3, 1)}


def _nonlinearity_mode(nonlinearity: str) -> str:
    if nonlinearity == "tanh":
        return "RNN_TANH"
    if nonlinearity == "relu":
        return "RNN_RELU"
    raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")


def _reset_uniform(module: Module) -> None:
    """The recurrent layers' default: every parameter ~ U(-1/sqrt(hidden), 1/sqrt(hidden))."""
    bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


class RNNBase(Module):
    """torch.nn.RNNBase: the recurrent layers' base, ``mode`` one of "LSTM", "GRU",
    "RNN_TANH" and "RNN_RELU". Unlike PyTorch's it runs by itself as the layer of its
    mode."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        self.mode = mode
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(
                dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, "
                          "so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                                  ("input_size", input_size, int),
                                  ("hidden_size", hidden_size, int)):
            if not isinstance(value, kind):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: "
                                f"{type(value).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and self.mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        fk = _factory(device, dtype)
        G, H = _MODES[self.mode][1], hidden_size
        R = proj_size or H  # the size of h (the output), projected from H with proj_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for sfx in ("", "_reverse")[:2 if bidirectional else 1]:
                width = input_size if layer == 0 else R * (2 if bidirectional else 1)
                names = [f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"]
                shapes = [(G * H, width), (G * H, R)]
                if bias:
                    names += [f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"]
                    shapes += [(G * H,), (G * H,)]
                if proj_size:
                    names.append(f"weight_hr_l{layer}{sfx}")
                    shapes.append((proj_size, H))
                for name, shape in zip(names, shapes):
                    setattr(self, name, Parameter(creation.empty(*shape, **fk)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self)

    def flatten_parameters(self) -> None:
        """Does nothing: the weights are always used where they are (as on PyTorch's CPU)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _weights(self, layer: int, sfx: str):
        """[w_ih, w_hh, b_ih, b_hh, w_hr] of one layer and direction (None where absent)."""
        w = [getattr(self, f"weight_ih_l{layer}{sfx}"), getattr(self, f"weight_hh_l{layer}{sfx}")]
        if self.bias:
            w += [getattr(self, f"bias_ih_l{layer}{sfx}"), getattr(self, f"bias_hh_l{layer}{sfx}")]
        else:
            w += [None, None]
        return w + [getattr(self, f"weight_hr_l{layer}{sfx}") if self.proj_size else None]

    def _states(self, hx, N: int, like: Tensor) -> list:
        """The initial states, each (layers * directions, N, H); h of an LSTM with proj_size
        is (layers * directions, N, proj_size)."""
        D = 2 if self.bidirectional else 1
        n_states = _MODES[self.mode][2]
        shapes = [(self.num_layers * D, N, self.proj_size or self.hidden_size),
                  (self.num_layers * D, N, self.hidden_size)][:n_states]
        if hx is None:
            return [creation.zeros(*shape, dtype=like.dtype, device=like.device)
                    for shape in shapes]
        states = list(hx) if isinstance(hx, (tuple, list)) else [hx]
        for i, (s, shape) in enumerate(zip(states, shapes)):
            if tuple(s.shape) != shape:
                what = f"hidden[{i}]" if n_states > 1 else "hidden"
                raise RuntimeError(f"Expected {what} size {shape}, got {list(s.shape)}")
        return states

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{input.ndim}D instead")
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        if hx is not None and not batched:
            hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, (tuple, list)) \
                else hx.unsqueeze(1)
        self._check_input_size(x)
        states = self._states(hx, x.shape[1], x)
        out, last = self._layers(x, states, None)
        out = out if batched else out.squeeze(1)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        if not batched:
            last = [s.squeeze(1) for s in last]
        return out, (tuple(last) if len(last) > 1 else last[0])

    def _forward_packed(self, input: PackedSequence, hx):
        """A PackedSequence in, a PackedSequence out; the final states are each
        sequence's at its own length, in the batch's original order (as PyTorch's)."""
        x, batch_sizes = input.data, [int(b) for b in input.batch_sizes.tolist()]
        self._check_input_size(x)
        if hx is not None and input.sorted_indices is not None:  # into the sorted order
            hx = tuple(h.index_select(1, input.sorted_indices) for h in hx) \
                if isinstance(hx, (tuple, list)) else hx.index_select(1, input.sorted_indices)
        states = self._states(hx, batch_sizes[0], x)
        out, last = self._layers(x, states, batch_sizes)
        if input.unsorted_indices is not None:
            last = [s.index_select(1, input.unsorted_indices) for s in last]
        packed = PackedSequence(out, input.batch_sizes, input.sorted_indices,
                                input.unsorted_indices)
        return packed, (tuple(last) if len(last) > 1 else last[0])

    def _check_input_size(self, x: Tensor) -> None:
        w = getattr(self, self._flat_weights_names[0])
        if x.dtype != w.dtype and not _amp.is_autocast_enabled():
            raise ValueError(f"RNN input dtype ({x.dtype}) does not match weight dtype "
                             f"({w.dtype}). Convert input: input.to({w.dtype}), or convert "
                             f"model: model.to({x.dtype})")
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")

    def _layers(self, x, states, batch_sizes):
        """Every layer and direction over x, (L, N, in), or the packed data (sum of
        ``batch_sizes``, in): returns the last layer's output in x's layout and the final
        states, each (layers * directions, N, H)."""
        finals = [[] for _ in states]
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                i = layer * D + d
                out, last = self._run(x, self._weights(layer, "_reverse" if d else ""),
                                      [s[i] for s in states], bool(d), batch_sizes)
                outs.append(out)
                for f, s in zip(finals, last):
                    f.append(s)
            x = outs[0] if D == 1 else _f.cat(outs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)
        return x, [_f.stack(f) for f in finals]

    def _run(self, x, weights, state, reverse: bool, batch_sizes=None):
        """One layer in one direction over the sequence x (L, N, in); with ``batch_sizes``
        x is packed data, whose step t holds the first batch_sizes[t] sequences: a step
        updates only their rows of the state, so each row keeps its sequence's last
        state."""
        w_ih, w_hh, b_ih, b_hh, w_hr = weights
        xi = F.linear(x, w_ih, b_ih)  # every step's input part at once
        if b_hh is not None and self.mode != "GRU":  # (a GRU's stays inside r * (...))
            xi, b_hh = xi + b_hh, None
        packed = batch_sizes is not None
        if not packed:
            batch_sizes = [x.shape[1]] * x.shape[0]
        starts = [0]
        for bs in batch_sizes[:-1]:
            starts.append(starts[-1] + bs)
        N = batch_sizes[0] if batch_sizes else 0
        steps = range(len(batch_sizes) - 1, -1, -1) if reverse else range(len(batch_sizes))
        outs = [None] * len(batch_sizes)
        step = _MODES[self.mode][0]
        for t in steps:
            bs = batch_sizes[t]
            xt = xi[starts[t]:starts[t] + bs] if packed else xi[t]
            new = step(xt, [s[:bs] for s in state] if bs < N else state, w_hh, b_hh)
            if w_hr is not None:  # LSTM with proj_size: h = (o * tanh(c)) W_hr^T
                new[0] = F.linear(new[0], w_hr)
            outs[t] = new[0]
            state = [_f.cat([n, s[bs:]]) for n, s in zip(new, state)] if bs < N else new
        return (_f.cat(outs) if packed else _f.stack(outs)), state


class RNN(RNNBase):
    """torch.nn.RNN: h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) with
    ``nonlinearity`` "tanh" or "relu". ``forward(input, h_0)`` returns (output, h_n)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__(_nonlinearity_mode(nonlinearity), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """torch.nn.LSTM (gates i, f, g, o). ``forward(input, (h_0, c_0))`` returns
    (output, (h_n, c_n)); with ``proj_size`` each step's h is projected by ``weight_hr_l<k>``
    to that size."""

    mode = "LSTM"  # also the class's: whole modules pickled before RNNBase took ``mode``

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """torch.nn.GRU (gates r, z, n; n = tanh(x_n + r * (W_hn h + b_hn))).
    ``forward(input, h_0)`` returns (output, h_n)."""

    mode = "GRU"

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    """torch.nn.RNNCellBase: one step of a recurrent layer, ``weight_ih`` (G*H, in),
    ``weight_hh`` (G*H, H), ``bias_ih`` and ``bias_hh`` (G*H), G = ``num_chunks``, all
    ~ U(-1/sqrt(H), 1/sqrt(H)); input (N, in) or unbatched (in). The cells set ``mode``."""

    mode: str | None = None  # a key of _MODES, set by each cell class

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        fk = _factory(device, dtype)
        G = num_chunks
        self.weight_ih = Parameter(creation.empty(G * hidden_size, input_size, **fk))
        self.weight_hh = Parameter(creation.empty(G * hidden_size, hidden_size, **fk))
        if bias:
            self.bias_ih = Parameter(creation.empty(G * hidden_size, **fk))
            self.bias_hh = Parameter(creation.empty(G * hidden_size, **fk))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def forward(self, input: Tensor, hx=None):
        name = type(self).__name__
        if self.mode is None:
            return super().forward(input, hx)
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D "
                             "instead")
        n_states = _MODES[self.mode][2]
        states = None if hx is None else list(hx) if n_states > 1 else [hx]
        for i, s in enumerate(states or ()):
            if s.ndim not in (1, 2):
                what = f"hx[{i}]" if n_states > 1 else "hidden"
                raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {s.ndim}D "
                                 "instead")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {x.shape[1]} "
                               f"expected {self.input_size}")
        if states is None:
            zero = creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype,
                                  device=x.device)
            states = [zero] * n_states
        elif not batched:
            states = [s.unsqueeze(0) for s in states]
        for i, s in enumerate(states):
            if s.shape[0] != x.shape[0]:
                raise RuntimeError(f"Input batch size {x.shape[0]} doesn't match hidden{i} "
                                   f"batch size {s.shape[0]}")
            if s.shape[1] != self.hidden_size:
                raise RuntimeError(f"hidden{i} has inconsistent hidden_size: got "
                                   f"{s.shape[1]}, expected {self.hidden_size}")
        step = _MODES[self.mode][0]
        out = step(F.linear(x, self.weight_ih, self.bias_ih), states, self.weight_hh,
                   self.bias_hh)
        if not batched:
            out = [o.squeeze(0) for o in out]
        return tuple(out) if n_states > 1 else out[0]


class RNNCell(RNNCellBase):
    """torch.nn.RNNCell: h' = nonlinearity(x W_ih^T + b_ih + h W_hh^T + b_hh).
    ``forward(input, hx=None)`` returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        self.mode = _nonlinearity_mode(nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)


class LSTMCell(RNNCellBase):
    """torch.nn.LSTMCell: ``forward(input, (h, c)=None)`` returns (h', c')."""

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)


class GRUCell(RNNCellBase):
    """torch.nn.GRUCell: ``forward(input, hx=None)`` returns h'."""

    mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)


__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]
