"""onOffice signatures: HMAC v2 of API actions and the signed URLs of the Marketplace.

API actions are signed with `base64(HMAC-SHA256(secret, timestamp + token + resourcetype +
actionid))`. URLs that onOffice opens (activation page, service iframe, webhooks) carry a
`signature` query parameter: lowercase-hex HMAC-SHA256 of `base_url + "?" + query`, where the
query is PHP's `http_build_query` of all other parameters sorted by key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote_plus

SIGNATURE_PARAM = "signature"

UrlParams = Mapping[str, str] | Sequence[tuple[str, str]]


def hmac_v2(token: str, secret: str, timestamp: int, resourcetype: str, actionid: str) -> str:
    """The `hmac` of one API action (`hmac_version` "2")."""
    message = f"{timestamp}{token}{resourcetype}{actionid}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def php_urlencode(s: str) -> str:
    """PHP `urlencode`: space -> `+`, everything but `[A-Za-z0-9_.-]` percent-encoded."""
    # quote_plus keeps "~" unescaped (RFC 3986); PHP encodes it.
    return quote_plus(s, safe="").replace("~", "%7E")


def _pairs(params: UrlParams) -> list[tuple[str, str]]:
    items: Iterable[tuple[str, str]] = params.items() if isinstance(params, Mapping) else params
    # PHP's parse_str keeps the last occurrence of a repeated key.
    merged = {key: value for key, value in items if key != SIGNATURE_PARAM}
    # Byte order of the UTF-8 keys, as PHP's ksort does ("UserLanguage" < "apiClaim").
    return sorted(merged.items(), key=lambda kv: kv[0].encode())


def canonical_url(base_url: str, params: UrlParams) -> str:
    """The string onOffice signs: `base_url?k1=v1&k2=v2` sorted by key, `signature` removed."""
    query = "&".join(f"{php_urlencode(k)}={php_urlencode(v)}" for k, v in _pairs(params))
    return f"{base_url}?{query}"


def _hex_hmac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_url_params(base_url: str, params: UrlParams, secret: str) -> str:
    """The `signature` value (lowercase hex) for these URL parameters."""
    return _hex_hmac(secret, canonical_url(base_url, params))


def verify_url_signature(base_url: str, params: UrlParams, secret: str) -> bool:
    """Check the `signature` among `params` (already URL-decoded) in constant time.

    `base_url` must be the public `scheme://host[:port]/path` registered with onOffice, not
    the URL seen behind a proxy. Timestamp freshness and replay protection are the caller's job.
    """
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    signatures = [value for key, value in items if key == SIGNATURE_PARAM]
    if not signatures or not secret:
        return False
    given = signatures[-1].strip().lower().encode()
    canonical = canonical_url(base_url, items)
    # Some providers found onOffice signing a literal "+" where PHP would send "%2B"; accept both.
    candidates = {canonical, canonical.replace("%2B", "+")}
    ok = False
    for candidate in candidates:
        # No short-circuit, so timing does not reveal which variant matched.
        ok |= hmac.compare_digest(_hex_hmac(secret, candidate).encode(), given)
    return ok
