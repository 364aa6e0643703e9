"""onOffice refusing a connection's access: the provider locked or the Marketplace
subscription cancelled, the customer's API user deleted or deactivated.

Noticed: onOffice answers the customer's API user with "not authenticated" (22), "customer
unknown/inactive" (41/42) or "user unknown/inactive" (43/104). onOffice documents neither
which code a lock gives nor whether it comes as a top-level error or as each action's own;
every one of these readings counts (`OnOfficeAccessLost`, onoffice_client/errors.py), a
top-level status 400 without a code too. The connection's onOffice client reports it
(`on_access_lost`, set by app/connections/onoffice_access.py) and it is recorded here
(`onoffice_access`), whichever job made the call.

Stopped while refused: the polls (except the re-check below), the onOffice "address saved"
pushes to this connection, the drain of its provider webhooks (the events stay stored and
pending, no try is counted, so none is given up), the reconciliation, and new full syncs
(409). Provider webhooks are still received, and their health check goes on. The status
(`GET /api/v1/status`, the page) says so, in the user's language.

Resumed: every ONOFFICE_ACCESS_RECHECK_S the scheduler's poll first makes one cheap call
(`get fields`); a user's "check for changes now" does it at once; a new activation clears the
refusal, and a user opening the connector (a fresh claim) has the next scheduler round check.
When onOffice answers, the poll goes on and the webhook drain starts again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from app.connections.repository import OnOfficeAccessRepository
from app.db.base import aware, utcnow
from app.inbox import owner
from app.resources import Resources
from onoffice_client.client import OnOfficeClient
from onoffice_client.models import OnOfficeAccessLost, OnOfficeError, OnOfficeTransientError

log = logging.getLogger(__name__)


async def record_refused(resources: Resources, connection_id: int, exc: OnOfficeError) -> None:
    """onOffice refused the connection's API user: its onOffice jobs stop."""
    async with resources.transaction() as session:
        first = await OnOfficeAccessRepository.from_session(session).record_refused(
            connection_id, exc.errorcode, exc.message[:2000], utcnow()
        )
    if first:
        log.warning(
            "onoffice.access_refused",
            extra={"connection_id": connection_id, "errorcode": exc.errorcode},
        )


async def is_refused(resources: Resources, connection_id: int) -> bool:
    async with resources.sessionmaker() as session:
        found = await OnOfficeAccessRepository.from_session(session).get(connection_id)
    return found is not None


def recheck_due(checked_at: datetime | None, now: datetime, interval_s: float) -> bool:
    """Whether a refused connection is checked again now."""
    last = aware(checked_at)
    return last is None or now - last >= timedelta(seconds=interval_s)


async def check_access(resources: Resources, connection_id: int, onoffice: OnOfficeClient) -> bool:
    """One cheap onOffice call: True when onOffice lets the API user in again (the refusal is
    cleared and the connection's webhook drain started); False while it still refuses or
    cannot be asked."""
    try:
        await onoffice.get_fields(["newsletter_aktiv"])
    except OnOfficeAccessLost:
        return False  # recorded again by the client's report (the check's time moves on)
    except OnOfficeTransientError:
        return False
    except OnOfficeError:
        pass  # another answer (e.g. a claim to refresh): the API user itself is accepted
    await restore(resources, [connection_id])
    return True


async def restore(resources: Resources, connection_ids: list[int]) -> None:
    """onOffice accepts the access again: the connections' jobs run again, and what their
    provider webhooks brought meanwhile is applied now."""
    async with resources.transaction() as session:
        cleared = await OnOfficeAccessRepository.from_session(session).clear(connection_ids)
    if not cleared:
        return
    for connection_id in connection_ids:
        log.warning("onoffice.access_restored", extra={"connection_id": connection_id})
        await owner.kick(resources, connection_id)
