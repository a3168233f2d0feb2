"""cg.utils.data: datasets, DataLoader batching (sizes, drop_last, len), reproducible
shuffling under manual_seed, default_collate of nested samples, the TensorDataset gather
path and PyTorch parity of collated structures."""

from __future__ import annotations

import collections

import numpy as np
import pytest

import clgraph as cg
from clgraph.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
)
from conftest import torch_or_skip


def numbered(n=10):
    """x[i] = [i, 10 i], y[i] = i: a batch's values reveal which rows it holds."""
    x = cg.from_numpy(np.stack([np.arange(n), 10 * np.arange(n)], 1).astype(np.float32))
    return TensorDataset(x, cg.arange(n))


class Rows(Dataset):
    """A generic (not TensorDataset) view of the same rows."""

    def __init__(self, ds):
        self.ds = ds

    def __getitem__(self, i):
        return self.ds[i]

    def __len__(self):
        return len(self.ds)


def test_tensor_dataset():
    ds = numbered(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert x.tolist() == [3.0, 30.0] and y.item() == 3
    assert isinstance(ds[0], tuple)
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        TensorDataset(cg.zeros(3), cg.zeros(4))


@pytest.mark.parametrize("n,bs,drop_last,sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (10, 1, False, [1] * 10), (10, 64, False, [10]), (10, 64, True, []),
])
@pytest.mark.parametrize("generic", [False, True])
def test_batch_sizes_and_len(n, bs, drop_last, sizes, generic):
    ds = numbered(n)
    loader = DataLoader(Rows(ds) if generic else ds, batch_size=bs, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == sizes
    if batches:
        assert isinstance(batches[0], list) and len(batches[0]) == 2
        assert batches[0][0].shape == (sizes[0], 2) and batches[0][1].dtype == cg.int64
        got = np.concatenate([b[1].numpy() for b in batches])
        np.testing.assert_array_equal(got, np.arange(sum(sizes)))
        np.testing.assert_array_equal(batches[0][0].numpy()[:, 1], 10 * got[:sizes[0]])


def test_no_batching():
    loader = DataLoader(numbered(4), batch_size=None)
    assert len(loader) == 4
    items = list(loader)
    assert isinstance(items[2], tuple) and items[2][1].item() == 2 and items[2][0].shape == (2,)
    with pytest.raises(ValueError, match="mutually exclusive with drop_last"):
        DataLoader(numbered(4), batch_size=None, drop_last=True)


def _order(loader):
    return np.concatenate([b[1].numpy() for b in loader]).tolist()


@pytest.mark.parametrize("generic", [False, True])
def test_shuffle_is_a_reproducible_permutation(generic):
    ds = numbered(50)
    loader = DataLoader(Rows(ds) if generic else ds, batch_size=8, shuffle=True)
    cg.manual_seed(123)
    first, second = _order(loader), _order(loader)
    assert sorted(first) == list(range(50)) and sorted(second) == list(range(50))
    assert first != list(range(50)) and first != second  # epochs draw new permutations
    cg.manual_seed(123)
    assert _order(loader) == first
    cg.manual_seed(123)
    assert cg.randperm(50).tolist() == first  # the order is the global generator's randperm
    for b in loader:  # rows stay together
        np.testing.assert_array_equal(b[0].numpy()[:, 0], b[1].numpy())


def test_fast_path_matches_generic_path_and_copies():
    ds = numbered(20)
    cg.manual_seed(7)
    fast = [[t.numpy() for t in b] for b in DataLoader(ds, batch_size=6, shuffle=True)]
    cg.manual_seed(7)
    slow = [[t.numpy() for t in b] for b in DataLoader(Rows(ds), batch_size=6, shuffle=True)]
    for f, s in zip(fast, slow, strict=True):
        for a, b in zip(f, s):
            np.testing.assert_array_equal(a, b)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    batch[0].fill_(-1)  # a batch is a copy, not a view of the data set
    assert ds.tensors[0][0].tolist() == [0.0, 0.0]


def test_tensor_dataset_epoch_is_one_kernel_per_tensor_and_batch():
    x = cg.from_numpy(np.random.default_rng(0).random((1797, 64), dtype=np.float32))
    ds = TensorDataset(x, cg.arange(1797))
    for shuffle in (False, True):
        loader = DataLoader(ds, batch_size=64, shuffle=shuffle)
        list(loader)  # warm: kernels built
        with cg.profile() as prof:
            n = sum(1 for _ in loader)
        assert n == 29 == len(loader)
        assert prof.launches == 2 * 29 + shuffle, prof.kernels  # + randperm's random keys


def test_default_collate_nested():
    Point = collections.namedtuple("Point", "x y")
    samples = [
        {"img": cg.full((2, 2), float(i)), "label": i, "w": 0.5 * i, "name": f"s{i}",
         "flag": i % 2 == 0, "pair": (cg.tensor([i, i]), i), "pt": Point(i, float(i)),
         "arr": np.full(3, i, dtype=np.int32), "np": np.float32(i), "seq": [i, 2 * i]}
        for i in range(3)
    ]
    out = default_collate(samples)
    assert out["img"].shape == (3, 2, 2) and out["img"][2].tolist() == [[2.0, 2.0]] * 2
    assert out["label"].dtype == cg.int64 and out["label"].tolist() == [0, 1, 2]
    assert out["w"].dtype == cg.float64 and out["w"].tolist() == [0.0, 0.5, 1.0]
    assert out["name"] == ["s0", "s1", "s2"]
    assert out["flag"].dtype == cg.bool and out["flag"].tolist() == [True, False, True]
    assert isinstance(out["pair"], list) and out["pair"][0].shape == (3, 2)
    assert out["pair"][1].tolist() == [0, 1, 2]
    assert isinstance(out["pt"], Point) and out["pt"].y.tolist() == [0.0, 1.0, 2.0]
    assert out["arr"].dtype == cg.int32 and out["arr"].shape == (3, 3)
    assert out["np"].dtype == cg.float32 and out["np"].tolist() == [0.0, 1.0, 2.0]
    assert isinstance(out["seq"], list) and out["seq"][1].tolist() == [0, 2, 4]
    od = default_collate([collections.OrderedDict(a=1), collections.OrderedDict(a=2)])
    assert isinstance(od, collections.OrderedDict) and od["a"].tolist() == [1, 2]


def test_default_collate_errors():
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="batch must contain tensors, numpy arrays, numbers"):
        default_collate([object(), object()])


def test_collate_fn_sampler_and_batch_sampler():
    ds = numbered(6)
    loader = DataLoader(ds, batch_size=4, collate_fn=lambda b: [int(s[1]) for s in b])
    assert list(loader) == [[0, 1, 2, 3], [4, 5]]
    loader = DataLoader(ds, batch_size=2, sampler=[5, 3, 1])
    assert _order(loader) == [5, 3, 1] and len(loader) == 2
    loader = DataLoader(ds, batch_sampler=[[4, 0], [2]])
    assert _order(loader) == [4, 0, 2] and len(loader) == 2
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    assert list(bs) == [[0, 1, 2, 3], [4, 5]] and len(bs) == 2
    assert sorted(RandomSampler(ds)) == list(range(6))
    loader = DataLoader(ds, batch_size=3, num_workers=2, pin_memory=True, generator=object())
    assert _order(loader) == list(range(6))


@pytest.mark.parametrize("kwargs,message", [
    ({"sampler": [0, 1], "shuffle": True}, "sampler option is mutually exclusive with shuffle"),
    ({"batch_sampler": [[0]], "batch_size": 2}, "batch_sampler option is mutually exclusive"),
    ({"batch_sampler": [[0]], "drop_last": True}, "batch_sampler option is mutually exclusive"),
    ({"num_workers": -1}, "num_workers option should be non-negative"),
    ({"batch_size": 0}, "batch_size should be a positive integer value, but got batch_size=0"),
])
def test_loader_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(numbered(4), **kwargs)


def test_subset_and_random_split():
    ds = numbered(10)
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[1][1].item() == 2
    cg.manual_seed(0)
    a, b = random_split(ds, [7, 3])
    idx = [int(a[i][1]) for i in range(len(a))] + [int(b[i][1]) for i in range(len(b))]
    assert len(a) == 7 and len(b) == 3 and sorted(idx) == list(range(10))
    assert [len(s) for s in random_split(ds, [0.5, 0.3, 0.2])] == [5, 3, 2]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [3, 3])


def test_dataset_base_requires_getitem():
    with pytest.raises(NotImplementedError):
        Dataset()[0]


def test_collate_pytorch_parity():
    torch = torch_or_skip()
    from torch.utils.data import default_collate as tcollate

    def sample(lib, i):
        return {"x": lib.tensor([i, 2 * i]), "n": i, "f": i / 2, "b": bool(i % 2),
                "t": (lib.tensor(float(i)), "s")}

    ours = default_collate([sample(cg, i) for i in range(3)])
    theirs = tcollate([sample(torch, i) for i in range(3)])

    def same(a, b):
        if isinstance(b, torch.Tensor):
            assert isinstance(a, cg.Tensor) and str(a.dtype) == str(b.dtype)
            assert a.tolist() == b.tolist()
        elif isinstance(b, dict):
            assert a.keys() == b.keys()
            for k in b:
                same(a[k], b[k])
        elif isinstance(b, (list, tuple)):
            assert type(a) is type(b) and len(a) == len(b)
            for x, y in zip(a, b):
                same(x, y)
        else:
            assert a == b

    same(ours, theirs)


def test_shuffling_draws_from_the_given_generator():
    """A seeded Generator makes DataLoader(shuffle=True), RandomSampler and random_split
    reproducible without touching the global generator."""
    ds = TensorDataset(cg.arange(40))

    def order(seed):
        g = cg.Generator().manual_seed(seed)
        return [b[0].tolist() for b in DataLoader(ds, batch_size=16, shuffle=True,
                                                   generator=g)]

    assert order(1) == order(1) and order(1) != order(2)
    cg.manual_seed(0)
    state = cg.randperm(40).tolist()
    cg.manual_seed(0)
    order(3)
    assert cg.randperm(40).tolist() == state  # the global generator did not move
    g = cg.Generator().manual_seed(5)
    split = [list(s.indices) for s in random_split(ds, [30, 10], generator=g)]
    g = cg.Generator().manual_seed(5)
    assert split == [list(s.indices) for s in random_split(ds, [30, 10], generator=g)]
    assert sorted(split[0] + split[1]) == list(range(40))


def test_random_sampler_num_samples_and_replacement():
    ds = list(range(7))
    s = list(RandomSampler(ds, num_samples=17, generator=cg.Generator().manual_seed(0)))
    assert len(s) == 17 and sorted(s[:7]) == ds and sorted(s[7:14]) == ds
    assert len(set(s[14:])) == 3
    r = RandomSampler(ds, replacement=True, num_samples=200)
    drawn = list(r)
    assert len(r) == 200 and len(drawn) == 200 and set(drawn) == set(ds)
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(ds, replacement=1)
