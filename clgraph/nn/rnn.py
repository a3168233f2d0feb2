"""Recurrent layers: nn.LSTM and nn.GRU with PyTorch's arguments, gate order, weight names
(``weight_ih_l0``, ``bias_hh_l1_reverse``...), initialization and results. Each layer and
direction multiplies the whole input sequence by its input weights in one matmul; a step
is then one matmul by the hidden weights and the gates' elementwise work, which a compiled
call fuses into one kernel per step."""

from __future__ import annotations

import math

from .. import creation
from ..ops.registry import functions as _f
from ..tensor import Tensor
from . import functional as F
from . import init
from .layers import _factory
from .module import Module
from .parameter import Parameter


class _RNNBase(Module):
    _gates = 1  # gate blocks of the weights (LSTM 4, GRU 3)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if not isinstance(dropout, (int, float)) or not 0 <= dropout <= 1 or isinstance(
                dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size:
            raise NotImplementedError("proj_size is not supported")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = 0
        fk = _factory(device, dtype)
        G, H = self._gates, hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for sfx in ("", "_reverse")[:2 if bidirectional else 1]:
                width = input_size if layer == 0 else H * (2 if bidirectional else 1)
                names = [f"weight_ih_l{layer}{sfx}", f"weight_hh_l{layer}{sfx}"]
                shapes = [(G * H, width), (G * H, H)]
                if bias:
                    names += [f"bias_ih_l{layer}{sfx}", f"bias_hh_l{layer}{sfx}"]
                    shapes += [(G * H,), (G * H,)]
                for name, shape in zip(names, shapes):
                    setattr(self, name, Parameter(creation.empty(*shape, **fk)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name in self._flat_weights_names:
            init.uniform_(getattr(self, name), -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
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
        w = [getattr(self, f"weight_ih_l{layer}{sfx}"), getattr(self, f"weight_hh_l{layer}{sfx}")]
        if self.bias:
            return w + [getattr(self, f"bias_ih_l{layer}{sfx}"),
                        getattr(self, f"bias_hh_l{layer}{sfx}")]
        return w + [None, None]

    def _states(self, hx, N: int, like: Tensor) -> list:
        """The initial states, each (layers * directions, N, H)."""
        D = 2 if self.bidirectional else 1
        shape = (self.num_layers * D, N, self.hidden_size)
        if hx is None:
            zero = creation.zeros(*shape, dtype=like.dtype, device=like.device)
            return [zero] * self._n_states
        states = list(hx) if isinstance(hx, (tuple, list)) else [hx]
        for s in states:
            if tuple(s.shape) != shape:
                raise RuntimeError(f"Expected hidden size {shape}, got {tuple(s.shape)}")
        return states

    def forward(self, input: Tensor, hx=None):
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
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")
        states = self._states(hx, x.shape[1], x)
        finals = [[] for _ in states]
        D = 2 if self.bidirectional else 1
        for layer in range(self.num_layers):
            outs = []
            for d in range(D):
                i = layer * D + d
                out, last = self._run(x, self._weights(layer, "_reverse" if d else ""),
                                      [s[i] for s in states], reverse=bool(d))
                outs.append(out)
                for f, s in zip(finals, last):
                    f.append(s)
            x = outs[0] if D == 1 else _f.cat(outs, dim=2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)
        out = x if batched else x.squeeze(1)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        last = [_f.stack(f) if batched else _f.stack(f).squeeze(1) for f in finals]
        return out, (tuple(last) if len(last) > 1 else last[0])

    def _run(self, x, weights, state, reverse: bool):
        """One layer in one direction over the sequence x (L, N, in)."""
        w_ih, w_hh, b_ih, b_hh = weights
        xi = F.linear(x, w_ih, b_ih)  # every step's input part at once
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        outs = [None] * x.shape[0]
        for t in steps:
            state = self._cell(xi[t], state, w_hh, b_hh)
            outs[t] = state[0]
        return _f.stack(outs), state


class LSTM(_RNNBase):
    """torch.nn.LSTM (gates i, f, g, o). ``forward(input, (h_0, c_0))`` returns
    (output, (h_n, c_n))."""

    _gates, _n_states = 4, 2

    def _cell(self, xi, state, w_hh, b_hh):
        h, c = state
        i, f, g, o = F.linear(h, w_hh, b_hh).add(xi).chunk(4, dim=1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return [o.sigmoid() * c.tanh(), c]


class GRU(_RNNBase):
    """torch.nn.GRU (gates r, z, n; n = tanh(x_n + r * (W_hn h + b_hn))).
    ``forward(input, h_0)`` returns (output, h_n)."""

    _gates, _n_states = 3, 1

    def _cell(self, xi, state, w_hh, b_hh):
        (h,) = state
        xr, xz, xn = xi.chunk(3, dim=1)
        hr, hz, hn = F.linear(h, w_hh, b_hh).chunk(3, dim=1)
        r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        return [n + z * (h - n)]


__all__ = ["GRU", "LSTM"]
