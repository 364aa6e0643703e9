"""What the rule tests read: each line of code in app/ with its place (comments cut off)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def app_code_lines(skip: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    """(`path:line: text`, the code before any `#`) for every line of app/ not in a skipped
    file (by its path relative to the repository)."""
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if skip(rel):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            yield f"{rel}:{number}: {line.strip()}", line.split("#", 1)[0]
