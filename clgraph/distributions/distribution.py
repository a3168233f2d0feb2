"""torch.distributions.Distribution: the base class (shapes, argument validation, sample
via rsample under no_grad, repr). Imports clgraph's public API and the constraints."""

from __future__ import annotations

import numbers
import warnings

import clgraph as cg

from . import constraints
from .utils import _size, broadcast_all, lazy_property

__all__ = ["Distribution"]


def _is_all_true(mask) -> bool:
    return bool(mask.all())


def _param_repr(value) -> str:
    """A parameter as PyTorch's repr shows it: the number for a 0-d tensor, the tensor for
    another one-element tensor, else its size."""
    if value.numel() != 1:
        return str(value.shape)
    if value.ndim == 0:
        return format(value.detach().item())
    return str(value)


class Distribution:
    """torch.distributions.Distribution: batch_shape, event_shape, validate_args (default
    on, PyTorch's messages; validation reads one flag per parameter back to the host)."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        if value not in [True, False]:
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None) -> None:
        self._batch_shape = _size(batch_shape)
        self._event_shape = _size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{self.__class__} does not define `arg_constraints`. Please set "
                              "`arg_constraints = {}` or initialize the distribution with "
                              "`validate_args=False` to turn off validation.", stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue  # cannot be checked
                if param not in self.__dict__ and isinstance(getattr(type(self), param),
                                                             lazy_property):
                    continue  # lazily computed from another parameter
                value = getattr(self, param)
                if not _is_all_true(constraint.check(value)):
                    raise ValueError(
                        f"Expected parameter {param} ({type(value).__name__} of shape "
                        f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                        f"constraint {constraint!r}, but found invalid values:\n{value}")
        super().__init__()

    def expand(self, batch_shape, _instance=None):
        raise NotImplementedError

    @property
    def batch_shape(self) -> cg.Size:
        return self._batch_shape

    @property
    def event_shape(self) -> cg.Size:
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        raise NotImplementedError

    @property
    def support(self):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError

    @property
    def mode(self):
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError

    @property
    def stddev(self):
        return self.variance.sqrt()

    def sample(self, sample_shape=()):
        """A sample of shape sample_shape + batch_shape + event_shape, without grad."""
        with cg.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError

    def sample_n(self, n: int):
        warnings.warn("`sample_n(n)` will be deprecated. Use `sample((n,))` instead.",
                      FutureWarning, stacklevel=2)
        return self.sample((n,))

    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def perplexity(self):
        return cg.exp(self.entropy())

    def _extended_shape(self, sample_shape=()) -> cg.Size:
        return _size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _validate_sample(self, value) -> None:
        """PyTorch's checks of a value to score: a tensor, event shape, broadcastable with
        batch_shape + event_shape, and in the support (one flag read back)."""
        if not isinstance(value, cg.Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = value.ndim - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{value.shape} vs {self._event_shape}.")
        actual_shape = value.shape
        expected_shape = self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual_shape), reversed(expected_shape)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{actual_shape} vs {_size(expected_shape)}.")
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{self.__class__} does not define `support` to enable sample "
                          "validation. Please initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=2)
            return
        if not _is_all_true(support.check(value)):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}")

    def _probs_or_logits(self, probs, logits, *others) -> tuple:
        """Sets whichever of ``probs`` and ``logits`` is given (PyTorch's error unless
        exactly one is), broadcast with ``others``; returns the batch shape (() for a lone
        Python number) and the broadcast ``others``."""
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        name, value = ("probs", probs) if probs is not None else ("logits", logits)
        param, *rest = broadcast_all(value, *others)
        setattr(self, name, param)
        self._param = param
        lone_number = isinstance(value, numbers.Number) and not others
        return (() if lone_number else param.shape), rest

    def _expand_probs_logits(self, new, batch_shape, param_shape=None):
        """The end of ``expand`` for a distribution given by ``probs`` or ``logits`` (or
        holding both): each one it holds, expanded to ``param_shape`` (the batch shape by
        default), then ``new``'s batch shape and validation flag."""
        shape = batch_shape if param_shape is None else param_shape
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(*shape))
                new._param = new.__dict__[name]
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{p}: {_param_repr(self.__dict__[p])}" for p in names)
        return f"{self.__class__.__name__}({args})"


class _BroadcastParams(Distribution):
    """A distribution whose parameters (``_params``, tensors or numbers) broadcast to its
    batch shape, with no event dimensions: the shared __init__ and expand."""

    _params: tuple = ()

    def _init_params(self, values, validate_args) -> None:
        tensors = broadcast_all(*values)
        for name, t in zip(self._params, tensors):
            setattr(self, name, t)
        numbers_only = all(not isinstance(v, cg.Tensor) for v in values)
        batch_shape = () if numbers_only else tensors[0].shape
        Distribution.__init__(self, batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self.__new__(type(self)) if _instance is None else _instance
        batch_shape = _size(batch_shape)
        for name in self._params:
            setattr(new, name, getattr(self, name).expand(*batch_shape))
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _sample_like(self, sample_shape, draw):
        """``draw(shape, dtype, device)`` for the extended shape of ``sample_shape``."""
        p = getattr(self, self._params[0])
        return draw(tuple(self._extended_shape(sample_shape)), p.dtype, p.device)
