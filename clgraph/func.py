"""torch.func: grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian, vmap,
functional_call and stack_module_state, built on clgraph's autograd.

clgraph has no transform levels: each transform differentiates with
``autograd.grad(create_graph=True)`` with respect to fresh aliases of its inputs, so
transforms nest (``grad(grad(f))``, ``jacfwd(jacrev(f))``, ``vmap(grad(f))``). A result
keeps its graph only when it depends on tensors from outside the transform (an outer
transform's inputs, a parameter that requires grad), as PyTorch's unwrapped results do.
Where PyTorch differs:

- ``jvp`` uses the double-backward trick (two reverse passes), and ``jacfwd`` builds the
  Jacobian row by row in reverse mode, as ``jacrev`` does: one backward pass per output
  element. Results match; forward mode's speed for tall Jacobians does not.
- ``vmap`` calls the function once per batch element and stacks the results: B calls
  instead of one batched call. ``randomness="error"`` detects a draw from the default
  generator; ``"same"`` replays its state for each element; ``.item()`` and other host
  reads inside the function work instead of raising.

Imports autograd, creation and the tensor layer; a module for functional_call is only
called, never imported."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import autograd
from .autograd import enable_grad
from .creation import eye, zeros, zeros_like
from .generator import default_generator
from .ops.registry import functions as _f
from .tensor import Tensor
from .utils._pytree import broadcast_prefix, tree_flatten, tree_unflatten

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
           "stack_module_state", "vjp", "vmap"]


# --- levels without levels: fresh aliases in, results unwrapped out -------------------------


def _check_tensor(x) -> None:
    if not isinstance(x, Tensor):
        raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")


def _wrap(t: Tensor) -> Tensor:
    """A tensor of this transform's own to differentiate with respect to: an alias still
    attached to the outer graph when ``t`` is part of one, else a fresh leaf."""
    if not t.dtype.is_floating_point:
        raise RuntimeError("only Tensors of floating point dtype can require gradients")
    if t.requires_grad and autograd.is_grad_enabled():
        return t.view_as(t)
    return t.detach().requires_grad_(True)


def _reaches_outside(t: Tensor, own: set) -> bool:
    """Whether ``t``'s graph reaches a leaf that is not one of the transform's own."""
    if not t.requires_grad:
        return False
    if t.grad_fn is None:
        return id(t) not in own
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        var = getattr(node, "variable", None)
        if var is not None:
            if id(var) not in own:
                return True
            continue
        stack.extend(n for n, _ in getattr(node, "next_functions", ()))
    return False


def _unwrap(x, own: set, outer_grad: bool):
    """A result handed out of the transform: detached unless it depends on outer tensors."""
    if not isinstance(x, Tensor):
        return x
    if outer_grad and _reaches_outside(x, own):
        return x
    return x.detach()


def _own_ids(tensors) -> set:
    return {id(t) for t in tensors if t.grad_fn is None}


def _grads(outputs, inputs, grad_outputs) -> list:
    """d(outputs)/d(inputs) contracted with grad_outputs, as a differentiable graph; zeros
    for an input that does not reach the outputs."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [zeros_like(x) for x in inputs]
    gs = autograd.grad([o for o, _ in pairs], inputs, [g for _, g in pairs], retain_graph=True,
                       create_graph=True, allow_unused=True)
    return [zeros_like(x) if g is None else g for g, x in zip(gs, inputs)]


def _check_argnums(argnums, nargs: int) -> tuple[int, ...]:
    def one(a) -> int:
        if isinstance(a, bool) or not isinstance(a, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(a)}")
        if not -nargs <= a < nargs:
            raise RuntimeError(f"Got argnum={a}, but only {nargs} positional inputs")
        return a % nargs

    if isinstance(argnums, tuple):
        if not argnums:
            raise RuntimeError("argnums must be non-empty")
        picked = tuple(one(a) for a in argnums)
        if len(set(picked)) != len(picked):
            raise RuntimeError(f"argnums elements must be unique, got {argnums}")
        return picked
    return (one(argnums),)


def _wrap_args(args: tuple, argnums) -> tuple[tuple, list]:
    """``args`` with the leaves of the ones ``argnums`` picks replaced by wrapped tensors,
    and per picked argument (its wrapped leaves, its tree spec)."""
    picked = _check_argnums(argnums, len(args)) if argnums is not None else range(len(args))
    args = list(args)
    wrapped_leaves = []
    for i in picked:
        leaves, spec = tree_flatten(args[i])
        for x in leaves:
            _check_tensor(x)
        w = [_wrap(x) for x in leaves]
        wrapped_leaves.append((w, spec))
        args[i] = tree_unflatten(w, spec)
    return tuple(args), wrapped_leaves


def _regroup(flat_grads: list, wrapped_leaves, argnums):
    """Per-leaf results back into the structure of the picked arguments."""
    out, k = [], 0
    for w, spec in wrapped_leaves:
        out.append(tree_unflatten(flat_grads[k:k + len(w)], spec))
        k += len(w)
    return tuple(out) if isinstance(argnums, tuple) else out[0]


# --- grad ----------------------------------------------------------------------------------


def grad_and_value(func: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """torch.func.grad_and_value: a function returning ``(gradient, value)`` (``((gradient,
    value), aux)`` with ``has_aux``) of ``func``'s scalar result with respect to the
    arguments ``argnums`` picks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        outer_grad = autograd.is_grad_enabled()
        with enable_grad():
            args, wrapped = _wrap_args(args, argnums)
            flat = [x for w, _ in wrapped for x in w]
            out = func(*args, **kwargs)
            aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError("grad_and_value(f)(*args): output of function f should "
                                       "be a tuple: (output, aux) if has_aux is True")
                out, aux = out
            if not isinstance(out, Tensor):
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"Tensor, got {type(out)}")
            if out.dim() != 0:
                raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                                   f"scalar Tensor, got tensor with {out.dim()} dims. Maybe you "
                                   f"wanted to use the vjp or jacrev APIs instead?")
            gs = _grads([out], flat, [None])
        own = _own_ids(flat)
        gs = [_unwrap(g, own, outer_grad) for g in gs]
        g = _regroup(gs, wrapped, argnums)
        value = _unwrap(out, own, outer_grad)
        if has_aux:
            leaves, spec = tree_flatten(aux)
            aux = tree_unflatten([_unwrap(a, own, outer_grad) for a in leaves], spec)
            return g, (value, aux)
        return g, value

    return wrapper


def grad(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """torch.func.grad: a function returning the gradient of ``func``'s scalar result with
    respect to the arguments ``argnums`` picks (``(gradient, aux)`` with ``has_aux``)."""
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, value = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


# --- vjp and jvp ---------------------------------------------------------------------------


def _output_leaves(out, what: str, floats_only: bool = True) -> tuple[list, Any]:
    """The tensors of ``func``'s output tree and its spec; ``what`` starts PyTorch's message
    for a leaf that is not a tensor."""
    leaves, spec = tree_flatten(out)
    for o in leaves:
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{what} to return only tensors, got unsupported type "
                               f"{type(o)}")
        if floats_only and not o.dtype.is_floating_point:
            raise RuntimeError(f"vjp(f, ...): All outputs of f must be floating-point or "
                               f"complex Tensors, got Tensor with dtype {o.dtype}")
    return leaves, spec


def _split_aux(out, has_aux: bool, what: str):
    """(output, aux) of a function called with has_aux; ``what`` names the transform in
    PyTorch's message ("vjp(f, *primals)", "jvp(f, primals, tangents)")."""
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{what}: output of function f should be a tuple: (output, aux) "
                           f"if has_aux is True")
    return out


def vjp(func: Callable, *primals, has_aux: bool = False):
    """torch.func.vjp: ``(output, vjp_fn)`` (and ``aux``): ``vjp_fn(cotangents)`` returns
    the vector-Jacobian products with respect to each primal, as a tuple."""
    outer_grad = autograd.is_grad_enabled()
    with enable_grad():
        args, wrapped = _wrap_args(primals, None)
        flat = [x for w, _ in wrapped for x in w]
        out, aux = _split_aux(func(*args), has_aux, "vjp(f, *primals)")
        outs, out_spec = _output_leaves(out, "vjp(f, *primals): expected f(*primals)")
    own = _own_ids(flat)

    def vjp_fn(cotangents, *, retain_graph=True, create_graph=None):
        ct, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as "
                               f"pytree structure of outputs to the function. cotangents: "
                               f"{ct_spec!r}, primal output: {out_spec!r}")
        for i, (c, o) in enumerate(zip(ct, outs)):
            if not isinstance(c, Tensor):
                raise TypeError(f"gradients can be either Tensors or None, but got "
                                f"{type(c).__name__}")
            if c.shape != o.shape:
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{c.shape} and output[{i}] has a shape of {o.shape}.")
        grad_on = autograd.is_grad_enabled()
        with enable_grad():
            gs = _grads(outs, flat, ct)
        gs = [_unwrap(g, own, grad_on) for g in gs]
        return _regroup(gs, wrapped, tuple(range(len(wrapped))))

    result = tree_unflatten([_unwrap(o, own, outer_grad) for o in outs], out_spec)
    if has_aux:
        leaves, spec = tree_flatten(aux)
        return result, vjp_fn, tree_unflatten([_unwrap(a, own, outer_grad) for a in leaves],
                                               spec)
    return result, vjp_fn


def jvp(func: Callable, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """torch.func.jvp: ``(func(*primals), J @ tangents)`` (and ``aux``), by the
    double-backward trick: the VJP is linear in its cotangent u, so differentiating it
    with respect to u in the direction of ``tangents`` gives the JVP."""
    if not isinstance(primals, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals to be a tuple. E.g. "
                           "it should be valid to call f(*primals).")
    p_leaves, p_spec = tree_flatten(primals)
    t_leaves, t_spec = tree_flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to have "
                           f"the same python structure. For example, if primals is a tuple of "
                           f"3 tensors, tangents also must be. Got primals with structure "
                           f"{p_spec!r} and tangents with structure {t_spec!r}")
    for p in p_leaves:
        if not isinstance(p, Tensor):
            raise RuntimeError(f"jvp(f, primals, tangents): Expected primals to only contain "
                               f"Tensors, got {type(p)}")
    for p, t in zip(p_leaves, t_leaves):
        if not isinstance(t, Tensor):
            raise RuntimeError(f"jvp(f, primals, tangents): Expected tangents to only contain "
                               f"Tensors, got {type(t)}")
        if t.shape != p.shape:
            raise RuntimeError(f"Trying to set a forward gradient that has a different size "
                               f"than that of the original Tensor, this is not supported. "
                               f"Tensor is of size {list(p.shape)} while the given forward "
                               f"gradient is of size {list(t.shape)}.")
    outer_grad = autograd.is_grad_enabled()
    with enable_grad():
        flat = [_wrap(p) for p in p_leaves]
        out, aux = _split_aux(func(*tree_unflatten(flat, p_spec)), has_aux,
                              "jvp(f, primals, tangents)")
        outs, out_spec = _output_leaves(out, "jvp(f, primals, tangents): expected f(*primals)",
                                        floats_only=False)
        diff = [o for o in outs if o.dtype.is_floating_point]
        us = [zeros_like(o).requires_grad_(True) for o in diff]
        gs = _grads(diff, flat, us)
        live = [(g, t) for g, t in zip(gs, t_leaves) if g.requires_grad]
        if live:
            found = autograd.grad([g for g, _ in live], us, [t for _, t in live],
                                  retain_graph=True, create_graph=True, allow_unused=True)
        else:
            found = [None] * len(us)
        by_output = {id(o): d for o, d in zip(diff, found)}
        tans = []
        for o in outs:
            d = by_output.get(id(o))
            if d is None:
                if strict:
                    raise RuntimeError("jvp(f, primals, tangents, strict=True): The output of "
                                       "f is independent of the inputs. This is not allowed "
                                       "with strict=True.")
                d = zeros_like(o)
            tans.append(d)
    own = _own_ids(flat) | _own_ids(us)
    primal_out = tree_unflatten([_unwrap(o, own, outer_grad) for o in outs], out_spec)
    tangent_out = tree_unflatten([_unwrap(d, own, outer_grad) for d in tans], out_spec)
    if has_aux:
        leaves, spec = tree_flatten(aux)
        return primal_out, tangent_out, tree_unflatten(
            [_unwrap(a, own, outer_grad) for a in leaves], spec)
    return primal_out, tangent_out


# --- Jacobians -----------------------------------------------------------------------------


def _jacobian(func, argnums, has_aux, aux_what: str) -> Callable:
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        outer_grad = autograd.is_grad_enabled()
        with enable_grad():
            args, wrapped = _wrap_args(args, argnums)
            flat = [x for w, _ in wrapped for x in w]
            out, aux = _split_aux(func(*args, **kwargs), has_aux, aux_what)
            outs, out_spec = _output_leaves(out, "vjp(f, *primals): expected f(*primals)")
            per_output = []
            for o in outs:
                rows = [[] for _ in flat]
                n = o.numel()
                if o.requires_grad and n:
                    basis = eye(n, dtype=o.dtype, device=o.device)
                    for k in range(n):
                        gs = _grads([o], flat, [basis[k].reshape(o.shape)])
                        for r, g in zip(rows, gs):
                            r.append(g)
                jacs = []
                for r, x in zip(rows, flat):
                    shape = tuple(o.shape) + tuple(x.shape)
                    if r:
                        jacs.append(_f.stack(r).reshape(shape))
                    else:
                        jacs.append(zeros(shape, dtype=x.dtype, device=x.device))
                per_output.append(jacs)
        own = _own_ids(flat)
        result = []
        for jacs in per_output:
            jacs = [_unwrap(j, own, outer_grad) for j in jacs]
            result.append(_regroup(jacs, wrapped, argnums))
        jac = tree_unflatten(result, out_spec)
        if has_aux:
            leaves, spec = tree_flatten(aux)
            return jac, tree_unflatten([_unwrap(a, own, outer_grad) for a in leaves], spec)
        return jac

    return wrapper


def jacrev(func: Callable, argnums: int | tuple[int, ...] = 0, *, has_aux: bool = False,
           chunk_size: int | None = None, _preallocate_and_copy: bool = False) -> Callable:
    """torch.func.jacrev: the Jacobian of ``func`` with respect to the arguments ``argnums``
    picks, one reverse pass per output element; each output's Jacobian has shape
    ``output.shape + input.shape``. ``chunk_size`` is accepted and changes nothing."""
    if chunk_size is not None and not chunk_size > 0:
        raise ValueError("jacrev: `chunk_size` should be greater than 0.")
    return _jacobian(func, argnums, has_aux, "vjp(f, *primals)")


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """torch.func.jacfwd: the Jacobian of ``func``, as jacrev's (computed in reverse mode)."""
    _check_randomness(randomness)
    return _jacobian(func, argnums, has_aux, "jvp(f, primals, tangents)")


def hessian(func: Callable, argnums: int | tuple[int, ...] = 0) -> Callable:
    """torch.func.hessian: ``jacfwd(jacrev(func, argnums), argnums)``."""
    return jacfwd(jacrev(func, argnums), argnums)


# --- vmap ----------------------------------------------------------------------------------


def _check_randomness(randomness) -> None:
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")


def _check_chunk(chunk_size, name: str) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"{name}: chunk_size should be None or greater than 0. "
                         f"(got {chunk_size})")


def _fname(func) -> str:
    return getattr(func, "__name__", repr(func))


def _is_dim(d) -> bool:
    return d is None or (isinstance(d, int) and not isinstance(d, bool))


def vmap(func: Callable, in_dims: int | tuple = 0, out_dims: int | tuple = 0,
         randomness: str = "error", *, chunk_size: int | None = None) -> Callable:
    """torch.vmap: ``func`` mapped over dimension ``in_dims`` of its inputs, the results
    stacked at ``out_dims``. Runs ``func`` once per batch element (see the module
    docstring); keyword arguments are passed unbatched."""
    _check_randomness(randomness)
    _check_chunk(chunk_size, "vmap")
    name = _fname(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if not args:
            raise ValueError(f"vmap({name})(<inputs>): got no inputs. Maybe you forgot to add "
                             f"inputs, or you are trying to vmap over a function with no "
                             f"inputs. The latter is unsupported.")
        if not (_is_dim(in_dims) or isinstance(in_dims, tuple)):
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): expected "
                             f"`in_dims` to be int or a (potentially nested) tuple matching "
                             f"the structure of inputs, got: {type(in_dims)}.")
        leaves, spec = tree_flatten(args)
        dims = broadcast_prefix(in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(
            args), args, _is_dim)
        if dims is None:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not "
                             f"compatible with the structure of `inputs`. in_dims has "
                             f"structure {tree_flatten(in_dims)[1]!r} but inputs has "
                             f"structure {spec!r}.")
        sizes = []
        for x, d in zip(leaves, dims):
            if d is None:
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got "
                                 f"in_dim={d} for an input but the input is of type "
                                 f"{type(x)}. We cannot vmap over non-Tensor arguments, please "
                                 f"use None as the respective in_dim")
            if not -x.dim() <= d < x.dim():
                raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got "
                                 f"in_dim={d} for some input, but that input is a Tensor of "
                                 f"dimensionality {x.dim()} so expected in_dim to satisfy "
                                 f"-{x.dim()} <= in_dim < {x.dim()}.")
            sizes.append(x.shape[d])
        if not sizes:
            raise ValueError("vmap: Expected at least one Tensor to vmap over")
        if len(set(sizes)) > 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                             f"dimension, got sizes {sizes} for the mapped dimension")
        batch = sizes[0]
        if batch == 0:
            return _empty_batch(func, leaves, dims, spec, kwargs, out_dims, name)
        gen = default_generator
        start = gen.clone_state()
        results = []
        for b in range(batch):
            if randomness == "same":
                gen._seed, gen._counter = start._seed, start._counter
            before = gen._counter
            sliced = [x if d is None else x.select(d, b) for x, d in zip(leaves, dims)]
            out = func(*tree_unflatten(sliced, spec), **kwargs)
            if randomness == "error" and gen._counter != before:
                raise RuntimeError("vmap: called random operation while in randomness error "
                                   "mode. Please either use the 'same' or 'different' "
                                   "randomness flags on vmap or perform the randomness "
                                   "operation out of vmap")
            results.append(out)
        return _stack_outputs(results, out_dims, name, batch)

    return wrapper


def _empty_batch(func, leaves, dims, spec, kwargs, out_dims, name: str):
    """A batch of size 0: ``func`` runs once on zeros shaped like one element (the
    generator's state restored after it), and each result gets a 0-size batch dim."""
    one = [x if d is None else zeros(x.shape[:d % x.dim()] + x.shape[d % x.dim() + 1:],
                                     dtype=x.dtype, device=x.device)
           for x, d in zip(leaves, dims)]
    saved = default_generator.clone_state()
    try:
        out = func(*tree_unflatten(one, spec), **kwargs)
    finally:
        default_generator._seed, default_generator._counter = saved._seed, saved._counter
    stacked = _stack_outputs([out], out_dims, name, 1)
    flat, out_spec = tree_flatten(stacked)
    odims = broadcast_prefix(out_dims, out, _is_dim)
    return tree_unflatten([x if d is None else x.narrow(d, 0, 0)
                           for x, d in zip(flat, odims)], out_spec)


def _stack_outputs(results: list, out_dims, name: str, batch: int):
    leaves0, spec = tree_flatten(results[0])
    odims = broadcast_prefix(out_dims, results[0], _is_dim)
    if odims is None:
        raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not "
                         f"compatible with the structure of `outputs`. out_dims has structure "
                         f"{tree_flatten(out_dims)[1]!r} but outputs has structure {spec!r}.")
    columns = [tree_flatten(r)[0] for r in results]
    stacked = []
    for i, (x0, d) in enumerate(zip(leaves0, odims)):
        if d is None:
            stacked.append(x0)
            continue
        if not isinstance(x0, Tensor):
            raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                             f"{type(x0)}. Did you mean to set out_dims= to None for output?")
        nd = x0.dim() + 1
        if not -nd <= d < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, "
                             f"{nd - 1}], but got {d})")
        stacked.append(_f.stack([c[i] for c in columns], dim=d))
    return tree_unflatten(stacked, spec)


# --- modules as functions ------------------------------------------------------------------


def _tied_names(module) -> dict:
    """Each parameter or buffer name -> every name that holds the same tensor."""
    by_id: dict = {}
    for getter in (module.named_parameters, module.named_buffers):
        for n, t in getter(remove_duplicate=False):
            by_id.setdefault(id(t), []).append(n)
    return {n: names for names in by_id.values() for n in names}


def _owner(module, name: str):
    *path, leaf = name.split(".")
    for p in path:
        module = getattr(module, p)
    return module, leaf


def functional_call(module, parameter_and_buffer_dicts, args=None, kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """torch.func.functional_call: call ``module`` with its parameters and buffers replaced
    by the tensors in ``parameter_and_buffer_dicts`` (a dict, or a tuple or list of dicts
    with disjoint keys), restored afterwards."""
    if isinstance(parameter_and_buffer_dicts, dict):
        values = dict(parameter_and_buffer_dicts)
    elif isinstance(parameter_and_buffer_dicts, (list, tuple)):
        for d in parameter_and_buffer_dicts:
            if not isinstance(d, dict):
                raise ValueError(f"Expected all elements of parameter_and_buffer_dicts to be "
                                 f"dictionaries, got {type(d)}")
        keys = [k for d in parameter_and_buffer_dicts for k in d]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"{dup} appeared in multiple dictionaries; behavior of functional "
                             f"call is ambiguous")
        values = {k: v for d in parameter_and_buffer_dicts for k, v in d.items()}
    else:
        raise ValueError(f"Expected parameter_and_buffer_dicts to be a dict, or a list/tuple "
                         f"of dicts, but got {type(parameter_and_buffer_dicts)}")
    if args is None:
        args = ()
    elif not isinstance(args, tuple):
        args = (args,)
    kwargs = {} if kwargs is None else kwargs
    tied = _tied_names(module)
    if tie_weights:
        for k in list(values):
            for other in tied.get(k, ()):
                if other == k:
                    continue
                if other in values and values[other] is not values[k]:
                    raise ValueError(f"functional_call got multiple values for keys "
                                     f"{sorted([k, other])}, which are tied. Consider using "
                                     f"tie_weights=False")
                values[other] = values[k]
    if strict:
        missing = sorted(set(tied) - set(values))
        unexpected = sorted(set(values) - set(tied))
        if missing or unexpected:
            msg = f"Error(s) in reparametrizing for {type(module).__name__}:"
            if unexpected:
                msg += "\n\tUnexpected key(s): " + ", ".join(repr(k) for k in unexpected) + "."
            if missing:
                msg += "\n\tMissing key(s): " + ", ".join(repr(k) for k in missing) + "."
            raise RuntimeError(msg)
    saved = []
    try:
        for name, value in values.items():
            owner, leaf = _owner(module, name)
            for store in ("_parameters", "_buffers"):
                d = owner.__dict__[store]
                if leaf in d:
                    saved.append((d, leaf, d[leaf], True))
                    d[leaf] = value
                    break
            else:
                old = owner.__dict__.get(leaf, _MISSING)
                saved.append((owner.__dict__, leaf, old, old is not _MISSING))
                owner.__dict__[leaf] = value
        return module(*args, **kwargs)
    finally:
        for store, leaf, old, existed in reversed(saved):
            if existed:
                store[leaf] = old
            else:
                del store[leaf]


_MISSING = object()


def stack_module_state(models) -> tuple[dict, dict]:
    """torch.func.stack_module_state: the parameters and the buffers of same-class
    ``models``, each stacked along a new first dimension (parameters as new leaves that
    require grad when the originals do)."""
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    if len({type(m) for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    params = {k: _stacked_leaf([p[k] for p in all_params], k) for k in all_params[0]}
    all_buffers = [dict(m.named_buffers()) for m in models]
    buffers = {k: _stacked_leaf([b[k] for b in all_buffers], k) for k in all_buffers[0]}
    return params, buffers


def _stacked_leaf(tensors: list, name: str) -> Tensor:
    """The tensors stacked; a new leaf that requires grad when every one of them does."""
    grads = {t.requires_grad for t in tensors}
    if len(grads) > 1:
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    result = _f.stack(tensors)
    return result.detach().requires_grad_() if grads == {True} else result
