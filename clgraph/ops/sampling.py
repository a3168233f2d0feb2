"""Sampling from tensors of probabilities or weights: bernoulli, Tensor.bernoulli_ and
multinomial, drawn from a ``generator=`` (clgraph.generator) through creation's random
kernels. Their results do not require grad (PyTorch's bernoulli has a zero gradient,
multinomial none). Checks that need the data (probabilities in [0, 1], weights finite and
non-negative) read one flag back to the host, as PyTorch's CPU kernels check them. Imports
creation, sort and the ops layer below them."""

from __future__ import annotations

import builtins
import numbers

from .. import dtypes as dt
from ..creation import arange, rand
from ..shapes import broadcast_shapes
from . import registry
from .math import copy_
from .movement import contiguous, reshape
from .registry import functions as F
from .registry import public
from .sort import search_cdf, topk


def _uniform_like(x, generator):
    """Uniform [0, 1) numbers of x's shape, in float64 for float64 x, else float32."""
    return rand(*x.shape, generator=generator, device=x.device,
                dtype=dt.float64 if x.dtype is dt.float64 else dt.float32)


def _check_probability(p) -> None:
    if isinstance(p, registry.Tensor):
        if not bool(((p >= 0) & (p <= 1)).all()):
            raise RuntimeError("Expected p_in >= 0 && p_in <= 1 to be true, but got false.")
    elif not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")


@public
def bernoulli(input, p=None, *, generator=None):
    """torch.bernoulli: 1 with probability ``input`` (or ``p`` for every element), in
    input's dtype."""
    if p is None:
        if not input.dtype.is_floating_point:
            raise NotImplementedError(f'"bernoulli_tensor_cpu_p_" not implemented for '
                                      f"'{input.dtype.scalar_type}'")
        p = input.detach()
    _check_probability(p)
    return (_uniform_like(input, generator) < p).to(input.dtype)


@public(function=False)
def bernoulli_(input, p=0.5, *, generator=None):
    """Tensor.bernoulli_: fill with 1 at probability ``p`` (a number or a tensor that
    broadcasts to input), else 0."""
    if isinstance(p, registry.Tensor):
        p = p.detach().expand(*input.shape)
    _check_probability(p)
    return copy_(input, _uniform_like(input, generator) < p)


def _check_weights(w, replacement: bool, num_samples: int) -> None:
    """PyTorch's checks of a weight tensor, read back as one flag each."""
    if not replacement or num_samples == 1:
        if not bool(((w.amax() < float("inf")) & (w.amin() >= 0)).all()):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    else:
        if not bool(w.isfinite().all()):
            raise RuntimeError("invalid multinomial distribution (encountering probability "
                               "entry = infinity or NaN)")
        if bool((w < 0).any()):
            raise RuntimeError("invalid multinomial distribution (encountering probability "
                               "entry < 0)")
    if bool((w.sum(-1) <= 0).any()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")


@public
def multinomial(input, num_samples, replacement=False, *, generator=None):
    """torch.multinomial: ``num_samples`` category indices per row of the weights
    ``input`` (1-d or 2-d). Without replacement (or for one sample) the categories with
    the largest weight / Exp(1) keys, PyTorch's algorithm; with replacement each sample
    searches the row's cumulative weights for a uniform target (kernels/sort.cl)."""
    if not 1 <= input.ndim <= 2:
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, got: "
                           f"{input.dtype.scalar_type}")
    if isinstance(num_samples, builtins.bool) or not isinstance(num_samples, numbers.Integral):
        raise TypeError(f"multinomial(): argument 'num_samples' (position 2) must be int, not "
                        f"{type(num_samples).__name__}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n = input._shape[-1]
    if not replacement and num_samples > n:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without "
                           "replacement")
    if n > 1 << 24:
        raise RuntimeError("number of categories cannot exceed 2^24")
    w = reshape(input.detach(), -1, n)
    if w._shape[0] == 0:
        return input.new_zeros(0, num_samples, dtype=dt.int64)
    if w.dtype is not dt.float64:
        w = w.to(dt.float32)
    _check_weights(w, replacement, num_samples)
    if not replacement or num_samples == 1:
        # -log(u) for u in [0, 1) lies in (0, inf]: a zero weight keeps key 0, never NaN
        keys = w / _uniform_like(w, generator).log().neg()
        out = topk(keys, num_samples, -1).indices
    else:
        cdf = contiguous(F.cumsum(w, -1))
        u = rand(w._shape[0], num_samples, generator=generator, device=w.device, dtype=w.dtype)
        out = search_cdf(cdf if cdf._offset == 0 else cdf.clone(), u)
    return out if input.ndim == 2 else reshape(out, num_samples)


# Poisson draws by inversion run in rounds of rate at most this: exp(-rate) stays a normal
# float64, and a Poisson(a + b) is the sum of independent Poisson(a) and Poisson(b) draws
_POISSON_ROUND = 500.0


@public(method=False)
def poisson(input, generator=None):
    """torch.poisson: a Poisson(rate) draw for each rate of ``input``, in input's dtype, by
    inversion of the CDF in float64 (rates above 500 as sums of rounds). Not
    differentiable (PyTorch's gradient is zero)."""
    if not isinstance(input, registry.Tensor):
        raise TypeError(f"poisson(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f"\"poisson_cpu\" not implemented for "
                                  f"'{input.dtype.scalar_type}'")
    rate = input.detach().to(dt.float64)
    if input.numel() == 0:
        return input.detach().clone()
    if not bool((rate >= 0).all()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    total = rate.new_zeros(*rate.shape)
    left = rate
    while True:
        lam = left.clamp(max=_POISSON_ROUND)
        total = total + _poisson_round(lam, generator)
        left = left - lam
        if not bool((left > 0).any()):
            break
    return total.to(input.dtype)


def _poisson_round(lam, generator):
    """Poisson(lam) for rates up to _POISSON_ROUND: the first k whose CDF exceeds a
    uniform draw, the search checked on the host every 16 steps."""
    u = rand(*lam.shape, generator=generator, device=lam.device, dtype=dt.float64)
    k = lam.new_zeros(*lam.shape)
    p = (-lam).exp()
    cdf = p
    active = u > cdf
    limit = float(lam.max()) + 40 * float(lam.max()) ** 0.5 + 60
    step = 0
    while step < limit:
        for _ in range(16):
            k = F.where(active, k + 1, k)
            p = F.where(active, p * lam / k.clamp(min=1), p)
            cdf = cdf + F.where(active, p, 0.0)
            active = active & (u > cdf)
        step += 16
        if not bool(active.any()):
            break
    return k


@public(method=False)
def binomial(count, prob, generator=None):
    """torch.binomial: the number of successes in ``count`` Bernoulli(``prob``) trials
    (broadcast; counts below 0 give 0, probabilities are clamped to [0, 1]), as count
    trials drawn in blocks of uniform numbers (work grows with the largest count; PyTorch
    samples by rejection). Not differentiable."""
    if not count.dtype.is_floating_point:
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: "
                         f"{count.dtype.scalar_type}")
    if prob.dtype is not count.dtype:
        raise RuntimeError(f"Found dtype {prob.dtype.scalar_type} but expected "
                           f"{count.dtype.scalar_type}")
    n = count.detach()
    p = prob.detach().clamp(0, 1)
    shape = tuple(broadcast_shapes(n.shape, p.shape))
    n, p = n.expand(*shape), p.expand(*shape)
    trials = int(n.amax().item()) if n.numel() else 0
    total = n.new_zeros(shape)
    # trials per launch: up to about 4M uniforms at a time
    block = builtins.max(64, builtins.min(4096, (1 << 22) // builtins.max(n.numel(), 1)))
    for start in builtins.range(0, trials, block):
        k = builtins.min(block, trials - start)
        u = rand(k, *shape, generator=generator, device=n.device,
                 dtype=dt.float64 if n.dtype is dt.float64 else dt.float32)
        index = arange(start, start + k, device=n.device, dtype=n.dtype).reshape(
            k, *([1] * len(shape)))
        hits = (u < p) & (index < n)
        total = total + hits.to(n.dtype).sum(0)
    return total
