"""Bulk writes through Brevo's asynchronous contact import (`POST /contacts/import`) and the
polling of its process (`/processes` sits in the 100 requests/hour bucket: start slow, back
off)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from providers.base import ContactData, FieldMapping
from providers.brevo.api import BrevoApi
from providers.brevo.errors import BrevoTransientError
from providers.brevo.values import attributes

logger = logging.getLogger("providers.brevo.client")

_PROCESS_DONE: Final = "completed"
_PROCESS_PENDING: Final = frozenset({"queued", "in_process"})
_PROCESS_FAILED: Final = frozenset({"failed", "error", "cancelled", "canceled", "aborted"})


class Importer:
    def __init__(
        self,
        api: BrevoApi,
        *,
        max_bytes: int,
        poll_interval: float,
        poll_max_interval: float,
        process_timeout: float,
    ) -> None:
        self._api = api
        self._import_max_bytes = max_bytes
        self._poll_interval = poll_interval
        self._poll_max_interval = poll_max_interval
        self._process_timeout = process_timeout

    async def import_contacts(
        self, list_id: str, contacts: Sequence[ContactData], mapping: FieldMapping
    ) -> None:
        # Opted-out contacts go in their own import: `emailBlacklist` applies to a whole file.
        groups = (
            (False, [c for c in contacts if c.subscribed]),
            (True, [c for c in contacts if not c.subscribed]),
        )
        process_ids: list[int] = []
        for blacklist, group in groups:
            for chunk in chunks_by_size(group, mapping, self._import_max_bytes):
                body = {
                    "jsonBody": chunk,
                    "listIds": [int(list_id)],
                    "updateExistingContacts": True,
                    "emptyContactsAttributes": False,
                    "emailBlacklist": blacklist,
                    "disableNotification": True,
                }
                data = await self._api.json(
                    "POST", "/contacts/import", body=body, label="POST /contacts/import"
                )
                process_ids.append(int(data["processId"]))
        await asyncio.gather(*(self.wait_for_process(pid) for pid in process_ids))

    async def wait_for_process(self, process_id: int) -> None:
        # /processes sits in the 100 requests/hour bucket: start slow, back off further.
        deadline = time.monotonic() + self._process_timeout
        interval = self._poll_interval
        while True:
            await asyncio.sleep(interval)
            data = await self._api.json(
                "GET", f"/processes/{process_id}", label="GET /processes/{processId}"
            )
            status = str(data.get("status", ""))
            if status == _PROCESS_DONE:
                return
            if status in _PROCESS_FAILED:
                raise BrevoTransientError(
                    f"Brevo import process {process_id} ended with status '{status}'; "
                    "the import will be retried.",
                    endpoint="GET /processes/{processId}",
                    error_body=data,
                )
            if status not in _PROCESS_PENDING:
                logger.warning("brevo.unknown_process_status", extra={"status": status})
            if time.monotonic() + interval > deadline:
                raise BrevoTransientError(
                    f"Brevo import process {process_id} is still '{status}' after "
                    f"{self._process_timeout:.0f} s; it will be checked again later.",
                    endpoint="GET /processes/{processId}",
                )
            interval = min(interval * 1.5, self._poll_max_interval)


def chunks_by_size(
    contacts: Sequence[ContactData], mapping: FieldMapping, max_bytes: int
) -> list[list[dict[str, Any]]]:
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for contact in contacts:
        row = {"email": contact.email, "attributes": attributes(contact, mapping)}
        row_size = len(json.dumps(row, ensure_ascii=False).encode()) + 1
        if current and size + row_size > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(row)
        size += row_size
    if current:
        chunks.append(current)
    return chunks
