"""The import graph of blocks/, parsed with ast, for the architecture tests (tests/test_shape.py
and the package tests of blocks.models and blocks.attacks.onepixel)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def blocks_import_graph() -> dict[str, set[str]]:
    """Every module under blocks/ -> the modules of blocks/ it imports, at module level or inside
    functions; `from blocks import generate as G` is an edge to blocks.generate, not to blocks."""
    modules = {_module_name(p): p for p in sorted((ROOT / "blocks").rglob("*.py"))}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    edges.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def package_graph(package: str) -> dict[str, set[str]]:
    """The part of blocks_import_graph() inside one package: each of its modules -> those of its
    modules it imports."""
    inside = lambda m: m == package or m.startswith(package + ".")  # noqa: E731
    return {m: {d for d in deps if inside(d)} for m, deps in blocks_import_graph().items() if inside(m)}
