"""The op registry: every op is one OpDef row (numpy reference, dtype/shape rule, OpenCL
expression or kernel, VJP) and apply() is the single dispatch point. Families (elementwise,
reduce, movement, linalg, index) supply ``run``; a recorder installed by a higher layer
(tracing) may intercept apply()."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

REGISTRY: dict[str, "OpDef"] = {}
Tensor: Any = None  # installed by clgraph.tensor (ops must not import it at module load)
_recorder: Callable | None = None


@dataclass(frozen=True, eq=False)
class OpDef:
    """One op. ``run(args, attrs, out)`` executes it eagerly and returns Tensor(s)."""

    name: str
    family: str
    ref: Callable | None
    run: Callable
    vjp: Callable | None = None
    expr: Any = None  # elementwise: template str, or callable(compute dtype) -> str
    rule: Callable | None = None  # elementwise: (common dtype, arg dtypes, attrs) -> (casts, out)
    argnames: tuple[str, ...] = ()
    vec: bool = True  # safe on explicit OpenCL vector types
    promote: slice = field(default_factory=lambda: slice(None))
    differentiable: bool = True
    extra: dict = field(default_factory=dict)

    def __repr__(self):
        return f"<op {self.name}>"


def register(op: OpDef) -> OpDef:
    if op.name in REGISTRY:
        raise ValueError(f"op {op.name} registered twice")
    REGISTRY[op.name] = op
    return op


def apply(op: OpDef, *args, out=None, **attrs):
    """Run ``op`` on tensors/scalars ``args``: eagerly, or into the active recorder."""
    if _recorder is not None:
        return _recorder(op, args, attrs, out)
    return op.run(op, args, attrs, out)


def default_device():
    from ..device import default_device as _d

    return _d()


from ..runtime import launch  # noqa: E402  (runtime is a lower layer; placed here for clarity)
