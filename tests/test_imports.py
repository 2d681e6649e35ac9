"""The project's modules form no import cycle.

Module-level imports only (an import inside a function runs when called, after every module has
loaded); importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those count as
edges too. A cycle makes the first-imported module of it fail with a partially initialized module,
depending on which one a program happens to import first.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "golden", "train")


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _resolve(current, is_package, node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = current if is_package else current.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    prefix = (base + "." if node.level and base else "") + (node.module or "")
    prefix = prefix.strip(".")
    # "from x import y" may name a submodule y of x, or just an attribute of x.
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def _graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        targets = set()
        for node in tree.body:                       # module level only
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(_resolve(name, path.name == "__init__.py", node))
        edges = set()
        for t in targets:
            parts = t.split(".")
            for k in range(1, len(parts) + 1):       # a.b.c imports a and a.b first
                prefix = ".".join(parts[:k])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    edges.add(prefix)
        graph[name] = edges
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    graph = _graph()
    assert "golden.checks" in graph["golden.formats"] and "hw.synth" in graph["hw.sweep.spec"]
