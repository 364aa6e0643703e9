"""Mailchimp tags: they are static segments, so a tag is added to up to 500 members with one
`POST /lists/{id}/segments/{segment_id}`; addresses the segment call refuses, and every address
of a tag whose segment call fails, go through the member tags endpoint instead. Segment ids are
cached per key and list (`SegmentCache`, shared by the clients of a process)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from providers.base import normalise_email
from providers.limits import hash_key
from providers.mailchimp.api import MailchimpApi, subscriber_hash
from providers.mailchimp.errors import MailchimpNotFoundError, MailchimpRequestError, describe

logger = logging.getLogger("providers.mailchimp.client")

SEGMENT_BATCH_SIZE = 500  # members_to_add maximum of the static segment endpoint


class SegmentCache:
    """Static segment (tag) ids per API key and list, shared by the clients of one process.

    A client is built per job, so a cache inside the client would re-read the list's segments
    for every batch. Entries are trusted for `ttl_s`; a wanted tag missing from an entry, or a
    segment Mailchimp no longer knows, makes the client read the list again anyway.
    """

    def __init__(self, *, ttl_s: float = 900.0, max_lists: int = 1000) -> None:
        self.ttl_s = ttl_s
        self.max_lists = max_lists
        self._entries: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @staticmethod
    def _key(api_key: str, list_id: str) -> tuple[str, str]:
        return hash_key(api_key), list_id

    def get(self, api_key: str, list_id: str) -> dict[str, int] | None:
        entry = self._entries.get(self._key(api_key, list_id))
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, api_key: str, list_id: str, segments: dict[str, int]) -> None:
        key = self._key(api_key, list_id)
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_lists:
            self._entries.pop(next(iter(self._entries)))  # oldest first
        self._entries[key] = (time.monotonic(), segments)

    def forget(self, api_key: str, list_id: str) -> None:
        self._entries.pop(self._key(api_key, list_id), None)

    def lock(self, api_key: str, list_id: str) -> asyncio.Lock:
        return self._locks.setdefault(self._key(api_key, list_id), asyncio.Lock())


class Tags:
    def __init__(self, api: MailchimpApi, *, api_key: str, segments: SegmentCache) -> None:
        self._api = api
        self._api_key = api_key
        self._segments = segments

    async def add_in_bulk(
        self, list_id: str, missing: Mapping[str, Sequence[str]]
    ) -> dict[str, str]:
        """Add each member (by email) to the tags it lacks; returns a reason per email whose
        tags could not be set.

        One static-segment request per tag and 500 members. A contact is only reported if the
        member tags endpoint refuses it too: that endpoint is the fallback for addresses the
        segment call lists in `errors` and for a tag whose segment call fails permanently.
        """
        by_tag: dict[str, list[str]] = {}
        for email, tags in missing.items():
            for tag in tags:
                by_tag.setdefault(tag, []).append(email)
        if not by_tag:
            return {}
        segment_ids = await self.segment_ids(list_id, list(by_tag))
        chunks = [
            (tag, emails[start : start + SEGMENT_BATCH_SIZE])
            for tag, emails in by_tag.items()
            for start in range(0, len(emails), SEGMENT_BATCH_SIZE)
        ]
        refused = await asyncio.gather(
            *(self._add_to_segment(list_id, segment_ids.get(tag), emails) for tag, emails in chunks)
        )
        fallback: dict[str, list[str]] = {}
        for (tag, _), emails in zip(chunks, refused, strict=True):
            for email in emails:
                fallback.setdefault(email, []).append(tag)
        reasons = await asyncio.gather(
            *(self.tag_one(list_id, email, tags) for email, tags in fallback.items())
        )
        return {
            email: reason
            for email, reason in zip(fallback, reasons, strict=True)
            if reason is not None
        }

    async def _add_to_segment(
        self, list_id: str, segment_id: int | None, emails: list[str]
    ) -> list[str]:
        """Add up to 500 members to a static segment; returns the emails it did not take."""
        if segment_id is None:
            return emails
        try:
            answer = await self._api.request(
                "POST", f"/lists/{list_id}/segments/{segment_id}", json={"members_to_add": emails}
            )
        except MailchimpRequestError as exc:
            if isinstance(exc, MailchimpNotFoundError):
                self._segments.forget(self._api_key, list_id)  # deleted in Mailchimp: re-read
            logger.warning(
                "mailchimp.segment_add_failed",
                extra={"segment_id": segment_id, "members": len(emails), "reason": exc.message},
            )
            return emails
        not_added = {
            normalise_email(str(address))
            for error in answer.get("errors") or []
            if isinstance(error, dict)
            for address in error.get("email_addresses") or []
        }
        return [email for email in emails if email in not_added]

    async def segment_ids(self, list_id: str, names: list[str]) -> dict[str, int]:
        """Static segment id of each tag name, creating the missing tags.

        The list's segments are read once per `SegmentCache` entry (all pages) and again only
        when a wanted tag is not among them, so a tag made elsewhere meanwhile is found rather
        than created twice. A tag that cannot be created is left out (its members take the
        fallback).
        """
        async with self._segments.lock(self._api_key, list_id):
            known = self._segments.get(self._api_key, list_id)
            if known is None or any(name not in known for name in names):
                known = await self._read_tag_segments(list_id)
            absent = [name for name in names if name not in known]
            created = await asyncio.gather(*(self._create_tag(list_id, name) for name in absent))
            known = dict(known)
            known.update(
                (name, segment_id)
                for name, segment_id in zip(absent, created, strict=True)
                if segment_id is not None
            )
            self._segments.put(self._api_key, list_id, known)
            if any(segment_id is None for segment_id in created):
                # Another worker may have created the same tag a moment ago (Mailchimp then
                # refuses the duplicate name): read the list again before giving up on it.
                known = await self._read_tag_segments(list_id)
            return {name: known[name] for name in names if name in known}

    async def _read_tag_segments(self, list_id: str) -> dict[str, int]:
        known = {
            str(segment.get("name")): int(segment["id"])
            async for segment in self._api.paginate(
                f"/lists/{list_id}/segments",
                "segments",
                fields="segments.id,segments.name",
                params={"type": "static"},
            )
        }
        self._segments.put(self._api_key, list_id, known)
        return known

    async def _create_tag(self, list_id: str, name: str) -> int | None:
        try:
            segment = await self._api.request(
                "POST", f"/lists/{list_id}/segments", json={"name": name, "static_segment": []}
            )
        except MailchimpRequestError as exc:
            logger.warning("mailchimp.tag_not_created", extra={"tag": name, "reason": exc.message})
            return None
        return int(segment["id"])

    async def tag_one(self, list_id: str, email: str, tags: Sequence[str]) -> str | None:
        """Activate `tags` through the member tags endpoint; a reason on permanent failure."""
        try:
            await self.set_tags(list_id, email, add=tags, remove=())
        except MailchimpRequestError as exc:
            return describe(exc.error_body if isinstance(exc.error_body, dict) else None) or (
                exc.message
            )
        return None

    async def set_tags(
        self, list_id: str, email: str, add: Sequence[str], remove: Sequence[str]
    ) -> None:
        tags = [{"name": name, "status": "active"} for name in dict.fromkeys(add)]
        tags += [{"name": name, "status": "inactive"} for name in dict.fromkeys(remove)]
        if not tags:
            return
        # is_syncing: a data sync must not trigger tag-based automations in Mailchimp.
        await self._api.request(
            "POST",
            f"/lists/{list_id}/members/{subscriber_hash(email)}/tags",
            json={"tags": tags, "is_syncing": True},
        )


def missing_tags(member: dict[str, Any], wanted: Sequence[str]) -> list[str]:
    """The wanted tags the member's returned tags lack; all of them when the embedded view is
    capped (more than 50 tags), since then it cannot tell."""
    if not wanted:
        return []
    embedded = member.get("tags")
    has: set[str] = set()
    if isinstance(embedded, list) and int(member.get("tags_count") or 0) <= len(embedded):
        has = {str(tag.get("name")) for tag in embedded if isinstance(tag, dict)}
    return [tag for tag in dict.fromkeys(wanted) if tag not in has]
