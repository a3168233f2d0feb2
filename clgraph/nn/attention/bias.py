"""torch.nn.attention.bias: ``causal_upper_left`` and ``causal_lower_right`` masks.

PyTorch's CausalBias is a tensor subclass that scaled_dot_product_attention dispatches on;
clgraph's is the materialized boolean mask itself (a Tensor, made on the default device),
which attention treats as any boolean mask: the same result."""

from __future__ import annotations

import warnings
from enum import IntEnum

from ... import dtypes as dt
from ...creation import ones
from ...tensor import Tensor

__all__ = ["CausalBias", "CausalVariant", "causal_lower_right", "causal_upper_left"]


class CausalVariant(IntEnum):
    """UPPER_LEFT: query i sees keys j <= i; LOWER_RIGHT: the diagonal ends at the last
    query and key (j <= i + seq_len_kv - seq_len_q)."""

    UPPER_LEFT = 1
    LOWER_RIGHT = 2


class CausalBias(Tensor):
    """A (seq_len_q, seq_len_kv) boolean causal mask (True: attend)."""

    def __new__(cls, variant: CausalVariant, seq_len_q: int, seq_len_kv: int):
        if not isinstance(variant, CausalVariant):
            raise AssertionError(f"variant must be a CausalVariant, got "
                                 f"{type(variant).__name__}")
        offset = 0 if variant == CausalVariant.UPPER_LEFT else seq_len_kv - seq_len_q
        mask = ones(seq_len_q, seq_len_kv, dtype=dt.bool_).tril(offset)
        mask.__class__ = cls
        return mask

    def __init__(self, variant: CausalVariant, seq_len_q: int, seq_len_kv: int) -> None:
        self.variant = variant
        self.seq_len_q = seq_len_q
        self.seq_len_kv = seq_len_kv
        if seq_len_q > seq_len_kv and variant == CausalVariant.LOWER_RIGHT:
            warnings.warn("Lower right causal bias will produce NaNs in the output when "
                          "seq_len_q > seq_len_kv!", stacklevel=2)

    def _materialize(self, device=None) -> Tensor:
        """The mask as a plain boolean tensor (on ``device``, if given)."""
        plain = Tensor._on(self._storage, self._shape, self._stride, self._offset, self.dtype,
                           self.device, self._contig)
        return plain if device is None else plain.to(device)


def causal_upper_left(*size) -> CausalBias:
    """torch.nn.attention.bias.causal_upper_left(seq_len_q, seq_len_kv)."""
    if len(size) != 2:
        raise AssertionError("causal_upper_left only supports 2D tensors")
    return CausalBias(CausalVariant.UPPER_LEFT, *size)


def causal_lower_right(*size) -> CausalBias:
    """torch.nn.attention.bias.causal_lower_right(seq_len_q, seq_len_kv)."""
    if len(size) != 2:
        raise AssertionError("causal_lower_right only supports 2D tensors")
    return CausalBias(CausalVariant.LOWER_RIGHT, *size)
