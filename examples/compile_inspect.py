"""What cg.compile makes of a function: the traced graph, the kernels it was fused into and
the launches per call, eager against compiled.

    python examples/compile_inspect.py [--dot graph.dot]

Writes the graph of a small training step as Graphviz DOT (render it with
``dot -Tsvg graph.dot -o graph.svg``) and prints the OpenCL C of a fused elementwise chain.
"""

from __future__ import annotations

import argparse

import clgraph as cg
import clgraph.nn as nn


def gelu_like(x, b):
    """Nine elementwise ops over a broadcast bias: one kernel once compiled."""
    y = x + b
    return 0.5 * y * (1 + (0.79788456 * (y + 0.044715 * y * y * y)).tanh())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dot", default="graph.dot", help="where to write the step's graph")
    args = ap.parse_args()

    x, b = cg.randn(512, 256), cg.randn(256)
    f = cg.compile(gelu_like)
    f(x, b)
    with cg.profile() as eager:
        gelu_like(x, b)
    with cg.profile() as compiled:
        f(x, b)
    print(f"gelu_like: eager {eager.launches} launches, compiled {compiled.launches}")
    print(f.kernels(x, b)[0])

    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 4))
    opt = cg.optim.Adam(model.parameters(), lr=1e-3)

    @cg.compile
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    xs, ys = cg.randn(64, 32), cg.randint(0, 4, (64,))
    for _ in range(3):
        step(xs, ys)
    with cg.profile() as p:
        step(xs, ys)
    g = step.graph(xs, ys)
    print(f"training step: {g.number_of_nodes()} traced ops, {p.launches} launches per "
          "compiled step:")
    print(p.table())
    with open(args.dot, "w") as fh:
        fh.write(cg.to_dot(g))
    print(f"graph written to {args.dot}")


if __name__ == "__main__":
    main()
