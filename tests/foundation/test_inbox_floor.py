"""The architecture's rule, enforced: the inbox (`app/inbox/`) is a floor below the domains.

Two checks by an AST pass (imports anywhere in a module count, like the circle rule):
- `app/inbox/` imports no domain package: only the inbox itself, the floors below it
  (`app/db`, `app/worker`, `app/config`, `app/metrics`) and `providers/base.py`;
- no module outside `app/webhooks/` (the product, the dev kit, the benches, the tests) reaches
  the inbox through the webhook domain: not `app.webhooks.repository` (the webhooks' own burst
  queries), and no name a webhooks module imported from `app.inbox`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.foundation.test_import_circles import _write, import_base, import_graph, module_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "devkit", "providers", "onoffice_client", "emulators", "bench", "tests")
INBOX = "app.inbox"
# What the inbox may import (a module or a package prefix).
BELOW = ("app.inbox", "app.db", "app.worker", "app.config", "app.metrics", "providers.base")
WEBHOOKS = "app.webhooks"


def inbox_reaches_up(graph: dict[str, set[str]]) -> list[str]:
    """`module -> import` for every first-party import of the inbox above its floor."""
    return sorted(
        f"{name} -> {target}"
        for name, targets in graph.items()
        if name == INBOX or name.startswith(f"{INBOX}.")
        for target in targets
        if not any(target == b or target.startswith(f"{b}.") for b in BELOW)
    )


def _imports_from(tree: ast.AST, name: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(module, names) of every `from … import …` and `import …` in a module."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.append((import_base(node, package), [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def inbox_through_webhooks(root: Path, packages: tuple[str, ...]) -> list[str]:
    """`module: import` for every import outside app/webhooks that reaches the inbox through
    the webhook domain."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            modules[name] = _imports_from(
                ast.parse(path.read_text()), name, path.name == "__init__.py"
            )
    # The names each webhooks module took from the inbox (re-exported if imported from it).
    borrowed = {
        name: {n for base, names in found if base.startswith(INBOX) for n in names}
        for name, found in modules.items()
        if name.startswith(f"{WEBHOOKS}.")
    }
    offenders = []
    for name, found in modules.items():
        if name == WEBHOOKS or name.startswith(f"{WEBHOOKS}."):
            continue
        for base, names in found:
            if not (base == WEBHOOKS or base.startswith(f"{WEBHOOKS}.")):
                continue
            targets = [f"{base}.{n}" for n in names] if base == WEBHOOKS else [base]
            if f"{WEBHOOKS}.repository" in targets:
                offenders.append(f"{name}: {base} repository")
            offenders.extend(f"{name}: {base} {n}" for n in names if n in borrowed.get(base, set()))
    return sorted(offenders)


def test_the_inbox_imports_no_domain() -> None:
    found = inbox_reaches_up(import_graph(ROOT, ("app", "providers")))
    assert not found, "the inbox imports above its floor:\n" + "\n".join(found)


def test_nothing_outside_the_webhooks_reaches_the_inbox_through_them() -> None:
    found = inbox_through_webhooks(ROOT, PACKAGES)
    assert not found, "the inbox reached through app.webhooks:\n" + "\n".join(found)


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/db/__init__.py": "",
            "app/db/models.py": "",
            "app/inbox/__init__.py": "",
            "app/inbox/repository.py": "from app.db.models import X\nX = 1\n",
            "app/inbox/owner.py": "def f():\n    from app.webhooks.jobs import drain_job\n",
            "app/webhooks/__init__.py": "",
            "app/webhooks/jobs.py": "drain_job = 1\n",
            "app/webhooks/repository.py": "from app.inbox.repository import X\n",
            "app/syncs/__init__.py": "",
            "app/syncs/read.py": "from app.webhooks.repository import X\n",
            "app/syncs/send.py": "from app.webhooks import repository\n",
            "app/syncs/ok.py": "from app.webhooks.jobs import drain_job\nfrom app.inbox import X\n",
        },
    )
    graph = import_graph(tmp_path, ("app",))
    assert inbox_reaches_up(graph) == ["app.inbox.owner -> app.webhooks.jobs"]
    assert inbox_through_webhooks(tmp_path, ("app",)) == [
        "app.syncs.read: app.webhooks.repository X",
        "app.syncs.read: app.webhooks.repository repository",
        "app.syncs.send: app.webhooks repository",
    ]
