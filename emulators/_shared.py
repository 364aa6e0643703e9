"""Where the reference material (`shared/`: specs, docs, test vectors) lives.

CI lays a copy of `shared/` beside the repository; sessions have it at /work/shared.
`CONNECTOR_SHARED_DIR` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("CONNECTOR_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [_REPO.parent / "shared", Path("/work/shared")]
    for candidate in candidates:
        if (candidate / "specs").is_dir():
            return candidate
    raise FileNotFoundError(
        "the shared reference folder (specs, docs) was not found beside the repository or at "
        "/work/shared; set CONNECTOR_SHARED_DIR"
    )


def shared_path(*parts: str) -> Path:
    try:
        return shared_dir().joinpath(*parts)
    except FileNotFoundError:
        return Path("/work/shared").joinpath(*parts)
