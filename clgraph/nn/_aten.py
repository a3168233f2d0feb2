"""The top-level torch.<name> forms of nn computations whose signature there is ATen's, not
nn.functional's: lstm_cell, gru_cell, rnn_tanh_cell, rnn_relu_cell, embedding_bag (mode as
an int, four results) and ctc_loss (reduction as an int). Each calls the nn implementation."""

from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..creation import tensor
from ..tensor import Tensor
from . import functional as F
from .rnn import _gru_step, _lstm_step, _rnn_relu_step, _rnn_tanh_step


def _cell(step, input: Tensor, state: list, w_ih: Tensor, w_hh: Tensor, b_ih, b_hh) -> list:
    return step(F.linear(input, w_ih, b_ih), state, w_hh, b_hh)


def lstm_cell(input: Tensor, hx, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
              b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step (gates i, f, g, o); ``hx`` is (h, c); returns (h', c')."""
    if len(hx) != 2:
        raise RuntimeError(f"lstm_cell expects two hidden states, got {len(hx)}")
    h, c = _cell(_lstm_step, input, list(hx), w_ih, w_hh, b_ih, b_hh)
    return h, c


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None) -> Tensor:
    """One GRU step (gates r, z, n); returns h'."""
    return _cell(_gru_step, input, [hx], w_ih, w_hh, b_ih, b_hh)[0]


def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """tanh(input W_ih^T + b_ih + hx W_hh^T + b_hh)."""
    return _cell(_rnn_tanh_step, input, [hx], w_ih, w_hh, b_ih, b_hh)[0]


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,
                  b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> Tensor:
    """relu(input W_ih^T + b_ih + hx W_hh^T + b_hh)."""
    return _cell(_rnn_relu_step, input, [hx], w_ih, w_hh, b_ih, b_hh)[0]


_BAG_MODES = ("sum", "mean", "max")


def embedding_bag(weight: Tensor, indices: Tensor, offsets: Tensor,
                  scale_grad_by_freq: bool = False, mode: int = 0, sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None):
    """ATen's embedding_bag: mode 0 sum, 1 mean, 2 max. Returns (output, offset2bag,
    bag_size, max_indices) as PyTorch's CPU kernel fills them: offset2bag is each index's
    bag (empty for a float32 sum without padding_idx, PyTorch's fast path), bag_size each
    bag's count of indices other than padding_idx (zeros for sum), max_indices the row
    chosen per bag and feature for max, bag_size otherwise. The last three are computed on
    the host."""
    if mode not in (0, 1, 2):
        raise ValueError(f"embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max), got "
                         f"{mode}")
    if not isinstance(offsets, Tensor):
        raise TypeError(f"embedding_bag(): argument 'offsets' (position 3) must be Tensor, "
                        f"not {type(offsets).__name__}")
    if padding_idx is not None and padding_idx < 0:
        padding_idx = None  # ATen's "no padding" is -1
    output = F.embedding_bag(indices, weight, offsets, scale_grad_by_freq=scale_grad_by_freq,
                             mode=_BAG_MODES[mode], sparse=sparse,
                             per_sample_weights=per_sample_weights,
                             include_last_offset=include_last_offset, padding_idx=padding_idx)
    idx = np.asarray(indices.numpy()).reshape(-1).astype(np.int64)
    starts = np.asarray(offsets.numpy()).reshape(-1).astype(np.int64)
    bags = output.shape[0]
    which = np.clip(np.searchsorted(starts, np.arange(idx.size), side="right") - 1, 0,
                    max(bags - 1, 0))
    counted = idx != (-1 if padding_idx is None else padding_idx)
    dev = output.device
    fast_sum = mode == 0 and padding_idx is None and weight.dtype == dt.float32
    offset2bag = tensor(np.zeros(0, np.int64) if fast_sum else which, device=dev)
    size = np.bincount(which[counted], minlength=bags)[:bags].astype(np.int64)
    bag_size = tensor(np.zeros(bags, np.int64) if mode == 0 else size, device=dev)
    if mode != 2:
        return output, offset2bag, bag_size, bag_size
    w = np.asarray(weight.detach().numpy())
    chosen = np.zeros((bags, w.shape[1]), np.int64)
    for b in range(bags):
        rows = idx[(which == b) & counted]
        if rows.size:
            chosen[b] = rows[np.argmax(w[rows], axis=0)]
    return output, offset2bag, bag_size, tensor(chosen, device=dev)


_REDUCTIONS = ("none", "mean", "sum")


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths,
             blank: int = 0, reduction: int = 1, zero_infinity: bool = False) -> Tensor:
    """ATen's ctc_loss: reduction 0 none, 1 mean, 2 sum."""
    if reduction not in (0, 1, 2):
        raise ValueError(f"ctc_loss: reduction must be 0 (none), 1 (mean) or 2 (sum), got "
                         f"{reduction}")
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                      _REDUCTIONS[reduction], zero_infinity)


__all__ = ["ctc_loss", "embedding_bag", "gru_cell", "lstm_cell", "rnn_relu_cell",
           "rnn_tanh_cell"]
