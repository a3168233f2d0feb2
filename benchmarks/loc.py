"""Lines per module of the core (tensor, ops, graph, autograd, compile, codegen, runtime).

    python benchmarks/loc.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    rows = []
    for p in sorted((ROOT / "clgraph").rglob("*.py")) + sorted((ROOT / "kernels").glob("*.cl")):
        n = sum(1 for line in p.read_text().splitlines() if line.strip())
        rows.append((str(p.relative_to(ROOT)), n))
    w = max(len(r[0]) for r in rows)
    for name, n in rows:
        print(f"{name:<{w}}  {n:>6}")
    print(f"{'total':<{w}}  {sum(n for _, n in rows):>6}")


if __name__ == "__main__":
    main()
