"""Timestamps for signed onOffice URLs in tests.

Two openings of the same page within one second would sign the same URL, which the service
rightly refuses as a replay. A real reopening carries a new timestamp, so a test asks for the
newest second the exact same URL has not been signed with yet (a few seconds in the past are
well within the signature's tolerance).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

_SIGNED: set[tuple[str, tuple[tuple[str, str], ...], int]] = set()


def fresh_timestamp(path: str, params: Mapping[str, str]) -> str:
    key = tuple(sorted((k, v) for k, v in params.items() if k != "timestamp"))
    stamp = int(time.time())
    while (path, key, stamp) in _SIGNED:
        stamp -= 1
    _SIGNED.add((path, key, stamp))
    return str(stamp)
