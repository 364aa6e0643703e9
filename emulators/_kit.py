"""What the HTTP emulators share: the request pipeline, the control routes and `main`.

An emulator module holds its API's resources and behaviour; this module holds what happens
around every request. The real APIs check things in different orders (Brevo validates before
it looks at the key, Mailchimp the other way round), so the pipeline is a list of steps that
each emulator puts in its own order:

- `Call`: one request on its way through the steps (raw body, who sent it, the fault it drew).
- `Pipeline`: runs the steps; the first step that answers ends the request, else the handler
  answers. Clean-ups a step registers (a connection slot) run when the request ends.
- the steps: `read_body`, `count`, `check_spec` (against shared/specs via `_openapi`),
  `authenticate`, `cap_connections`, `draw_fault`/`answer_fault`/`inject_fault`, `pause`
  (latency model) and `parse_json`.
- `take_fault`: the first matching injected fault, used up one request at a time.
- `Control`: the `/_control/` routes (no auth); a handler gets the emulator's state.
- `build_app`, `parser` and `run`: the Starlette app and the `python -m emulators.X` CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators._openapi import OpenAPIRequestValidator

logger = logging.getLogger(__name__)


@dataclass
class Call:
    """One API request while the steps look at it."""

    request: Request
    state: Any
    raw: bytes = b""
    principal: Any = None  # what `authenticate` found (a key, an account)
    body: Any = None  # what `parse_json` found
    fault: Any = None  # what `draw_fault` drew
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.url.path


Step = Callable[[Call], Awaitable[Response | None]]
Handler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class Pipeline:
    """The steps of one emulator's API, in that API's order, then the handler."""

    def __init__(self, state_name: str, steps: Sequence[Step]) -> None:
        self.state_name = state_name
        self.steps = list(steps)

    async def run(self, request: Request, handler: Handler) -> Response:
        call = Call(request, getattr(request.app.state, self.state_name))
        try:
            for step in self.steps:
                answer = await step(call)
                if answer is not None:
                    return answer
            return await handler(call)
        finally:
            for undo in reversed(call.cleanup):
                undo()

    def endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self.run(request, handler)

        return endpoint


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


async def read_body(call: Call) -> None:
    call.raw = await call.request.body()


def count(key: Callable[[Call], str]) -> Step:
    """Count the request in `state.request_counts` (a dict or a Counter) under `key(call)`."""

    async def step(call: Call) -> None:
        counts = call.state.request_counts
        name = key(call)
        counts[name] = counts.get(name, 0) + 1

    return step


def check_spec(
    validator: Callable[[Call], OpenAPIRequestValidator | None],
    violations: Callable[[Any], list[str]],
    reject: Callable[[list[str]], Response],
    *,
    enabled: Callable[[Any], bool] = lambda state: True,
    log_as: str | None = None,
) -> Step:
    """Validate the request (method, path, query, headers, body) against the API's OpenAPI
    spec; violations are kept in `violations(state)` and answered with `reject`."""

    async def step(call: Call) -> Response | None:
        checker = validator(call)
        if checker is None or not enabled(call.state):
            return None
        request = call.request
        problems = checker.validate(
            request.method,
            request.url.path,
            request.url.query,
            request.headers,
            call.raw,
            request.headers.get("content-type"),
        )
        if not problems:
            return None
        violations(call.state).extend(problems)
        if log_as:
            logger.warning("%s %s", log_as, problems)
        return reject(problems)

    return step


def spec_validator(spec_path: Any, server_prefix: str) -> OpenAPIRequestValidator | None:
    """The validator of a spec file, or None (requests go unchecked) when the file is missing."""
    if not spec_path.exists():
        logger.warning("emulator.no_spec %s: requests are not validated", spec_path)
        return None
    return OpenAPIRequestValidator(spec_path, server_prefix=server_prefix)


def authenticate(resolve: Callable[[Call], Any]) -> Step:
    """`resolve` returns who sent the request (kept as `call.principal`) or a refusal."""

    async def step(call: Call) -> Response | None:
        found = resolve(call)
        if isinstance(found, Response):
            return found
        call.principal = found
        return None

    return step


class ConnectionCounts(Protocol):
    active: Counter[str]
    max_concurrency: int
    max_connections: int
    concurrency_rejections: int


def cap_connections(reject: Callable[[int], Response]) -> Step:
    """At most `state.max_connections` requests in flight per credential (`call.principal`);
    the highest count seen and the refusals are kept on the state."""

    async def step(call: Call) -> Response | None:
        state: ConnectionCounts = call.state
        bucket = hashlib.sha256(str(call.principal).encode()).hexdigest()
        state.active[bucket] += 1

        def release() -> None:
            state.active[bucket] -= 1

        call.cleanup.append(release)
        in_flight = state.active[bucket]
        state.max_concurrency = max(state.max_concurrency, in_flight)
        if in_flight > state.max_connections:
            state.concurrency_rejections += 1
            return reject(state.max_connections)
        return None

    return step


class Countdown(Protocol):
    remaining: int


F = TypeVar("F", bound=Countdown)


def fault_count(payload: dict[str, Any]) -> int:
    """A control call's `count` (default 1): how many requests the fault answers, at least 1."""
    count = int(payload.get("count", 1))
    if count < 1:
        raise ValueError("count must be at least 1")
    return count


def take_fault(faults: list[F], matches: Callable[[F], bool]) -> F | None:
    """The first fault that matches, used once: it leaves the list when its count is spent."""
    for fault in faults:
        if fault.remaining > 0 and matches(fault):
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.remove(fault)
            return fault
    return None


def draw_fault(matches: Callable[[Any, Call], bool]) -> Step:
    """Draw the request's fault from `state.faults` now (`answer_fault` answers it later)."""

    async def step(call: Call) -> None:
        call.fault = take_fault(call.state.faults, lambda fault: matches(fault, call))

    return step


def answer_fault(render: Callable[[Any], Awaitable[Response]]) -> Step:
    async def step(call: Call) -> Response | None:
        return None if call.fault is None else await render(call.fault)

    return step


def inject_fault(
    matches: Callable[[Any, Call], bool], render: Callable[[Any], Awaitable[Response]]
) -> list[Step]:
    """Draw and answer a fault at the same point of the pipeline."""
    return [draw_fault(matches), answer_fault(render)]


async def sleep_for(seconds: float, per_item: float = 0.0, items: int = 0) -> None:
    """The latency model: a fixed time per request plus a time per item in it."""
    delay = seconds + per_item * items
    if delay > 0:
        await asyncio.sleep(delay)


def pause(seconds: Callable[[Call], float]) -> Step:
    async def step(call: Call) -> None:
        await sleep_for(seconds(call))

    return step


def parse_json(
    *, empty: Callable[[], Any] = lambda: None, invalid: Callable[[], Response] | None = None
) -> Step:
    """`call.body` from the raw body; malformed JSON is answered with `invalid` (or raises)."""

    async def step(call: Call) -> Response | None:
        if not call.raw:
            call.body = empty()
            return None
        try:
            call.body = json.loads(call.raw)
        except ValueError:
            if invalid is None:
                raise
            return invalid()
        return None

    return step


# ---------------------------------------------------------------------------------------------
# Control routes, app and CLI
# ---------------------------------------------------------------------------------------------

ControlHandler = Callable[[Any, Request], Awaitable[Any]]


class Control:
    """The `/_control/` routes of one emulator (no auth). A handler gets (state, request) and
    returns a Response or JSON-able data; a KeyError, ValueError or TypeError it raises (a
    missing or malformed field) is answered 422."""

    def __init__(self, state_name: str) -> None:
        self.state_name = state_name
        self.routes: list[Route] = []

    def route(self, path: str, *methods: str) -> Callable[[ControlHandler], ControlHandler]:
        def register(handler: ControlHandler) -> ControlHandler:
            async def endpoint(request: Request) -> Response:
                try:
                    answer = await handler(getattr(request.app.state, self.state_name), request)
                except (KeyError, ValueError, TypeError) as exc:  # a malformed control call
                    message = f"malformed control call: {type(exc).__name__}: {exc}"
                    return JSONResponse({"error": message}, status_code=422)
                return answer if isinstance(answer, Response) else JSONResponse(answer)

            self.routes.append(Route("/_control" + path, endpoint, methods=list(methods)))
            return handler

        return register


async def json_object(request: Request) -> dict[str, Any]:
    """A control call's JSON body; {} when it is empty or not an object."""
    raw = await request.body()
    data = json.loads(raw) if raw else {}
    return data if isinstance(data, dict) else {}


def query_flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name, "").lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    return default


def apply_settings(target: Any, data: dict[str, Any], names: Iterable[str]) -> None:
    """Set the attributes `names` of `target` that `data` carries."""
    for name in names:
        if name in data:
            setattr(target, name, data[name])


def build_app(state_name: str, state: Any, routes: Sequence[Route], control: Control) -> Starlette:
    app = Starlette(routes=[*routes, *control.routes])
    setattr(app.state, state_name, state)
    return app


def parser(module: str, description: str, port: int) -> argparse.ArgumentParser:
    """The CLI of `python -m emulators.<module>`: `--host`, `--port` and the emulator's own
    flags (added by the caller)."""
    p = argparse.ArgumentParser(prog=f"python -m emulators.{module}", description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=port)
    return p


def run(app: Starlette, args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
