"""torch.nn.utils.rnn: PackedSequence and the functions that pack, pad and unpad batches of
sequences of different lengths. Every move of data is one ``index_select`` with an index
computed on the host from the lengths (a row of ``padding_value`` appended for the padded
places), so packing and padding are differentiable and stay on the device.

``batch_sizes`` lives on the data's device (PyTorch keeps it on the CPU); its values are
read to the host where an index is computed from them."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import creation
from ... import dtypes as dt
from ...ops.registry import functions as _f
from ...tensor import Tensor


class _PackedSequenceBase(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def _index(values, device) -> Tensor:
    return creation.tensor(np.asarray(values, dtype=np.int64).reshape(-1), dtype=dt.int64,
                           device=device)


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of the permutation ``permutation`` (None for None)."""
    if permutation is None:
        return None
    perm = np.asarray(permutation.tolist(), dtype=np.int64)
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return _index(inverse, permutation.device)


class PackedSequence(_PackedSequenceBase):
    """torch.nn.utils.rnn.PackedSequence: ``data`` (the steps of all sequences, step by
    step, each step's sequences longest first), ``batch_sizes`` (how many sequences each
    step holds), ``sorted_indices`` and ``unsorted_indices`` (the sorting of the batch by
    length and its inverse, or None when the batch came sorted)."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """``data.to(...)``; the indices follow its device. Returns self when nothing
        changes."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t):
            return None if t is None else t.to(data.device)

        return type(self)(data, move(self.batch_sizes), move(self.sorted_indices),
                          move(self.unsorted_indices))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device=None) -> PackedSequence:
        return self.to("cuda" if device is None else device)

    def double(self) -> PackedSequence:
        return self.to(dtype=dt.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=dt.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=dt.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=dt.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=dt.int32)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _lengths_list(lengths) -> list[int]:
    if isinstance(lengths, Tensor):
        return [int(v) for v in lengths.reshape(-1).tolist()]
    return [int(v) for v in lengths]


def _offsets(batch_sizes: list[int]) -> np.ndarray:
    """Where each step starts in the packed data."""
    return np.concatenate([[0], np.cumsum(batch_sizes)[:-1]]).astype(np.int64)


def _batch_sizes(lengths: list[int]) -> list[int]:
    """How many of the (decreasing) ``lengths`` reach each step."""
    return [sum(1 for n in lengths if n > t) for t in range(lengths[0])]


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) with ``batch_first``) of sequences of
    ``lengths``. With ``enforce_sorted=False`` the batch is sorted by decreasing length
    first (stably) and the PackedSequence records the sorting."""
    lengths = _lengths_list(lengths)
    T, B = (input.shape[1], input.shape[0]) if batch_first else input.shape[:2]
    if len(lengths) != B:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{len(lengths)} (batch_size={B})")
    if any(n <= 0 for n in lengths):
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if max(lengths) > T:
        raise RuntimeError(f"a length in 'lengths' ({max(lengths)}) exceeds the padded "
                           f"sequence length {T}")
    order = np.arange(B)
    sorted_indices = None
    if enforce_sorted:
        if any(a < b for a, b in zip(lengths, lengths[1:])):
            raise RuntimeError(
                "`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                "pack_sequence to sidestep this requirement if you do not need ONNX "
                "exportability.")
    else:
        order = np.argsort(-np.asarray(lengths), kind="stable")
        sorted_indices = _index(order, input.device)
        lengths = [lengths[i] for i in order]
    batch_sizes = _batch_sizes(lengths)
    # the flat row of (step t, sorted sequence k) in input viewed as (T*B, *) or (B*T, *)
    rows = [order[k] * T + t if batch_first else t * B + order[k]
            for t, bs in enumerate(batch_sizes) for k in range(bs)]
    flat = input.reshape(T * B, *input.shape[2:])
    data = flat.index_select(0, _index(rows, input.device))
    return PackedSequence(data, _index(batch_sizes, input.device), sorted_indices, None)


def _padded_rows(batch_sizes: list[int], order, total_length: int, batch_first: bool,
                 pad_row: int) -> list[int]:
    """The packed-data row of each place of the padded result (``pad_row`` where a
    sequence has ended); ``order[i]`` is the sorted position of output sequence i."""
    offsets = _offsets(batch_sizes)

    def row(t, i):
        k = order[i]
        return int(offsets[t] + k) if t < len(batch_sizes) and k < batch_sizes[t] else pad_row

    B = len(order)
    if batch_first:
        return [row(t, i) for i in range(B) for t in range(total_length)]
    return [row(t, i) for t in range(total_length) for i in range(B)]


def _with_pad_row(data: Tensor, padding_value: float) -> Tensor:
    pad = creation.full((1, *data.shape[1:]), padding_value, dtype=data.dtype,
                        device=data.device)
    return _f.cat([data, pad])


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """The padded batch (T, B, *) (or (B, T, *)) of a PackedSequence, in its original
    order, and the lengths (int64, on the data's device where PyTorch's are on the CPU)."""
    batch_sizes = [int(v) for v in sequence.batch_sizes.tolist()]
    max_len = len(batch_sizes)
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {max_len}")
        max_len = total_length
    B = batch_sizes[0]
    sorted_lengths = [sum(1 for bs in batch_sizes if bs > k) for k in range(B)]
    unsorted = sequence.unsorted_indices
    order = list(range(B)) if unsorted is None else [int(v) for v in unsorted.tolist()]
    data = sequence.data
    rows = _padded_rows(batch_sizes, order, max_len, batch_first, data.shape[0])
    padded = _with_pad_row(data, padding_value).index_select(0, _index(rows, data.device))
    shape = (B, max_len) if batch_first else (max_len, B)
    lengths = _index([sorted_lengths[k] for k in order], data.device)
    return padded.reshape(*shape, *data.shape[1:]), lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack ``sequences`` (each (L_i, *)) into (L_max, B, *) (or (B, L_max, *)), padded
    with ``padding_value`` on ``padding_side``."""
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                           f"{padding_side}.")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    trailing = sequences[0].shape[1:]
    for s in sequences[1:]:
        if s.shape[1:] != trailing:
            raise RuntimeError(f"pad_sequence: every sequence must have the trailing shape "
                               f"{list(trailing)} of the first, but got {list(s.shape)}")
    lengths = [s.shape[0] for s in sequences]
    L, B = max(lengths), len(sequences)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    pad_row = int(sum(lengths))

    def row(t, i):
        shift = L - lengths[i] if padding_side == "left" else 0
        j = t - shift
        return int(starts[i] + j) if 0 <= j < lengths[i] else pad_row

    places = ([(t, i) for i in range(B) for t in range(L)] if batch_first
              else [(t, i) for t in range(L) for i in range(B)])
    device = sequences[0].device
    flat = _with_pad_row(_f.cat([s.reshape(s.shape[0], *trailing) for s in sequences]),
                         padding_value)
    out = flat.index_select(0, _index([row(t, i) for t, i in places], device))
    return out.reshape(*((B, L) if batch_first else (L, B)), *trailing)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The sequences of a padded batch, each cut to its length."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :n] for i, n in enumerate(_lengths_list(lengths))]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences (each (L_i, *))."""
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a PackedSequence holds, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pack_sequence",
           "pad_packed_sequence", "pad_sequence", "unpack_sequence", "unpad_sequence"]
