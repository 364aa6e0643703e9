"""JSON structured logs: one object per line with dotted event names and key/value fields.

Every line is redacted before it is written (uvicorn's access log included): query string
values become `***` (the path and parameter names stay), so signed onOffice URLs leave no
apiToken, apiClaim or signature behind; provider webhook tokens in paths become a short hash
prefix (`/webhooks/brevo/~1a2b3c4d`, enough to correlate lines); bearer values become `***`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD_ATTRS = set(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__.keys()
) | {"message", "asctime", "taskName"}

_QUERY = re.compile(r"\?([^\s\"'#<>]+)")
_QUERY_VALUE = re.compile(r"=[^&;]*")
_WEBHOOK_TOKEN = re.compile(r"(/webhooks/[A-Za-z]+/)([^/\s\"'?#<>]+)")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def webhook_token_ref(token: str) -> str:
    """What logs show instead of a webhook token: a short, stable hash prefix."""
    return "~" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def redact(text: str) -> str:
    """`text` without query string values, webhook tokens and bearer credentials."""
    text = _QUERY.sub(lambda m: "?" + _QUERY_VALUE.sub("=***", m.group(1)), text)
    text = _WEBHOOK_TOKEN.sub(
        lambda m: (
            m.group(1)
            + (m.group(2) if m.group(2).startswith("~") else webhook_token_ref(m.group(2)))
        ),
        text,
    )
    return _BEARER.sub(r"\1***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(payload, default=str, ensure_ascii=False))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO; URLs can carry signed parameters, keep them out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # uvicorn's own loggers go through this handler too (`connector serve` passes no
    # log_config), so its access lines are redacted like every other line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
