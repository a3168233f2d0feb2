"""Fused in-place elementwise updates: several scalar expressions over same-shaped
contiguous tensors and scalars, writing several of those tensors in one kernel. The
optimizers use it so that one parameter's whole update (parameter and moments) is one
launch. It builds an ordinary elementwise group, so the emitter and kernel cache are the
ones every eager op uses."""

from __future__ import annotations

from .. import codegen
from .. import dtypes as dt
from ..codegen import EwGroup, EwOp
from . import registry

_groups: dict = {}


def fusable(*tensors) -> bool:
    """Same shape, dtype and device, contiguous, floating point: what update() accepts."""
    t0 = tensors[0]
    return all(
        t._contig and t._shape == t0._shape and t.dtype is t0.dtype and t.device is t0.device
        and t.dtype.is_floating_point for t in tensors
    )


def update(name: str, tensors: dict, scalars: dict, steps: tuple, writes: dict,
           refresh=None) -> None:
    """Run ``steps`` (name, expression over earlier names) elementwise in one kernel and
    store the values named in ``writes`` (value name -> tensor name) into those tensors.
    Expressions use ``{name}`` for tensors, scalars and earlier steps, and ``{T}`` for the
    compute type. ``refresh(advance)`` (optional) returns the scalars anew: a compiled
    replay calls it each step (an optimizer's step count and learning rate live on the
    host); with advance=False it only peeks."""
    tnames, snames = tuple(tensors), tuple(scalars)
    t0 = tensors[tnames[0]]
    d = t0.dtype
    info = t0.device.info
    key = (name, tnames, snames, steps, tuple(writes.items()), d, info.index)
    cached = _groups.get(key)
    if cached is None:
        names = list(tnames) + list(snames)
        inputs = tuple((d.name, "c") for _ in tnames) + tuple((d.name, "s") for _ in snames)
        ops = []
        for sname, expr in steps:
            used = tuple(n for n in names if "{" + n + "}" in expr)
            ops.append(EwOp(sname, expr, tuple(names.index(n) for n in used),
                            (d.name,) * len(used), d.name, used, True))
            names.append(sname)
        outputs = tuple((names.index(v), d.name, "c") for v in writes)
        group = EwGroup(inputs, tuple(ops), outputs, 0, info.vector_width(d.cl), in_place=True)
        # where each scalar sits among the kernel's arguments, for the replay's refresh
        params = [p.name for p in codegen.signature(group)]
        at = {s: params.index(f"s{len(tnames) + i}") for i, s in enumerate(snames)}
        cached = _groups[key] = (codegen.elementwise_kernel(info, group), at)
    kern, at = cached
    n = t0.numel()
    if n == 0:
        return
    args = [n]
    for t in tnames:
        args += (tensors[t]._storage.buf, tensors[t]._offset)
    args += [scalars[s] for s in snames]
    for target in writes.values():
        t = tensors[target]
        args += (t._storage.buf, t._offset)
        t._storage.version += 1
    remap = None
    if refresh is not None:
        def remap(advance=True):
            return {at[k]: v for k, v in refresh(advance).items() if k in at}

    registry.launch(info, kern.kernel, f"{name}_update", (kern.global_size(n),), (kern.local,),
                    args, remap)


def grad_prologue(maximize: bool, weight_decay: float, scalars: dict) -> tuple[list, str]:
    """Steps that turn the gradient {g} into the one an optimizer uses: negated for
    ``maximize``, plus weight_decay * {p} (L2). Returns (steps, reference to the result)."""
    g, steps = "{g}", []
    if maximize:
        steps.append(("gneg", "(-{g})"))
        g = "{gneg}"
    if weight_decay != 0:
        scalars["wd"] = weight_decay
        steps.append(("gwd", f"({g} + {{wd}} * {{p}})"))
        g = "{gwd}"
    return steps, g


_ = dt
