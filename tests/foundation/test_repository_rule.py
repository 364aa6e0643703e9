"""The architecture's rule, enforced: every SQL query lives in a `repository.py` module."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# SQLAlchemy statement builders and direct execution; `.update(` on dicts or repositories and
# `repo.delete(...)` are method calls, not statements.
QUERY = re.compile(
    r"(?<![\w.])(?<!def )(select|update|delete|insert)\("
    r"|\b(session|conn)\.(execute|scalar|scalars|get|add|add_all|delete)\("
)
# Modules below the repositories (engine, session, dialect helpers) build no domain queries.
EXEMPT = {"app/db/session.py", "app/db/engine.py"}


def test_no_query_outside_a_repository() -> None:
    offenders = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "repository.py" or rel in EXEMPT:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if QUERY.search(code):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "queries outside a repository:\n" + "\n".join(offenders)


def test_the_rule_sees_a_query() -> None:
    assert QUERY.search("rows = await session.execute(stmt)")
    assert QUERY.search("stmt = select(Contact).where(x)")
    assert QUERY.search("run = await session.get(SyncRun, run_id)")
    assert not QUERY.search("ctx.update(resources.job_context())")
    assert not QUERY.search("async def delete(self) -> None:")
