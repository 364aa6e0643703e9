"""The Mailchimp emulator's app: the request pipeline (from emulators._kit, in Mailchimp's
order), the route table and `main`."""

from __future__ import annotations

import base64
from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from emulators import _kit
from emulators.mailchimp import batches, lists, members, segments, webhooks
from emulators.mailchimp.common import ApiError, Handler, problem
from emulators.mailchimp.control import control
from emulators.mailchimp.state import SPEC_PATH, Fault, MailchimpState


def _api_key(call: _kit.Call) -> str | Response:
    header = call.request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    key: str | None = None
    if scheme.lower() == "basic":
        try:
            key = base64.b64decode(value).decode().partition(":")[2]
        except ValueError:
            key = None
    elif scheme.lower() in ("bearer", "apikey"):
        key = value
    if key is None or key not in call.state.api_keys:
        return problem(
            401,
            "API Key Invalid",
            "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
        )
    return key


def _too_many(limit: int) -> Response:
    return problem(
        429,
        "Too Many Requests",
        f"You have exceeded the limit of {limit} simultaneous connections.",
    )


def _route_name(call: _kit.Call) -> str:
    route = call.request.scope.get("route")
    return f"{call.method} {getattr(route, 'path', call.path)}"


def _nonconforming(violations: list[str]) -> Response:
    return problem(
        400,
        "Invalid Resource",
        "The request does not conform to the Mailchimp API specification.",
        [{"field": "", "message": v} for v in violations],
    )


async def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
    if fault.bodiless:
        return Response(status_code=fault.status, headers=headers)
    titles = {
        400: "Invalid Resource",
        429: "Too Many Requests",
        403: "Forbidden",
        500: "Internal Server Error",
    }
    response = problem(
        fault.status,
        titles.get(fault.status, "Service Unavailable"),
        "Injected fault: the emulator was told to fail this request.",
    )
    response.headers.update(headers)
    return response


def _unparsable() -> Response:
    return problem(400, "JSON Parse Exception", "We encountered an unspecified JSON parsing error.")


def pipeline(validator: Any) -> _kit.Pipeline:
    """Key, connection cap (10 per key), count, fault drawn, spec, latency, fault answered, JSON."""
    return _kit.Pipeline(
        "mailchimp",
        [
            _kit.authenticate(_api_key),
            _kit.cap_connections(_too_many),
            _kit.count(_route_name),
            _kit.draw_fault(lambda fault, call: fault.matches(call.method, call.path)),
            _kit.read_body,
            _kit.check_spec(
                lambda call: validator,
                lambda state: state.spec_violations,
                _nonconforming,
                enabled=lambda state: state.validate_spec,
                log_as="mailchimp_emulator.spec_violation",
            ),
            _kit.pause(lambda call: call.state.latency_s),
            _answer_fault_before,
            _kit.parse_json(invalid=_unparsable),
        ],
    )


async def _answer_fault_before(call: _kit.Call) -> Response | None:
    """A drawn fault answers instead of the handler, unless it is one `after` the handler."""
    fault: Fault | None = call.fault
    return None if fault is None or fault.after else await _fault_response(fault)


def _handle(handler: Handler) -> _kit.Handler:
    async def run(call: _kit.Call) -> Response:
        try:
            account = call.state.account_of(call.principal)  # the key's account
            response = await handler(call.state, account, call.request, call.body)
        except ApiError as exc:
            response = problem(exc.status, exc.title, exc.detail, exc.errors)
        if call.fault is not None and call.fault.after:
            return await _fault_response(call.fault)  # done, but the answer is lost
        return response

    return run


MEMBER = "/3.0/lists/{list_id}/members/{subscriber_hash}"
API: list[tuple[str, str, Handler]] = [
    ("/3.0/ping", "GET", lists.ping),
    ("/3.0/", "GET", lists.root),
    ("/3.0/lists", "GET", lists.get_lists),
    ("/3.0/lists", "POST", lists.create_list),
    ("/3.0/lists/{list_id}", "GET", lists.get_list),
    ("/3.0/lists/{list_id}", "PATCH", lists.patch_list),
    ("/3.0/lists/{list_id}", "POST", batches.batch_subscribe),
    ("/3.0/lists/{list_id}/merge-fields", "GET", lists.get_merge_fields),
    ("/3.0/lists/{list_id}/merge-fields", "POST", lists.create_merge_field),
    ("/3.0/lists/{list_id}/members", "GET", members.get_members),
    ("/3.0/lists/{list_id}/members", "POST", members.create_member),
    (MEMBER, "GET", members.get_member),
    (MEMBER, "PUT", members.put_member),
    (MEMBER, "PATCH", members.patch_member),
    (MEMBER, "DELETE", members.archive_member),
    (MEMBER + "/actions/delete-permanent", "POST", members.delete_permanent),
    (MEMBER + "/tags", "GET", members.get_member_tags),
    (MEMBER + "/tags", "POST", members.post_member_tags),
    ("/3.0/lists/{list_id}/segments", "GET", segments.get_segments),
    ("/3.0/lists/{list_id}/segments", "POST", segments.create_segment),
    ("/3.0/lists/{list_id}/segments/{segment_id}", "GET", segments.get_segment),
    ("/3.0/lists/{list_id}/segments/{segment_id}", "POST", segments.update_segment_members),
    ("/3.0/lists/{list_id}/webhooks", "GET", webhooks.get_webhooks),
    ("/3.0/lists/{list_id}/webhooks", "POST", webhooks.create_webhook),
    ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "GET", webhooks.get_webhook),
    ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "PATCH", webhooks.patch_webhook),
    ("/3.0/lists/{list_id}/webhooks/{webhook_id}", "DELETE", webhooks.delete_webhook),
    ("/3.0/reports/{campaign_id}/sent-to", "GET", lists.get_sent_to),
    ("/3.0", "GET", lists.root),
]


def create_app(state: MailchimpState | None = None) -> Starlette:
    steps = pipeline(_kit.spec_validator(SPEC_PATH, "/3.0"))
    routes = [Route(path, steps.endpoint(_handle(h)), methods=[m]) for path, m, h in API]
    return _kit.build_app("mailchimp", state or MailchimpState(), routes, control)


def main(argv: list[str] | None = None) -> None:
    parser = _kit.parser("mailchimp", "Mailchimp Marketing API emulator", 8025)
    parser.add_argument(
        "--api-key", action="append", default=[], help="a key of the default account (repeat)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="fixed seconds per request")
    parser.add_argument("--latency-per-item", type=float, default=0.0)
    parser.add_argument("--max-lists", type=int, default=None, help="1 emulates the free plan")
    args = parser.parse_args(argv)
    state = MailchimpState(
        latency_s=args.latency, latency_per_item_s=args.latency_per_item, max_lists=args.max_lists
    )
    if args.api_key:
        state.api_keys = set(args.api_key)
    _kit.run(create_app(state), args)
