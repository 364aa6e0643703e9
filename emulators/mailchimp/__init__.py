"""Mailchimp Marketing API v3 emulator (the parts the connector uses), as an ASGI app.

Serves under `/3.0` like `https://<dc>.api.mailchimp.com/3.0`: Basic auth with seeded keys, each
a key of one account (`MailchimpState.add_account`; the default account otherwise) that sees
only its account's lists (another account's list id is a 404), merge fields, members
(PUT/GET/PATCH/DELETE=archive, delete-permanent), batch subscribe with per-member errors, tags,
static segments (= tags: the same store, so a tag set through one shows through the other),
webhooks (URL checked with a GET), problem+json errors, the 10-connection limit (per key),
latency and fault injection. Every request is validated against the Mailchimp OpenAPI spec; a
violation is answered 400 and counted.

One module per resource (`lists`, `members`, `batches`, `segments`, `webhooks`), the state in
`state`, the control API (no auth, `/_control/`) in `control`; the request pipeline around them
is `emulators._kit`'s, put together in `app`. Run standalone with
`python -m emulators.mailchimp --port 8025 --api-key <key>-us1`.
"""

from emulators.mailchimp.app import create_app, main
from emulators.mailchimp.common import ApiError, problem
from emulators.mailchimp.state import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_API_KEY,
    SPEC_PATH,
    Fault,
    MailchimpAccount,
    MailchimpList,
    MailchimpState,
    Member,
    check_url_with_get,
    subscriber_hash,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_API_KEY",
    "SPEC_PATH",
    "ApiError",
    "Fault",
    "MailchimpAccount",
    "MailchimpList",
    "MailchimpState",
    "Member",
    "check_url_with_get",
    "create_app",
    "main",
    "problem",
    "subscriber_hash",
]
