"""The traced graph as networkx and Graphviz DOT (introspection; networkx is imported only
here, at compile time, never on the eager path)."""

from __future__ import annotations


def to_networkx(events, event_kernel: dict | None = None):
    """A networkx.DiGraph with one node per traced op (attributes: op, shape, dtype, kernel:
    the launch it was fused into, or None when folded or removed) and an edge from each
    op to the ops that read what it wrote."""
    import networkx as nx

    event_kernel = event_kernel or {}
    g = nx.DiGraph()
    last_writer: dict = {}
    for i, e in enumerate(events):
        g.add_node(i, op=e.name, shape=tuple(e.shape) if e.shape is not None else None,
                   dtype=e.dtype.name if e.dtype is not None else None,
                   kernel=event_kernel.get(i))
        for b in e.reads:
            j = last_writer.get(b)
            if j is not None and j != i:
                g.add_edge(j, i)
        for b in e.writes:
            last_writer[b] = i
    return g


def _quote(s) -> str:
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph) -> str:
    """Graphviz DOT text for a graph from ``compiled.graph(...)``: ops fused into the same
    kernel share a cluster."""
    lines = ["digraph clgraph {", "  node [shape=box, fontname=monospace];"]
    clusters: dict = {}
    for n, d in graph.nodes(data=True):
        clusters.setdefault(d.get("kernel"), []).append((n, d))
    for c, (kernel, nodes) in enumerate(clusters.items()):
        indent = "  "
        if kernel is not None:
            lines.append(f"  subgraph cluster_{c} {{")
            lines.append(f"    label={_quote(kernel)};")
            indent = "    "
        for n, d in nodes:
            label = d.get("op", n)
            if d.get("shape") is not None:
                label += f"\\n{list(d['shape'])} {d.get('dtype')}"
            lines.append(f"{indent}n{n} [label={_quote(label).replace(chr(92) * 2 + 'n', chr(92) + 'n')}];")
        if kernel is not None:
            lines.append("  }")
    for a, b in graph.edges():
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines) + "\n"
