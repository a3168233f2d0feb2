"""Nested containers of tensors (torch.utils._pytree, in brief): flatten a tuple, list,
dict or namedtuple tree into its leaves and a spec, and rebuild it. None is a leaf here
(PyTorch's pytree treats it as an empty node); the transforms in clgraph.func need no
difference. Imports nothing of clgraph."""

from __future__ import annotations

from typing import Any


class TreeSpec:
    """The shape of a tree: its node type, the node's keys (dict) or fields (namedtuple),
    and the specs of its children; a leaf has no type."""

    __slots__ = ("kind", "context", "children")

    def __init__(self, kind=None, context=None, children=()):
        self.kind, self.context, self.children = kind, context, tuple(children)

    @property
    def is_leaf(self) -> bool:
        return self.kind is None

    @property
    def num_leaves(self) -> int:
        return 1 if self.is_leaf else sum(c.num_leaves for c in self.children)

    def __eq__(self, other) -> bool:
        return (isinstance(other, TreeSpec) and self.kind is other.kind
                and self.context == other.context and self.children == other.children)

    def __hash__(self):
        return hash((self.kind, self.children))

    def __repr__(self) -> str:
        if self.is_leaf:
            return "*"
        inner = ", ".join(repr(c) for c in self.children)
        if self.kind is dict:
            pairs = zip(self.context, self.children)
            return "{" + ", ".join(f"{k!r}: {c!r}" for k, c in pairs) + "}"
        if self.kind is list:
            return f"[{inner}]"
        if self.kind is tuple:
            return f"({inner},)" if len(self.children) == 1 else f"({inner})"
        return f"{self.kind.__name__}({inner})"


LEAF = TreeSpec()


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def tree_flatten(tree) -> tuple[list, TreeSpec]:
    """The leaves of ``tree`` in order, and its spec."""
    leaves: list = []

    def walk(node) -> TreeSpec:
        if isinstance(node, dict):
            keys = list(node)
            return TreeSpec(dict, tuple(keys), [walk(node[k]) for k in keys])
        if _is_namedtuple(node):
            return TreeSpec(type(node), None, [walk(v) for v in node])
        if type(node) in (tuple, list):
            return TreeSpec(type(node), None, [walk(v) for v in node])
        leaves.append(node)
        return LEAF

    spec = walk(tree)
    return leaves, spec


def tree_unflatten(leaves, spec: TreeSpec) -> Any:
    """The tree of ``spec`` with ``leaves`` in order."""
    it = iter(leaves)

    def build(s: TreeSpec):
        if s.is_leaf:
            return next(it)
        values = [build(c) for c in s.children]
        if s.kind is dict:
            return dict(zip(s.context, values))
        if s.kind in (tuple, list):
            return s.kind(values)
        return s.kind(*values)  # a namedtuple

    return build(spec)


def tree_leaves(tree) -> list:
    return tree_flatten(tree)[0]


def tree_map(fn, tree) -> Any:
    leaves, spec = tree_flatten(tree)
    return tree_unflatten([fn(x) for x in leaves], spec)


def broadcast_prefix(prefix, tree, leaf_ok=lambda x: True) -> list | None:
    """The leaves of ``prefix`` (a tree whose leaves stand for whole subtrees of ``tree``)
    repeated over the leaves of ``tree``; None when the structures do not match."""
    out: list = []

    def walk(p, t) -> bool:
        if isinstance(p, dict) or type(p) in (tuple, list) or _is_namedtuple(p):
            if isinstance(p, dict):
                if not isinstance(t, dict) or set(p) != set(t):
                    return False
                return all(walk(p[k], t[k]) for k in t)
            if type(p) is not type(t) or len(p) != len(t):
                return False
            return all(walk(a, b) for a, b in zip(p, t))
        if not leaf_ok(p):
            return False
        out.extend([p] * len(tree_flatten(t)[0]))
        return True

    return out if walk(prefix, tree) else None
