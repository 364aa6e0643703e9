"""The architecture's rule, enforced: `app/` has no import circle.

An AST pass over the first-party packages (app, devkit, providers, onoffice_client, emulators,
bench) builds the module import graph. Every import counts: at module level, inside a function
(a deferred import hides a circle, it does not remove it) and under `TYPE_CHECKING` (mypy
follows it, and it is how a circle starts). A circle is a strongly connected component of more
than one module that holds a module of `app/`; one through devkit (`app.cli` → `devkit.demo` →
`app.cli`) counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "devkit", "providers", "onoffice_client", "emulators", "bench")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_base(node: ast.ImportFrom, package: str) -> str:
    """The module a `from … import …` in `package` imports from (relative ones resolved)."""
    base = node.module or ""
    if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return base


def imports_of(tree: ast.AST, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The first-party modules one module imports (anywhere in its body)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = import_base(node, package)
            # `from app.webhooks import service` imports the submodule when there is one, else
            # the package's own name.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            targets = [node.args[0].value]  # importlib.import_module("devkit.demo")
        else:
            continue
        for target in targets:
            # `import app.a.b` imports app.a.b (its packages' __init__ hold no imports back).
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    files = {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }
    known = set(files)
    return {
        name: imports_of(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                child = pending.pop()
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, sorted(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def app_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    return [c for c in circles(graph) if any(m == "app" or m.startswith("app.") for m in c)]


def test_app_has_no_import_circle() -> None:
    found = app_circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_rule_sees_a_circle_hidden_in_a_function(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app.b import x\n",
            "app/b.py": "def x():\n    from app.c import y\n",
            "app/c.py": "import app.a\n",
            "app/d.py": "from app.a import z\n",
            "devkit/__init__.py": "",
            "devkit/demo.py": "from app import cli\n",
            "app/cli.py": "def f():\n    importlib.import_module('devkit.demo')\n",
        },
    )
    graph = import_graph(tmp_path, ("app", "devkit"))
    assert graph["app.b"] == {"app.c"}
    assert graph["devkit.demo"] == {"app.cli"}
    assert app_circles(graph) == [["app.a", "app.b", "app.c"], ["app.cli", "devkit.demo"]]


def test_the_rule_passes_a_tree_without_circles(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/a.py": "from app.b import x\nfrom app import c\n",
            "app/b.py": "def x():\n    from app.c import y\n",
            "app/c.py": "import json\n",
        },
    )
    graph = import_graph(tmp_path, ("app",))
    assert graph["app.a"] == {"app.b", "app.c"}
    assert app_circles(graph) == []
