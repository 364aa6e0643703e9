"""Bulk writes through Brevo's asynchronous contact import (`POST /contacts/import`) and the
wait for its process.

`/processes` sits in the account's 100 requests/hour bucket. With `notices` (our public URL is
reachable) every import carries a `notifyUrl`; Brevo calls it when the import is done, and the
call is only a trigger: one `GET /processes/{id}` confirms. Without notices, or when none
arrives in time, the process is polled: first after the import's estimated processing time,
then exponentially less often, every poll within `budget` (a per-key share of the bucket,
shared by all workers)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Final, Protocol

from providers.base import ContactData, FieldMapping
from providers.brevo.api import BrevoApi
from providers.brevo.errors import BrevoTransientError
from providers.brevo.values import attributes
from providers.limits import LocalRequestBudget, RequestBudget, spend

logger = logging.getLogger("providers.brevo.client")

_PROCESS_DONE: Final = "completed"
_PROCESS_PENDING: Final = frozenset({"queued", "in_process"})
_PROCESS_FAILED: Final = frozenset({"failed", "error", "cancelled", "canceled", "aborted"})


# Polls of /processes per key and hour: 60 of the bucket's 100, the rest left for the other
# endpoints in it (account, webhooks, senders).
PROCESS_POLLS_PER_HOUR: Final = 60
# Estimated processing time of an import: a floor plus this much per contact (assumed; Brevo
# documents no figure). The first poll waits for it; a notice is awaited 3x as long.
PROCESS_S_PER_CONTACT: Final = 0.0002


class ImportNotices(Protocol):
    """Where Brevo can tell us that an import is done (the connector's public route)."""

    async def open(self) -> tuple[str, str]:
        """A new notice: (its id, the notifyUrl that marks it done)."""
        ...

    async def wait(self, notice_id: str, within_s: float) -> bool:
        """True once the notice arrived (waiting at most `within_s` seconds)."""
        ...


class Importer:
    def __init__(
        self,
        api: BrevoApi,
        *,
        api_key: str,
        max_bytes: int,
        poll_interval: float,
        poll_max_interval: float,
        process_timeout: float,
        notices: ImportNotices | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self._api = api
        self._api_key = api_key
        self._import_max_bytes = max_bytes
        self._poll_interval = poll_interval
        self._poll_max_interval = poll_max_interval
        self._process_timeout = process_timeout
        self._notices = notices
        self._budget = budget or LocalRequestBudget(PROCESS_POLLS_PER_HOUR)

    def estimate(self, contacts: int) -> float:
        """Seconds an import of `contacts` is expected to take (`poll_interval` at least)."""
        return self._poll_interval + contacts * PROCESS_S_PER_CONTACT

    async def import_contacts(
        self, list_id: str, contacts: Sequence[ContactData], mapping: FieldMapping
    ) -> None:
        # Opted-out contacts go in their own import: `emailBlacklist` applies to a whole file.
        groups = (
            (False, [c for c in contacts if c.subscribed]),
            (True, [c for c in contacts if not c.subscribed]),
        )
        waits = []
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
                notice_id = None
                if self._notices is not None:
                    notice_id, body["notifyUrl"] = await self._notices.open()
                data = await self._api.json(
                    "POST", "/contacts/import", body=body, label="POST /contacts/import"
                )
                waits.append(self.wait_for_process(int(data["processId"]), len(chunk), notice_id))
        await asyncio.gather(*waits)

    async def wait_for_process(
        self, process_id: int, contacts: int = 0, notice_id: str | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._process_timeout
        interval = self.estimate(contacts)
        if notice_id is not None and self._notices is not None:
            if await self._notices.wait(notice_id, min(3 * interval, self._process_timeout)):
                interval = 0.0  # done, says Brevo: confirm with one read
            else:
                logger.warning("brevo.import_notice_missing", extra={"process_id": process_id})
                interval = min(interval, self._poll_max_interval)
        while True:
            await asyncio.sleep(interval)
            if not await spend(self._budget, self._api_key, give_up_at=deadline):
                raise BrevoTransientError(
                    f"Brevo import process {process_id}: the hourly budget for process checks "
                    "is spent; it will be checked again later.",
                    endpoint="GET /processes/{processId}",
                )
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
            interval = min(max(2 * interval, self.estimate(contacts)), self._poll_max_interval)
            if loop.time() + interval > deadline:
                raise BrevoTransientError(
                    f"Brevo import process {process_id} is still '{status}' after "
                    f"{self._process_timeout:.0f} s; it will be checked again later.",
                    endpoint="GET /processes/{processId}",
                )


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
