"""nn.utils.rnn: packing and padding against numpy, their gradients, PyTorch's errors and
repr; recurrent layers on a PackedSequence equal to running each sequence alone (and to
PyTorch for the same weights, where installed)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import torch_or_skip

import clgraph as cg
from clgraph import nn
from clgraph.autograd import gradcheck
from clgraph.nn.utils.rnn import (
    PackedSequence,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

rng = np.random.default_rng(0)


def np_pack(x, lengths, batch_first):
    """Packed data, batch sizes and sorting of a padded numpy batch (stable sort)."""
    if batch_first:
        x = x.transpose(1, 0, *range(2, x.ndim))
    order = np.argsort(-np.asarray(lengths), kind="stable")
    sizes = [sum(1 for n in lengths if n > t) for t in range(max(lengths))]
    data = np.concatenate([x[t, order[:bs]] for t, bs in enumerate(sizes)])
    return data, sizes, order


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([4, 2, 2], True), ([2, 4, 1], False),
                                                    ([3, 3, 3], False)])
def test_pack_and_pad_round_trip(batch_first, lengths, enforce_sorted):
    T, B = 4, len(lengths)
    x = rng.standard_normal((B, T, 2) if batch_first else (T, B, 2)).astype(np.float32)
    packed = pack_padded_sequence(cg.tensor(x), lengths, batch_first, enforce_sorted)
    data, sizes, order = np_pack(x, lengths, batch_first)
    np.testing.assert_array_equal(packed.data.numpy(), data)
    assert packed.batch_sizes.tolist() == sizes
    assert packed.batch_sizes.dtype is cg.int64
    if enforce_sorted:
        assert packed.sorted_indices is None and packed.unsorted_indices is None
    else:
        assert packed.sorted_indices.tolist() == order.tolist()
        assert packed.unsorted_indices.tolist() == np.argsort(order).tolist()
    padded, lens = pad_packed_sequence(packed, batch_first, padding_value=-7.0,
                                       total_length=5)
    expect = np.full((B, 5, 2) if batch_first else (5, B, 2), -7.0, np.float32)
    for i, n in enumerate(lengths):
        if batch_first:
            expect[i, :n] = x[i, :n]
        else:
            expect[:n, i] = x[:n, i]
    np.testing.assert_array_equal(padded.numpy(), expect)
    assert lens.tolist() == lengths


def test_pack_gradients_float64():
    x = cg.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)

    def f(x):
        packed = pack_padded_sequence(x, [2, 3, 1, 3], enforce_sorted=False)
        return pad_packed_sequence(packed, batch_first=True, padding_value=1.5)[0]

    assert gradcheck(f, (x,))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence(batch_first, side):
    seqs = [rng.standard_normal((n, 2, 3)) for n in (2, 4, 1)]
    out = pad_sequence([cg.tensor(s) for s in seqs], batch_first, 9.0, side).numpy()
    expect = np.full((3, 4, 2, 3), 9.0)
    for i, s in enumerate(seqs):
        if side == "right":
            expect[i, :len(s)] = s
        else:
            expect[i, 4 - len(s):] = s
    np.testing.assert_array_equal(out, expect if batch_first else expect.swapaxes(0, 1))
    xs = [cg.tensor(s, requires_grad=True) for s in seqs]
    assert gradcheck(lambda *xs: pad_sequence(list(xs), batch_first, 0.5, side), tuple(xs))


def test_pack_sequence_unpack_unpad():
    seqs = [cg.tensor([1.0, 2.0]), cg.tensor([3.0, 4.0, 5.0]), cg.tensor([6.0])]
    packed = pack_sequence(seqs, enforce_sorted=False)
    assert packed.data.tolist() == [3.0, 1.0, 6.0, 4.0, 2.0, 5.0]
    assert [s.tolist() for s in unpack_sequence(packed)] == [s.tolist() for s in seqs]
    padded = pad_sequence(seqs)
    assert [s.tolist() for s in unpad_sequence(padded, cg.tensor([2, 3, 1]))] == \
        [s.tolist() for s in seqs]


def test_packed_sequence_repr_and_methods():
    packed = pack_sequence([cg.tensor([1.0, 2.0, 3.0]), cg.tensor([4.0])])
    assert repr(packed) == ("PackedSequence(data=tensor([1., 4., 2., 3.]), "
                            "batch_sizes=tensor([2, 1, 1]), sorted_indices=None, "
                            "unsorted_indices=None)")
    assert isinstance(packed, tuple) and packed.batch_sizes is packed[1]
    assert packed.double().data.dtype is cg.float64
    assert packed.to(cg.float32) is packed
    again = PackedSequence(packed.data, packed.batch_sizes, cg.tensor([1, 2, 0]))
    assert again.unsorted_indices.tolist() == [2, 0, 1]


def test_errors():
    x = cg.zeros(3, 2, 4)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        pack_padded_sequence(x, [1, 2])
    with pytest.raises(RuntimeError, match="greater than 0"):
        pack_padded_sequence(x, [2, 0])
    with pytest.raises(RuntimeError, match=r"got 1 \(batch_size=2\)"):
        pack_padded_sequence(x, [2])
    with pytest.raises(RuntimeError, match="exceeds"):
        pack_padded_sequence(x, [4, 2])
    with pytest.raises(RuntimeError, match="one of left or right, but got up"):
        pad_sequence([x[0]], padding_side="up")
    with pytest.raises(RuntimeError, match="empty list"):
        pack_sequence([])
    with pytest.raises(ValueError, match="total_length=2 and max sequence length being 3"):
        pad_packed_sequence(pack_padded_sequence(x, [3, 1]), total_length=2)


def _rnn(cls, **kw):
    cg.manual_seed(1)
    return getattr(nn, cls)(3, 4, **kw).double()


@pytest.mark.parametrize("cls,kw", [
    ("RNN", {}), ("LSTM", {}), ("GRU", {}),
    ("LSTM", {"bidirectional": True, "num_layers": 2}),
    ("GRU", {"bidirectional": True, "batch_first": True}),
    ("LSTM", {"proj_size": 2}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
])
def test_packed_input_equals_each_sequence_alone(cls, kw):
    m = _rnn(cls, **kw)
    lengths = [3, 5, 2, 5]
    bf = kw.get("batch_first", False)
    seqs = [rng.standard_normal((n, 3)) for n in lengths]
    D = 2 if kw.get("bidirectional") else 1
    layers = kw.get("num_layers", 1)
    h0 = rng.standard_normal((layers * D, 4, kw.get("proj_size") or 4))
    c0 = rng.standard_normal((layers * D, 4, 4))
    hx = (cg.tensor(h0), cg.tensor(c0)) if cls == "LSTM" else cg.tensor(h0)
    packed = pack_sequence([cg.tensor(s) for s in seqs], enforce_sorted=False)
    out, h = m(packed, hx)
    assert isinstance(out, PackedSequence)
    padded, _ = pad_packed_sequence(out, batch_first=True)
    for i, s in enumerate(seqs):
        x = cg.tensor(s[None] if bf else s[:, None])
        hi = (cg.tensor(h0[:, i:i + 1]), cg.tensor(c0[:, i:i + 1])) if cls == "LSTM" \
            else cg.tensor(h0[:, i:i + 1])
        o1, h1 = m(x, hi)
        o1 = o1[0] if bf else o1[:, 0]
        np.testing.assert_allclose(padded[i, :lengths[i]].detach().numpy(),
                                   o1.detach().numpy(), atol=1e-12)
        for a, b in zip(h if cls == "LSTM" else (h,), h1 if cls == "LSTM" else (h1,)):
            np.testing.assert_allclose(a[:, i].detach().numpy(), b[:, 0].detach().numpy(),
                                       atol=1e-12)


def test_packed_lstm_gradcheck():
    m = _rnn("LSTM", bidirectional=True)
    x = cg.tensor(rng.standard_normal((4, 3, 3)), requires_grad=True)

    def f(x):
        out, (h, c) = m(pack_padded_sequence(x, [2, 4, 3], enforce_sorted=False))
        return out.data, h, c

    assert gradcheck(f, (x,))


@pytest.mark.parametrize("cls,kw", [("RNN", {}), ("GRU", {"num_layers": 2}),
                                    ("LSTM", {"bidirectional": True, "num_layers": 2}),
                                    ("GRU", {"bidirectional": True, "batch_first": True})])
def test_packed_matches_torch(cls, kw):
    torch = torch_or_skip()
    tr = torch.nn.utils.rnn
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(3, 4, **kw).double()
    c = getattr(nn, cls)(3, 4, **kw).double()
    c.load_state_dict({k: cg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
    bf = kw.get("batch_first", False)
    lengths = [3, 5, 2, 5]
    x = torch.randn((4, 5, 3) if bf else (5, 4, 3), dtype=torch.double, requires_grad=True)
    xc = cg.tensor(x.detach().numpy(), requires_grad=True)
    ot, ht = t(tr.pack_padded_sequence(x, lengths, bf, enforce_sorted=False))
    oc, hc = c(pack_padded_sequence(xc, lengths, bf, enforce_sorted=False))
    np.testing.assert_allclose(oc.data.detach().numpy(), ot.data.detach().numpy(), atol=1e-12)
    assert oc.batch_sizes.tolist() == ot.batch_sizes.tolist()
    assert oc.sorted_indices.tolist() == ot.sorted_indices.tolist()
    ht, hc = (ht, hc) if cls == "LSTM" else ((ht,), (hc,))
    for a, b in zip(hc, ht):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)
    (ot.data.sum() + sum(h.square().sum() for h in ht)).backward()
    (oc.data.sum() + sum(h.square().sum() for h in hc)).backward()
    np.testing.assert_allclose(xc.grad.numpy(), x.grad.numpy(), atol=1e-10)
    for name, p in t.named_parameters():
        np.testing.assert_allclose(getattr(c, name).grad.numpy(), p.grad.numpy(),
                                   atol=1e-10, err_msg=name)
