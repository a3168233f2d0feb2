"""Optimizer: parameter groups with per-group options, per-parameter state and PyTorch's
state-dict layout. Subclasses write each update once, as ops (``fn(tensors, scalars,
**options)``) that ``_update`` runs as one fused kernel (ops/fused.py) writing a parameter
and its state in place; nothing here reads device data back to the host (the step count
is a Python float)."""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict, namedtuple
from collections.abc import Callable
from itertools import chain
from typing import Any

from .. import runtime
from ..autograd import enable_grad
from ..ops import fused
from ..tensor import Tensor

# The event an optimizer reports (runtime.notify, when runtime.observers is not empty): a
# step begins, its closure evaluated (an observer may make the state its parameters lack,
# ``_init_missing_state``).
OptimizerStep = namedtuple("OptimizerStep", "optimizer")


class _RequiredParameter:
    """Marks a hyper-parameter every param group must give (no default)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _typename(x) -> str:
    if isinstance(x, Tensor):
        return "torch." + x.dtype.tensor_type
    return type(x).__qualname__


def _number(value, name: str = "lr"):
    """A hyper-parameter as a Python number; a 1-element tensor is read once, here."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {name} must be 1-element")
        return value.item()
    return value


class Optimizer:
    """torch.optim.Optimizer: holds ``param_groups`` and per-parameter ``state``.

    Subclasses implement ``step``. The ``"step"`` entry of a parameter's state is a Python
    float (PyTorch keeps a 0-d CPU tensor), so a step never waits for the device."""

    # state entries kept as Python floats (PyTorch's 0-d CPU tensors): loaded as floats
    _host_state: tuple[str, ...] = ("step",)

    def __init__(self, params, defaults: dict[str, Any]):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {_typename(params)}")
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group (a dict with ``"params"`` and optional per-group options)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        tensors, names = [], []
        for p in params:
            if isinstance(p, tuple):  # (name, tensor) pairs from named_parameters()
                names.append(p[0])
                p = p[1]
            tensors.append(p)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some "
                                 "param names are missing")
            param_group["param_names"] = names
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(p))
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        if len(tensors) != len(set(tensors)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error; see "
                          "github.com/pytorch/pytorch/issues/40967 for more information",
                          stacklevel=3)
        seen: set = set()
        for group in self.param_groups:
            seen.update(group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if not seen.isdisjoint(tensors):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None, or zero in place)."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    if set_to_none and runtime.observers:
                        p.grad = None  # a trace learns that the call clears it
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    def step(self, closure: Callable | None = None):
        raise NotImplementedError

    def _evaluate(self, closure):
        """Run the closure (with grad enabled) before a step, like PyTorch's optimizers;
        then report the step (a compiled trace makes the missing state outside itself)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if runtime.observers:
            runtime.notify(OptimizerStep(self))
        return loss

    def _with_grad(self, group: dict):
        """(parameter, gradient, state) of each parameter of ``group`` that has a gradient,
        its state made before its first step."""
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            state = self.state[p]
            if not state:
                self._init_state(p, group)
            yield p, g, state

    def _init_missing_state(self) -> None:
        """Make the state of the parameters that have a gradient and no state yet."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and not self.state.get(p):
                    self._init_state(p, group)

    def _init_state(self, p: Tensor, group: dict) -> None:
        """Make ``p``'s state before its first step, when the first step's kernels are then
        those of every later step (only its host-side scalars differ). The default makes
        none: the step makes it, and a compiled step replays from its second call."""

    # --- state dict ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """PyTorch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params":
        [indices]}]}``. State tensors are returned by reference, not copied."""
        mapping: dict[int, int] = {}
        start = 0

        def pack(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            mapping.update({id(p): i for i, p in enumerate(group["params"], start)
                            if id(p) not in mapping})
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v
                 for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()``. State tensors are copied onto each parameter's device and
        (floating point) dtype, so the loaded optimizer never aliases the source's buffers;
        a tensor ``"step"`` (or other ``_host_state`` entry) becomes a Python float."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or (
                "param_groups" not in state_dict):
            raise ValueError("optimizer state dict must be a dict with keys 'state' and "
                             "'param_groups'")
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param, value, key=None):
            if isinstance(value, Tensor):
                if key in self._host_state:
                    return float(value.item())
                dtype = param.dtype if param.is_floating_point() else value.dtype
                return value.detach().to(device=param.device, dtype=dtype, copy=True)
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(cast(param, v, key) for v in value)
            return value

        state: defaultdict[Tensor, dict] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = cast(id_map[k], v)
            else:
                state[k] = v
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for name, default in self.defaults.items():  # older dicts may lack newer options
                saved.setdefault(name, default)
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups


def _update(name: str, fn, tensors: dict, hypers: dict, options: dict, refresh) -> None:
    """One parameter's whole update (parameter and state), ``fn`` written with ops, in one
    kernel (fused.update); ``refresh`` recomputes the scalars at a compiled replay's step.
    Tensors the kernel does not take (not contiguous, or of another dtype than the
    parameter ``tensors["p"]``) are staged in contiguous copies and the written ones copied
    back."""
    if fused.fusable(*tensors.values()):
        fused.update(name, fn, tensors, hypers, options, refresh)
        return
    p = tensors["p"]
    if not p.dtype.is_floating_point:
        raise RuntimeError(f"{name}: expected floating point parameters, but got {p.dtype}")
    for t in tensors.values():
        if t.device != p.device:
            raise RuntimeError(
                f"Expected all tensors to be on the same device, but found at least two "
                f"devices, {p.device} and {t.device}! (when checking argument for {name})")
        if t._shape != p._shape:
            raise RuntimeError(f"{name}: the gradient or state of a parameter of shape "
                               f"{list(p.shape)} has shape {list(t.shape)}")
    staged = {k: t if t._contig and t.dtype is p.dtype else t.to(p.dtype).contiguous()
              for k, t in tensors.items()}
    fused.update(name, fn, staged, hypers, options, refresh, now=True)
    for k, t in tensors.items():
        if staged[k] is not t and k in fused.written(fn, staged, hypers, options):
            t.copy_(staged[k])


def _check(ok: bool, what: str, value) -> None:
    """PyTorch's argument check: ``ValueError("Invalid {what}: {value}")``."""
    if not ok:
        raise ValueError(f"Invalid {what}: {value}")


def _step_lr_refresh(group, state):
    """A compiled replay's refresh for updates whose only changing scalar is -lr
    (``neglr``): count the step, give the group's current learning rate."""
    def again(advance=True):
        if advance:
            state["step"] += 1
        return {"neglr": -group["lr"]}

    return again


def _check_adam_args(lr, betas, eps, weight_decay) -> None:
    """The argument checks Adam's family shares, PyTorch's messages."""
    _check(lr >= 0.0, "learning rate", lr)
    _check(eps >= 0.0, "epsilon value", eps)
    _check(0.0 <= betas[0] < 1.0, "beta parameter at index 0", betas[0])
    _check(0.0 <= betas[1] < 1.0, "beta parameter at index 1", betas[1])
    _check(weight_decay >= 0.0, "weight_decay value", weight_decay)


def _check_flags(differentiable: bool) -> None:
    if differentiable:
        raise NotImplementedError("differentiable=True is not supported by clgraph optimizers")


__all__ = ["Optimizer", "required"]
