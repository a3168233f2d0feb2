"""Mixed precision: ``cg.autocast`` and ``cg.amp.GradScaler``.

autocast is a layer of the dispatch stack (installed at import, above autograd): inside an
autocast region, each op's row says what happens to its floating-point operands
(``OpDef.autocast``): the products (matmul: linear, bmm, and the convolutions and attention
built on it) cast them to the low dtype; the ops that need range or precision (softmax,
log_softmax, exp, log, sums, means, norms, the normalizations' statistics and the fused
cross entropy, so losses too) to float32; everything else runs in the dtypes it is given.
The casts are ordinary recorded ops, so gradients flow back to float32 parameters in
float32. The region's state is part of a compiled call's signature.

GradScaler scales the loss so that float16 gradients do not underflow, unscales them in
place on the device, and skips a step whose gradients are not finite: one host read per
step (the found-inf flag), then grows or backs off the scale on the host."""

from __future__ import annotations

import functools
import threading

from . import dtypes as dt
from .autograd import no_grad
from .ops import registry
from .tensor import Tensor

_local = threading.local()  # .dtype: the innermost region's low dtype (None: none)
_open = 0  # regions open in all threads
_DEVICE_TYPES = ("cl", "gpu", "cuda", "cpu")


def state_key():
    """What a compiled call's signature takes from autocast: the active low dtype."""
    return getattr(_local, "dtype", None)


def is_autocast_enabled(device_type: str | None = None) -> bool:
    return getattr(_local, "dtype", None) is not None


def get_autocast_dtype(device_type: str = "cl"):
    d = getattr(_local, "dtype", None)
    return d if d is not None else _default_dtype(device_type)


def _default_dtype(device_type: str):
    """PyTorch's defaults: bfloat16 for "cpu", float16 for GPU device types."""
    return dt.bfloat16 if device_type == "cpu" else dt.float16


class _Autocast(registry.Interpreter):
    """The autocast layer: casts operands of the listed ops while a region is active."""

    def process(self, op, args, attrs, out):
        if not _open or out is not None:  # no region open in any thread: one test per op
            return self.inner.process(op, args, attrs, out)
        low = getattr(_local, "dtype", None)
        if low is not None:
            policy = op.autocast  # declared on the op's row
            if policy is not None:
                target = low if policy == "low" else dt.float32
                args = tuple(_cast(a, target, low) for a in args)
        return self.inner.process(op, args, attrs, out)


def _cast(a, target, low):
    if not isinstance(a, Tensor) or not a.dtype.is_floating_point or a.dtype is target:
        return a
    if target is low and a.dtype is dt.float64:  # float64 stays, as in PyTorch
        return a
    return a.to(target)


registry.install(_Autocast())


class autocast:
    """``with cg.autocast("cl"):`` or ``@cg.autocast("cl", dtype=cg.bfloat16)``: run the
    block's products in ``dtype`` (float16 by default, bfloat16 for device_type "cpu") and
    its reductions, softmaxes and losses in float32. ``enabled=False`` turns a region off
    inside another."""

    def __init__(self, device_type: str, dtype=None, enabled: bool = True,
                 cache_enabled: bool | None = None) -> None:
        if device_type not in _DEVICE_TYPES:
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        d = dtype if dtype is not None else _default_dtype(device_type)
        if d not in dt.NARROW_FLOATS:
            raise RuntimeError(f"In autocast, but the target dtype is not supported. The "
                               f"supported dtypes are torch.bfloat16 and torch.float16; got {d}")
        self.device_type, self.fast_dtype, self._enabled = device_type, d, bool(enabled)
        self._prev = []

    def __enter__(self):
        global _open
        self._prev.append(getattr(_local, "dtype", None))
        _local.dtype = self.fast_dtype if self._enabled else None
        _open += 1
        return self

    def __exit__(self, *exc):
        global _open
        _local.dtype = self._prev.pop()
        _open -= 1
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)

        return wrapped


class GradScaler:
    """torch.amp.GradScaler: ``scale(loss).backward(); scaler.step(opt); scaler.update()``."""

    def __init__(self, device: str = "cl", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        if growth_factor <= 1.0:
            raise ValueError("The growth factor must be > 1.0.")
        if backoff_factor >= 1.0:
            raise ValueError("The backoff factor must be < 1.0.")
        self._enabled = enabled
        self._scale = float(init_scale)
        self._growth_factor, self._backoff_factor = float(growth_factor), float(backoff_factor)
        self._growth_interval, self._growth_tracker = int(growth_interval), 0
        self._per_optimizer: dict = {}  # id(optimizer) -> {"stage", "found_inf"}

    def is_enabled(self) -> bool:
        return self._enabled

    def get_scale(self) -> float:
        return self._scale if self._enabled else 1.0

    def scale(self, outputs):
        """``outputs`` (a tensor or nested lists/tuples of tensors) times the scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        if isinstance(outputs, (list, tuple)):
            return type(outputs)(self.scale(o) for o in outputs)
        raise ValueError("outputs must be a Tensor or an iterable of Tensors")

    @no_grad()
    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale in place and note (on the device)
        whether any is not finite."""
        if not self._enabled:
            return
        st = self._per_optimizer.setdefault(id(optimizer), {"stage": "ready"})
        if st["stage"] == "unscaled":
            raise RuntimeError("unscale_() has already been called on this optimizer since "
                               "the last update().")
        if st["stage"] == "stepped":
            raise RuntimeError("unscale_() is being called after step().")
        inv = 1.0 / self._scale
        bad = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(inv)
                    bad.append(p.grad.isfinite().logical_not().any())
        st["found_inf"] = registry.functions.stack(bad).any() if bad else None
        st["stage"] = "unscaled"

    def step(self, optimizer, *args, **kwargs):
        """Unscale (unless done), then ``optimizer.step()`` unless a gradient was not
        finite. One host read: the found-inf flag."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        st = self._per_optimizer.setdefault(id(optimizer), {"stage": "ready"})
        if st["stage"] == "stepped":
            raise RuntimeError("step() has already been called since the last update().")
        if st["stage"] == "ready":
            self.unscale_(optimizer)
        found = st.get("found_inf")
        st["inf"] = bool(found) if found is not None else False
        st["stage"] = "stepped"
        if st["inf"]:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None) -> None:
        """Back off the scale after a skipped step, grow it after ``growth_interval``
        good ones in a row (or set ``new_scale``)."""
        if not self._enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale.item() if isinstance(new_scale, Tensor)
                                else new_scale)
        else:
            if not self._per_optimizer:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(st.get("inf") for st in self._per_optimizer.values()):
                self._scale *= self._backoff_factor
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    self._scale *= self._growth_factor
                    self._growth_tracker = 0
        self._per_optimizer = {}

    def state_dict(self) -> dict:
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state: dict) -> None:
        if not state:
            raise RuntimeError("The source state dict is empty, possibly because it was "
                               "saved from a disabled instance of GradScaler.")
        self._scale = float(state["scale"])
        self._growth_factor = float(state["growth_factor"])
        self._backoff_factor = float(state["backoff_factor"])
        self._growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["_growth_tracker"])


def is_autocast_available(device_type: str) -> bool:
    """torch.amp.is_autocast_available: whether autocast accepts ``device_type`` ("cl",
    "gpu", "cuda" or "cpu")."""
    return device_type in _DEVICE_TYPES


def _cast_floats(value, dtype):
    """``value`` with its floating-point tensors (float64 excepted) cast to ``dtype``, in
    nested lists, tuples and dicts."""
    if isinstance(value, Tensor):
        eligible = value.dtype.is_floating_point and value.dtype is not dt.float64
        return value.to(dtype) if eligible else value
    if isinstance(value, dict):
        return {k: _cast_floats(v, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_floats(v, dtype) for v in value)
    return value


def _check_device_type(device_type) -> None:
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """torch.amp.custom_fwd: decorate an autograd.Function's ``forward``. It records the
    autocast state for ``custom_bwd``; with ``cast_inputs``, inside an autocast region its
    floating-point tensor arguments are cast to that dtype and it runs with autocast off."""
    _check_device_type(device_type)
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        ctx = args[0]
        ctx._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            ctx._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        ctx._fwd_used_autocast = False
        if not is_autocast_enabled(device_type):
            return fwd(*args, **kwargs)
        with autocast(device_type=device_type, enabled=False):
            return fwd(*_cast_floats(args, cast_inputs), **_cast_floats(kwargs, cast_inputs))

    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """torch.amp.custom_bwd: decorate an autograd.Function's ``backward`` to run in the
    autocast state its ``custom_fwd`` forward ran in."""
    _check_device_type(device_type)
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        ctx = args[0]
        with autocast(device_type=device_type, enabled=ctx._fwd_used_autocast,
                      dtype=ctx._dtype):
            return bwd(*args, **kwargs)

    return decorate_bwd


__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd", "get_autocast_dtype",
           "is_autocast_available", "is_autocast_enabled"]
