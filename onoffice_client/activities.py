"""Activities (the agents log, `agentslog`): creating them, and finding which exist already, so
that a create whose answer was lost (it may have been applied) is not repeated blindly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from onoffice_client.models import ActivityCreate
from onoffice_client.normalize import format_datetime
from onoffice_client.results import result_records
from onoffice_client.transport import CREATE, READ, Action, ActionTransport

# Newest activities read per address when checking for one (onOffice lists newest first).
RECENT_ACTIVITIES = 50
ACTIVITY_READ_FIELDS = ["Aktionsart", "Aktionstyp", "Bemerkung", "Datum"]
# How `Datum` may be shown on read: the documented `Y-m-d H:i:s`, and tolerated other forms
# (unverified). A form without seconds or without a time compares at that precision.
_SHOWN_FORMATS = (
    ("%Y-%m-%d %H:%M:%S", "second"),
    ("%Y-%m-%dT%H:%M:%S", "second"),
    ("%d.%m.%Y %H:%M:%S", "second"),
    ("%Y-%m-%d %H:%M", "minute"),
    ("%d.%m.%Y %H:%M", "minute"),
    ("%Y-%m-%d", "day"),
    ("%d.%m.%Y", "day"),
)


def same_time(shown: Any, sent: datetime) -> bool:
    """Whether onOffice's `Datum` shows the (server-local, naive) time an activity was sent
    with. An unreadable value is not the same: the activity is written again rather than lost."""
    text = str(shown or "").strip()
    for fmt, precision in _SHOWN_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if precision == "day":
            return parsed.date() == sent.date()
        if precision == "minute":
            return parsed == sent.replace(second=0, microsecond=0)
        return parsed == sent.replace(microsecond=0)
    return False


def is_same_activity(
    elements: Mapping[str, Any], item: ActivityCreate, sent_at: datetime | None
) -> bool:
    """An activity read back is `item` (kind, type, note, and the time it was sent with)."""
    if str(elements.get("Aktionsart") or "") != item.kind:
        return False
    if str(elements.get("Aktionstyp") or "") != (item.type or ""):
        return False
    if str(elements.get("Bemerkung") or "") != item.note:
        return False
    return sent_at is None or same_time(elements.get("Datum"), sent_at)


class ActivityLog(ActionTransport):
    """The activity actions of `OnOfficeClient`."""

    _tz: ZoneInfo

    def activity_action(self, item: ActivityCreate) -> Action:
        """The agentslog create action of one activity (one entry per address id)."""
        params: dict[str, Any] = {
            "addressids": [int(i) for i in item.address_ids],
            "actionkind": item.kind,
            "note": item.note,
        }
        if item.type:
            params["actiontype"] = item.type
        if item.at:
            params["datetime"] = format_datetime(item.at, self._tz)
        return Action(CREATE, "agentslog", params)

    async def create_activities(self, items: Sequence[ActivityCreate]) -> None:
        await self._run([self.activity_action(item) for item in items if item.address_ids])

    async def missing_activities(
        self, items: Sequence[ActivityCreate]
    ) -> list[ActivityCreate | None]:
        """Each item for those of its addresses that do not have it yet among their newest
        RECENT_ACTIVITIES activities, or None when all have it (one read per item and address,
        several per request). Without a time (`at`), kind, type and note alone decide."""
        wanted = [(item, sorted({int(i) for i in item.address_ids})) for item in items]
        reads = [
            Action(
                READ,
                "agentslog",
                {"addressid": [i], "data": ACTIVITY_READ_FIELDS, "listlimit": RECENT_ACTIVITIES},
            )
            for _item, ids in wanted
            for i in ids
        ]
        results = iter(await self._run(reads) if reads else [])
        out: list[ActivityCreate | None] = []
        for item, ids in wanted:
            sent_at = self._sent_at(item)
            missing = [
                address_id
                for address_id in ids
                if not any(
                    is_same_activity(_elements(record), item, sent_at)
                    for record in result_records(next(results))
                )
            ]
            out.append(item.model_copy(update={"address_ids": missing}) if missing else None)
        return out

    def _sent_at(self, item: ActivityCreate) -> datetime | None:
        """The server-local time `activity_action` sends for `item`."""
        if item.at is None:
            return None
        return datetime.strptime(format_datetime(item.at, self._tz), "%Y-%m-%d %H:%M:%S")


def _elements(record: Mapping[str, Any]) -> Mapping[str, Any]:
    elements = record.get("elements")
    return elements if isinstance(elements, Mapping) else {}
