"""The full-sync benchmark's oracle: what a correct run must produce, computed from the onOffice
emulator's own records, independently of the connector, and the differences from it.

The consent rules it follows (README "Consent comes first", one person across duplicates): a
person is a normalised email (case and surrounding spaces ignored) with all of its onOffice
addresses; on a first sync every value is first seen, so an active address with No or
Cancellation opts the person out even when another address says Yes ("a No or Cancellation
first seen beats a Yes first seen"). Such a person is counted once as opted out, never
subscribed, and its Yes addresses are set to No in onOffice; "not specified", "double opt-in
pending" and archived addresses do not speak for the person. Everyone else with a Yes is
subscribed with the tags of its first Yes address in KdNr order; later Yes addresses of the same
email are duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from bench.model import Expectation
from bench.stack import BREVO_KEY

# Kept in step with emulators.onoffice_data._INVALID_EMAILS (the generator's invalid values).
INVALID_EMAILS = {"max.mustermann@", "kein email", "a@b", "@example.de", "müller at web.de"}
OPT_OUT_VALUES = ("0", "2")  # newsletter_aktiv No, Cancellation


def person_key(raw: Any) -> str:
    return str(raw or "").strip().lower()


def expected_outcome(addresses: list[dict[str, Any]]) -> Expectation:
    active = [
        a for a in sorted(addresses, key=lambda a: a["id"]) if str(a.get("Status", "1")) == "1"
    ]
    subscribed = [a for a in active if str(a.get("newsletter_aktiv")) == "1"]
    opt_outs = {
        person_key(a.get("Email"))
        for a in active
        if str(a.get("newsletter_aktiv")) in OPT_OUT_VALUES
    }
    e = Expectation(total=len(subscribed))
    seen: set[str] = set()
    for a in subscribed:
        email = person_key(a.get("Email"))
        if not email:
            e.missing += 1
            continue
        if email in INVALID_EMAILS:
            e.invalid += 1
            continue
        opted_out = email in opt_outs
        e.set_to_no += opted_out
        if email in seen:
            e.duplicates += 1
            continue
        seen.add(email)
        if opted_out:
            e.opted_out += 1
        else:
            e.tags[email] = sorted(str(t) for t in a.get("NewsletterTag") or [])
    e.unique = len(e.tags)
    e.invalid += e.missing  # the connector's invalid_emails includes missing ones
    return e


async def provider_state_problems(
    client: httpx.AsyncClient, provider: str, url: str, e: Expectation
) -> list[str]:
    """Differences between the provider emulator's final state and the expectation: every
    person to subscribe subscribed, nobody else (opted-out people included), and (Mailchimp)
    exactly the owner's tags."""
    problems: list[str] = []
    state: dict[str, Any]
    if provider == "mailchimp":
        lists = (await client.get(f"{url}/_control/lists")).json()
        items = lists.get("lists", lists) if isinstance(lists, dict) else lists
        list_id = next(str(x["id"]) for x in items if x.get("name") == "onoffice")
        members = (await client.get(f"{url}/_control/lists/{list_id}/members")).json()["members"]
        state = {
            str(m["email"]).lower(): (m["status"], sorted(m.get("tags") or [])) for m in members
        }
        for email, tags in e.tags.items():
            got = state.pop(email, None)
            if got != ("subscribed", tags):
                problems.append(f"{email}: expected subscribed {tags}, found {got}")
    else:
        contacts = (await client.get(f"{url}/_control/accounts/{BREVO_KEY}/contacts")).json()
        state = {
            str(c["email"]).lower(): (bool(c.get("emailBlacklisted")), bool(c.get("listIds")))
            for c in contacts
        }
        for email in e.tags:
            got = state.pop(email, None)
            if got != (False, True):
                problems.append(f"{email}: expected in the list, found {got}")
    problems += [f"{email}: not expected at the provider" for email in list(state)[:20]]
    return problems


def balance(c: Mapping[str, Any]) -> int:
    """The run's outcomes per address read (the API's `reconciled` compares it with the total)."""
    keys = ("synced", "duplicates", "invalid_emails", "rejected", "opted_out")
    keys += ("pending_optin", "bounced", "archived")
    return sum(int(c[k]) for k in keys)


def count_mismatches(c: Mapping[str, Any], e: Expectation) -> list[str]:
    """The run's counts against the expectation (empty: they match). The run writes the
    opted-out people's No onto their other Yes addresses only once it has read every page, so
    its own write-backs change nothing it reads: every count is exact."""
    found: list[str] = []
    pairs = {
        "newsletter total": (c["onoffice_newsletter_total"], e.total),
        "duplicates": (c["duplicates"], e.duplicates),
        "synced + rejected": (c["synced"] + c["rejected"], e.unique),
        "opted out": (c["opted_out"], e.opted_out),
        "invalid emails": (c["invalid_emails"], e.invalid),
    }
    found += [f"{name} {got}, expected {want}" for name, (got, want) in pairs.items() if got - want]
    if balance(c) != c["onoffice_newsletter_total"] or not c["reconciled"]:
        found.append(f"counts do not reconcile (reconciled={c['reconciled']})")
    return found
