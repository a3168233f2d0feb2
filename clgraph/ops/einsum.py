"""einsum, and the diagonal views it takes for repeated subscripts: diagonal, diag, trace.

einsum is a composition of differentiable ops, so its gradient is theirs: a repeated
subscript takes a diagonal view, a subscript of one operand that the output lacks is
summed at once, then the operands contract left to right, each pair as one batched
matmul (permute and reshape to (batch..., rows, contracted) x (batch..., contracted,
cols)), or a broadcast product when nothing is contracted; the last result is summed over
the subscripts the output lacks and permuted into its order. Size-1 dims broadcast as in
PyTorch. Imports registry, movement, math, linalg and the shape helpers."""

from __future__ import annotations

import builtins
import numbers

import numpy as np

from ..dtypes import int64
from ..shapes import wrap_dim
from . import registry
from .linalg import matmul
from .math import copy_, fill_
from .movement import permute, reshape
from .registry import OpDef, apply, public, register

# --- diagonal -----------------------------------------------------------------------------


def _diagonal_geometry(shape, stride, offset: int, d1: int, d2: int):
    """Shape, strides and the element offset (from the view's start) of the diagonal of
    dims d1, d2 (removed; the diagonal is the last dim)."""
    n1, n2 = shape[d1], shape[d2]
    k = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
    start = 0 if k == 0 else offset * stride[d2] if offset >= 0 else -offset * stride[d1]
    keep = [i for i in range(len(shape)) if i not in (d1, d2)]
    return (tuple(shape[i] for i in keep) + (k,),
            tuple(stride[i] for i in keep) + (stride[d1] + stride[d2],), start)


def _check_dims(ndim: int, dim1, dim2) -> tuple[int, int]:
    d1, d2 = wrap_dim(dim1, ndim), wrap_dim(dim2, ndim)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def _diagonal_rule(x, offset, dim1, dim2):
    if x.ndim < 2:
        raise RuntimeError(f"diagonal(): input must be at least 2-dimensional, got "
                           f"{x.ndim}-D")
    d1, d2 = _check_dims(x.ndim, dim1, dim2)
    shape, stride, start = _diagonal_geometry(x._shape, x._stride, offset, d1, d2)
    return shape, stride, x._offset + start


def _run_view(op_, args, attrs, out=None):
    x = args[0]
    return x._view(*op_.view_rule(x, **attrs))


def _run_diagonal_backward(op_, args, attrs, out=None):
    """Zeros of ``shape`` with ``g`` written on the diagonal ``diagonal`` reads."""
    g = args[0]
    base = registry.Tensor._empty(attrs["shape"], g.dtype, g.device)
    fill_(base, 0)
    copy_(apply(DIAGONAL, base, offset=attrs["offset"], dim1=attrs["dim1"],
                dim2=attrs["dim2"]), g)
    return base


def _ref_diagonal(x, offset, dim1, dim2):
    return np.diagonal(x, offset, dim1, dim2)


def _ref_diagonal_backward(g, shape, offset, dim1, dim2):
    z = np.zeros(shape, g.dtype)
    k = np.arange(g.shape[-1])
    np.moveaxis(z, (dim1, dim2), (-2, -1))[..., k + max(0, -offset), k + max(0, offset)] = g
    return z


DIAGONAL = register(OpDef(
    "diagonal", "view", _ref_diagonal, _run_view, view_rule=_diagonal_rule, saves=(),
    saves_out=False,
    vjp=lambda g, x, out, offset, dim1, dim2: (apply(
        DIAGONAL_BACKWARD, g, shape=tuple(x.shape), offset=offset, dim1=dim1, dim2=dim2),)))
DIAGONAL_BACKWARD = register(OpDef(
    "diagonal_backward", "movement", _ref_diagonal_backward, _run_diagonal_backward,
    saves=(), saves_out=False,
    vjp=lambda g, x, out, shape, offset, dim1, dim2: (apply(
        DIAGONAL, g, offset=offset, dim1=dim1, dim2=dim2),)))


@public
def diagonal(input, offset=0, dim1=0, dim2=1):
    """torch.diagonal: a view of the diagonal of dims dim1 and dim2, as the last dim."""
    d1, d2 = _check_dims(input.ndim, dim1, dim2)
    return apply(DIAGONAL, input, offset=int(offset), dim1=d1, dim2=d2)


@public
def diag(input, diagonal=0):
    """torch.diag: a vector's square matrix with the vector on diagonal ``diagonal``, or a
    matrix's diagonal (a copy)."""
    if input.ndim == 1:
        n = input._shape[0] + abs(int(diagonal))
        return apply(DIAGONAL_BACKWARD, input, shape=(n, n), offset=int(diagonal), dim1=0,
                     dim2=1)
    if input.ndim == 2:
        return apply(DIAGONAL, input, offset=int(diagonal), dim1=0, dim2=1).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


@public
def diagflat(input, offset=0):
    """torch.diagflat: the flattened ``input`` on diagonal ``offset`` of a square matrix."""
    return diag(reshape(input, -1), offset)


@public
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """torch.diag_embed: the last dim of ``input`` on the diagonal ``offset`` of dims
    (dim1, dim2) of a new zero tensor with one more dim."""
    nd = input.ndim + 1
    d1, d2 = _check_dims(nd, dim1, dim2)
    n = (input._shape[-1] if input.ndim else 1) + abs(int(offset))
    shape, rest = [], iter(input._shape[:-1])
    for i in range(nd):
        shape.append(n if i in (d1, d2) else next(rest))
    x = input if input.ndim else reshape(input, 1)
    return apply(DIAGONAL_BACKWARD, x, shape=tuple(shape), offset=int(offset), dim1=d1,
                 dim2=d2)


@public
def trace(input):
    """torch.trace: the sum of a matrix's diagonal (integers sum to int64)."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return apply(DIAGONAL, input, offset=0, dim1=0, dim2=1).sum()


# --- einsum: the equation -----------------------------------------------------------------

_ELLIPSIS = "..."


def _bad_dot(where: str, seen: bool):
    if seen:
        return RuntimeError(f"einsum(): found '.' for {where} for which an ellipsis was "
                            "already found" if where != "output" else
                            "einsum(): found '.' for output but an ellipsis (...) was already "
                            "found")
    return RuntimeError(f"einsum(): found '.' for {where} that is not part of any ellipsis"
                        + (" (...)" if where == "output" else ""))


def _parse_term(text: str, at: int, where: str) -> list:
    """One term's subscripts (letters, and _ELLIPSIS for '...'); ``at`` is its position in
    the equation, for errors."""
    labels, i, seen = [], 0, False
    while i < len(text):
        c = text[i]
        if c == ".":
            if seen or text[i:i + 3] != "...":
                raise _bad_dot(where, seen)
            labels.append(_ELLIPSIS)
            seen = True
            i += 3
            continue
        if c != " ":
            if not ("a" <= c <= "z" or "A" <= c <= "Z"):
                raise RuntimeError(f"einsum(): invalid subscript given at index {at + i} in "
                                   "the equation string, subscripts must be in [a-zA-Z]")
            labels.append(c)
        i += 1
    return labels


def _parse(equation: str, count: int):
    """(input terms, output term or None for implicit output)."""
    lhs, arrow, rhs = equation.partition("->")
    terms, at = [], 0
    for text in lhs.split(","):
        terms.append(_parse_term(text, at, f"operand {len(terms)}"))
        at += len(text) + 1
    if len(terms) > count:
        raise RuntimeError("einsum(): fewer operands were provided than specified in the "
                           "equation")
    if len(terms) < count:
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation")
    output = _parse_term(rhs, len(lhs) + 2, "output") if arrow else None
    return terms, output


def _sublists(args):
    """einsum(op1, sublist1, op2, sublist2, ..., [sublist_out]) as an equation: subscripts
    0-25 are A-Z, 26-51 a-z, Ellipsis is '...'."""
    def letters(sub):
        out = ""
        for s in sub:
            if s is Ellipsis:
                out += _ELLIPSIS
            elif isinstance(s, numbers.Integral) and 0 <= s < 52:
                out += chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26)
            else:
                raise ValueError("einsum(): subscript in subscript list is not within the "
                                 "valid range [0, 52)")
        return out

    operands = list(args[0::2])
    equation = ",".join(letters(s) for s in args[1::2])
    if len(args) % 2:
        operands.pop()
        equation += "->" + letters(args[-1])
    return equation, operands


# --- einsum: the computation --------------------------------------------------------------


class _Operand:
    """A tensor with one label per dim (a letter, or ("...", k) for ellipsis dim k)."""

    __slots__ = ("labels", "t")

    def __init__(self, t, labels):
        self.t, self.labels = t, list(labels)

    def size(self, label) -> int:
        return self.t._shape[self.labels.index(label)]

    def sum_out(self, labels) -> "_Operand":
        dims = [i for i, lb in enumerate(self.labels) if lb in labels]
        if not dims:
            return self
        return _Operand(self.t.sum(dim=tuple(dims)),
                        [lb for lb in self.labels if lb not in labels])

    def arranged(self, order, shape=None) -> object:
        """The tensor permuted into ``order`` (a list of its labels), then reshaped."""
        t = permute(self.t, *[self.labels.index(lb) for lb in order])
        return t if shape is None else reshape(t, *shape)


def _label_operand(t, term: list, k: int, ell: int) -> _Operand:
    """Operand k with its ellipsis expanded to the last of ``ell`` ellipsis labels and its
    repeated labels reduced to diagonals."""
    letters = [lb for lb in term if lb != _ELLIPSIS]
    if _ELLIPSIS in term:
        if len(letters) > t.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({len(letters)}) is more than the number of dimensions "
                               f"({t.ndim}) for operand {k}")
        n = t.ndim - len(letters)
        at = term.index(_ELLIPSIS)
        labels = term[:at] + [(_ELLIPSIS, ell - n + j) for j in range(n)] + term[at + 1:]
    else:
        if len(letters) != t.ndim:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation "
                               f"({len(letters)}) does not match the number of dimensions "
                               f"({t.ndim}) for operand {k} and no ellipsis was given")
        labels = list(term)
    for lb in dict.fromkeys(labels):
        while labels.count(lb) > 1:
            i = labels.index(lb)
            j = labels.index(lb, i + 1)
            if t._shape[i] != t._shape[j]:
                raise RuntimeError(f"einsum(): subscript {lb} is repeated for operand {k} but "
                                   f"the sizes don't match, {t._shape[j]} != {t._shape[i]}")
            t = apply(DIAGONAL, t, offset=0, dim1=i, dim2=j)
            labels = [x for p, x in enumerate(labels) if p not in (i, j)] + [lb]
    return _Operand(t, labels)


def _check_sizes(operands) -> None:
    seen = {}
    for k, o in enumerate(operands):
        for lb, n in zip(o.labels, o.t._shape):
            m = seen.get(lb, 1)
            if n != 1 and m != 1 and n != m:
                if isinstance(lb, tuple):
                    raise RuntimeError(
                        f"einsum(): dimension {lb[1]} covered by ellipsis in operand {k}has "
                        f"size {n} which does not broadcast with previously seen ellipsis "
                        f"with size {m} for the respective dimension")
                raise RuntimeError(f"einsum(): subscript {lb} has size {n} for operand {k} "
                                   f"which does not broadcast with previously seen size {m}")
            seen[lb] = max(n, m)


def _output_labels(terms, output, ell: int) -> list:
    ellipsis = [(_ELLIPSIS, j) for j in range(ell)]
    if output is None:
        counts = {}
        for term in terms:
            for lb in term:
                counts[lb] = counts.get(lb, 0) + 1
        return ellipsis + sorted(lb for lb, c in counts.items() if c == 1 and lb != _ELLIPSIS)
    inputs = {lb for term in terms for lb in term}
    labels = []
    for lb in output:
        if lb == _ELLIPSIS:
            labels += ellipsis
            continue
        if lb in labels:
            raise RuntimeError(f"einsum(): output subscript {lb} appears more than once in "
                               "the output")
        if lb not in inputs:
            raise RuntimeError(f"einsum(): output subscript {lb} does not appear in the "
                               "equation for any input operand")
        labels.append(lb)
    return labels


def _contract(a: _Operand, b: _Operand, keep: set) -> _Operand:
    """The product of a and b summed over their shared labels that are not in ``keep``."""
    batch = [lb for lb in a.labels if lb in b.labels and lb in keep]
    summed = [lb for lb in a.labels if lb in b.labels and lb not in keep]
    # a summed label of size 1 on one side broadcasts: sum(a) * sum(b) over it
    broadcast = {lb for lb in summed if a.size(lb) != b.size(lb)}
    a, b = a.sum_out(broadcast), b.sum_out(broadcast)
    summed = [lb for lb in summed if lb not in broadcast]
    left = [lb for lb in a.labels if lb not in b.labels]
    right = [lb for lb in b.labels if lb not in a.labels]
    lsizes, rsizes = [a.size(lb) for lb in left], [b.size(lb) for lb in right]
    bsizes = [builtins.max(a.size(lb), b.size(lb)) for lb in batch]
    if not summed:
        x = a.arranged(batch + left, [a.size(lb) for lb in batch] + lsizes + [1] * len(right))
        y = b.arranged(batch + right, [b.size(lb) for lb in batch] + [1] * len(left) + rsizes)
        return _Operand(x * y, batch + left + right)
    k = int(np.prod([a.size(lb) for lb in summed]))
    x = a.arranged(batch + left + summed, [a.size(lb) for lb in batch] +
                   [int(np.prod(lsizes))] + [k])
    y = b.arranged(batch + summed + right, [b.size(lb) for lb in batch] +
                   [k] + [int(np.prod(rsizes))])
    return _Operand(reshape(matmul(x, y), *bsizes, *lsizes, *rsizes), batch + left + right)


@public(method=False)
def einsum(*args):
    """torch.einsum(equation, *operands) or einsum(operand, sublist, ..., [sublist_out]).
    Operands contract left to right (PyTorch may pick another order with opt_einsum; the
    result differs only by rounding)."""
    if len(args) < 2:
        raise ValueError("einsum(): must specify the equation string and at least one "
                         "operand, or at least one operand and its subscripts list")
    if isinstance(args[0], str):
        equation = args[0]
        operands = list(args[1] if len(args) == 2 and isinstance(args[1], (list, tuple))
                        else args[1:])
    else:
        equation, operands = _sublists(args)
    for k, t in enumerate(operands):
        if not isinstance(t, registry.Tensor):
            raise TypeError(f"expected Tensor as element {k} in argument 1, but got "
                            f"{type(t).__name__}")
        if t.dtype is not operands[0].dtype:
            raise RuntimeError(f"expected scalar type {operands[0].dtype.scalar_type} but "
                               f"found {t.dtype.scalar_type}")
    terms, output = _parse(equation, len(operands))
    ell = builtins.max([t.ndim - sum(lb != _ELLIPSIS for lb in term)
                        for t, term in zip(operands, terms) if _ELLIPSIS in term] or [0])
    ops = [_label_operand(t, term, k, ell) for k, (t, term) in
           enumerate(zip(operands, terms))]
    _check_sizes(ops)
    out_labels = _output_labels(terms, output, ell)
    return _evaluate(ops, out_labels, operands[0].dtype)


def _evaluate(ops: list, out_labels: list, dtype):
    """Sum labels of one operand early, contract left to right, arrange as the output.
    As PyTorch, an integer or bool operand summed on its own widens to int64 (sum's rule),
    and so does the result; otherwise the result keeps the operands' type."""
    for k, o in enumerate(ops):
        elsewhere = {lb for j, p in enumerate(ops) if j != k for lb in p.labels}
        alone = {lb for lb in o.labels if lb not in elsewhere and lb not in out_labels}
        ops[k] = o.sum_out(alone)
        if alone and dtype.kind <= 1:
            dtype = int64
    acc = ops[0]
    for k in range(1, len(ops)):
        keep = set(out_labels).union(*[set(p.labels) for p in ops[k + 1:]])
        acc = _contract(acc, ops[k], keep)
    acc = acc.sum_out({lb for lb in acc.labels if lb not in out_labels})
    t = acc.arranged(out_labels)
    if t.dtype is not dtype and dtype.kind == 1:
        t = t.to(dtype)  # a contraction's sums widen to int64; PyTorch keeps the type
    return t
