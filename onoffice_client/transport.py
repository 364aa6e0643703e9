"""The signed action transport of the onOffice API: actions signed with HMAC v2 (and the
marketplace `extendedclaim`), several per HTTP request, transport failures and 5xx retried with
backoff (a request that creates only when it cannot have been applied), and each answer checked
per action. `OnOfficeClient` builds the actions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from onoffice_client.errors import error_for
from onoffice_client.models import OnOfficeAccessLost, OnOfficeError, OnOfficeTransientError
from onoffice_client.signature import hmac_v2

logger = logging.getLogger("onoffice_client.client")

_T = TypeVar("_T")

_URN = "urn:onoffice-de-ns:smart:2.5:smartml:action:"
READ = _URN + "read"
CREATE = _URN + "create"
MODIFY = _URN + "modify"
GET = _URN + "get"
DO = _URN + "do"


@dataclass(frozen=True)
class Action:
    actionid: str
    resourcetype: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    resourceid: str | int = ""
    identifier: str = ""


# Requests whose repetition changes nothing are retried after any transport failure or 5xx. A
# request that creates (or `do`es) something is sent again only when it cannot have reached
# onOffice: no connection, or a 503. After a timeout or a 500/502/504 it may have been
# applied, and sending it again would create a second address or activity; the caller gets
# `OnOfficeTransientError(maybe_applied=True)` and checks before it tries again.
IDEMPOTENT_VERBS = frozenset({READ, GET, MODIFY})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_NOT_PROCESSED_STATUS = frozenset({503})


def _may_resend(exc: BaseException, idempotent: bool) -> bool:
    """Whether a request that failed with `exc` is sent again (`idempotent`: it only reads or
    modifies)."""
    if isinstance(exc, _RetryableHTTPError):
        return idempotent or exc.status_code in _NOT_PROCESSED_STATUS
    if isinstance(exc, httpx.TransportError):
        return idempotent or isinstance(exc, _NOT_SENT)
    return False


def _maybe_applied(exc: BaseException, idempotent: bool) -> bool:
    return not idempotent and not _may_resend(exc, False)


class _RetryableHTTPError(Exception):
    """An HTTP 5xx answer; turned into OnOfficeTransientError when retries run out."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"onOffice answered HTTP {status_code}")
        self.status_code = status_code


class ActionTransport:
    """Sends actions for one API user (token and secret) of one onOffice customer."""

    def __init__(
        self,
        *,
        api_url: str,
        token: str,
        secret: str,
        claim: str | None,
        http: httpx.AsyncClient | None,
        max_retries: int,
        actions_per_request: int,
        timeout: float,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self._api_url = api_url
        self._token = token
        self._secret = secret
        self._claim = claim
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))
        self._max_retries = max_retries
        self._actions_per_request = max(1, actions_per_request)
        self._timeout = timeout
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        # Work to do before the first action (e.g. load the claim and the scope), once.
        self.setup: Callable[[Any], Awaitable[None]] | None = None
        self._setup_lock = asyncio.Lock()
        # Told when onOffice refuses the API user as such (`OnOfficeAccessLost`: the provider
        # locked, the customer or the API user gone), before the error is raised.
        self.on_access_lost: Callable[[OnOfficeError], Awaitable[None]] | None = None

    async def ensure_ready(self) -> None:
        """Run `setup` once before the first action (concurrent callers wait for it; a setup
        that fails runs again on the next call). The setup must not send through this client."""
        if self.setup is None:
            return
        async with self._setup_lock:
            if self.setup is not None:
                await self.setup(self)
                self.setup = None

    def use_claim(self, claim: str | None) -> None:
        """The `extendedclaim` of every action from now on."""
        self._claim = claim

    async def __aenter__(self) -> ActionTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _run(self, actions: Sequence[Action]) -> list[dict[str, Any]]:
        """Send the actions, several per HTTP request; results in order, errors raised typed."""
        try:
            await self.ensure_ready()
            results: list[dict[str, Any]] = []
            for batch in chunks(actions, self._actions_per_request):
                results.extend(await self._send(batch))
            return results
        except OnOfficeAccessLost as exc:
            await self._report_access_lost(exc)
            raise

    async def _report_access_lost(self, exc: OnOfficeError) -> None:
        if self.on_access_lost is not None:
            await self.on_access_lost(exc)

    async def run_each(self, actions: Sequence[Action]) -> list[dict[str, Any] | OnOfficeError]:
        """Send the actions, several per HTTP request, and return each action's own outcome: its
        result, or the typed error onOffice reported for that action alone (the others of the
        request are not affected). A request that fails as a whole (transport, 5xx, a top-level
        error such as "not authenticated") still raises; actions of the requests before it were
        applied, which the caller learns from `RequestsFailed.done`."""
        try:
            await self.ensure_ready()
        except OnOfficeAccessLost as exc:
            await self._report_access_lost(exc)
            raise
        outcomes: list[dict[str, Any] | OnOfficeError] = []
        for batch in chunks(actions, self._actions_per_request):
            try:
                response = await self._post_with_retries(batch)
                answered = _action_outcomes(response, batch)
            except OnOfficeError as exc:
                if isinstance(exc, OnOfficeAccessLost):
                    await self._report_access_lost(exc)
                raise RequestsFailed(outcomes, exc) from exc
            if answered and all(isinstance(o, OnOfficeAccessLost) for o in answered):
                # Every action refused the same way (the in-band reading of a lock).
                await self._report_access_lost(answered[0])  # type: ignore[arg-type]
            outcomes.extend(answered)
        return outcomes

    async def _send(self, actions: Sequence[Action]) -> list[dict[str, Any]]:
        return _check_response(await self._post_with_retries(actions), actions)

    async def _post_with_retries(self, actions: Sequence[Action]) -> httpx.Response:
        idempotent = all(action.actionid in IDEMPOTENT_VERBS for action in actions)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=wait_exponential_jitter(
                initial=self._backoff_initial,
                max=self._backoff_max,
                jitter=self._backoff_initial,
            ),
            retry=retry_if_exception(lambda exc: _may_resend(exc, idempotent)),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    # Rebuilt per attempt: the timestamp (and so the HMAC) must be fresh.
                    body = self._envelope(actions)
                    response = await self._post(body)
        except httpx.TransportError as exc:
            raise OnOfficeTransientError(
                f"onOffice is unreachable ({type(exc).__name__}); will retry later",
                maybe_applied=_maybe_applied(exc, idempotent),
            ) from exc
        except _RetryableHTTPError as exc:
            raise OnOfficeTransientError(
                f"onOffice answered HTTP {exc.status_code}; will retry later",
                maybe_applied=_maybe_applied(exc, idempotent),
            ) from exc
        return response

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            # An overall deadline: httpx timeouts are per network operation, and not every
            # transport (e.g. in-process ASGI) enforces them.
            async with asyncio.timeout(self._timeout):
                response = await self._http.post(
                    self._api_url,
                    json=body,
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                )
        except TimeoutError as exc:
            raise httpx.ReadTimeout("onOffice did not answer in time") from exc
        if response.status_code >= 500:
            raise _RetryableHTTPError(response.status_code)
        return response

    def _envelope(self, actions: Sequence[Action]) -> dict[str, Any]:
        timestamp = int(time.time())
        return {
            "token": self._token,
            "request": {"actions": [self._signed(action, timestamp) for action in actions]},
        }

    def _signed(self, action: Action, timestamp: int) -> dict[str, Any]:
        params = dict(action.parameters)
        if self._claim:
            params["extendedclaim"] = self._claim
        return {
            "actionid": action.actionid,
            "resourceid": action.resourceid,
            "resourcetype": action.resourcetype,
            "identifier": action.identifier,
            "timestamp": timestamp,
            "hmac": hmac_v2(
                self._token, self._secret, timestamp, action.resourcetype, action.actionid
            ),
            "hmac_version": "2",
            "parameters": dict(sorted(params.items())),
        }


def _log_retry(retry_state: Any) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    logger.warning(
        "onoffice.retry",
        extra={"attempt": retry_state.attempt_number, "error": type(exc).__name__},
    )


class RequestsFailed(OnOfficeError):
    """`run_each`: a request failed as a whole; `done` holds the outcomes of the actions sent
    (and answered) before it, `error` what failed."""

    def __init__(self, done: list[dict[str, Any] | OnOfficeError], error: OnOfficeError) -> None:
        super().__init__(str(error), errorcode=error.errorcode)
        self.done = done
        self.error = error


def _action_outcomes(
    response: httpx.Response, actions: Sequence[Action]
) -> list[dict[str, Any] | OnOfficeError]:
    """Each action's result or its own error; a failure of the whole request raises."""
    try:
        return list(_check_response(response, actions))
    except OnOfficeError as exc:
        error = exc
    # One or more actions failed: onOffice ran the others (each action stands alone).
    try:
        payload = response.json()
    except ValueError:
        raise error from None
    body = payload.get("response") if isinstance(payload, Mapping) else None
    raw = body.get("results") if isinstance(body, Mapping) else None
    results = [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []
    failed = [
        r for r in results if isinstance(r.get("status"), Mapping) and r["status"].get("errorcode")
    ]
    if len(results) != len(actions) or not failed:
        raise error  # the request failed as a whole
    outcomes: list[dict[str, Any] | OnOfficeError] = []
    for action, result in zip(actions, results, strict=True):
        status = result.get("status")
        code = as_int(status.get("errorcode")) if isinstance(status, Mapping) else 0
        if code:
            text = str(status.get("message") or "") if isinstance(status, Mapping) else ""
            outcomes.append(error_for(code, text, context=describe(action)))
        else:
            outcomes.append(dict(result))
    return outcomes


def _check_response(response: httpx.Response, actions: Sequence[Action]) -> list[dict[str, Any]]:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, Mapping):
        raise OnOfficeError(f"onOffice answered HTTP {response.status_code} without a JSON body")
    raw_status = payload.get("status")
    status: Mapping[str, Any] = raw_status if isinstance(raw_status, Mapping) else {}
    top_code = as_int(status.get("errorcode"))
    message = str(status.get("message") or "")
    body = payload.get("response")
    raw_results = body.get("results") if isinstance(body, Mapping) else None
    results = [r for r in raw_results if isinstance(r, Mapping)] if raw_results else []
    # Per-action errors come first: a top-level 97 only says "see the results".
    for action, result in zip(actions, results, strict=False):
        result_status = result.get("status")
        if isinstance(result_status, Mapping) and (code := as_int(result_status.get("errorcode"))):
            text = str(result_status.get("message") or "")
            raise error_for(code, text, context=describe(action))
    if top_code and top_code != 97:
        raise error_for(top_code, message)
    http_code = as_int(status.get("code")) or response.status_code
    if http_code >= 500:
        raise OnOfficeTransientError(f"onOffice reported a server error: {message or http_code}")
    if http_code >= 400 or response.status_code >= 400:
        raise error_for(22 if http_code == 400 else 0, message or f"HTTP {http_code}")
    if len(results) != len(actions):
        raise OnOfficeError(
            f"onOffice returned {len(results)} results for {len(actions)} actions"
            + (f": {message}" if message else "")
        )
    return [dict(r) for r in results]


def chunks(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def describe(action: Action) -> str:
    verb = action.actionid.rsplit(":", 1)[-1]
    target = f" {action.resourceid}" if action.resourceid not in ("", None) else ""
    return f"{verb} {action.resourcetype}{target}"


def as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
