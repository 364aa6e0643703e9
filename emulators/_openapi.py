"""Validate HTTP requests against an OpenAPI 3.0 document (shared by the provider emulators).

The emulators answer like the real services only if the request is one the real service
documents, so every request they receive goes through `OpenAPIRequestValidator.validate`.

Built on `openapi-schema-validator` (jsonschema with the OAS 3.0 dialect: `nullable`, ...)
instead of openapi-core, because we need path matching that ignores parameter names (the
derived Mailchimp spec renames them), a list of every violation instead of the first one, and a
cheap per-request cost for 100k-contact benchmarks.

Deliberate relaxations of spec quirks (the emulators must not reject what the real API accepts):
- `format` is not checked (Brevo marks fields `email`/`date-time` that the API accepts loosely;
  invalid addresses are an emulated business error, not a protocol error).
- Security requirements are not checked here: auth failures are the emulator's 401, not a
  spec violation.
- Header parameters `Accept`, `Content-Type` and `Authorization` are ignored, as OpenAPI says.
- A request body on an operation without `requestBody` is only a violation if it is non-empty.
- Media types match ignoring parameters (`; charset=utf-8`) and honour `*/*` and `type/*`.
- Unknown query parameters are reported unless `allow_unknown_query=True`.
- Free-form maps typed `additionalProperties: {type: object}` accept any value, and `oneOf`
  is checked as `anyOf` (see `_relax`).
"""

from __future__ import annotations

import functools
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_IGNORED_HEADERS = {"accept", "content-type", "authorization"}
_SPEC_URI = "urn:openapi-spec"
_load_lock = threading.Lock()


@functools.cache
def load_spec(spec_path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON OpenAPI document once per process (they are megabytes big)."""
    with _load_lock, spec_path.open("rb") as fh:
        if spec_path.suffix == ".json":
            data = json.load(fh)
        else:
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = yaml.load(fh, Loader=loader)
    if not isinstance(data, dict) or "paths" not in data:
        raise ValueError(f"{spec_path} is not an OpenAPI document")
    _relax(data)
    return data


def _relax(node: Any) -> None:
    """Loosen two spec-writing habits that make valid requests fail (see the module doc).

    `additionalProperties: {type: object}` with nothing else means "any value" in practice: the
    derived Mailchimp spec declares merge field values that way although the API takes strings
    (`{"FNAME": "Max"}`). `oneOf` becomes `anyOf`, because alternatives without `required`
    (Brevo's remove-from-list body: emails | ids | extIds | all) all match any object.
    """
    if isinstance(node, dict):
        if "oneOf" in node and "anyOf" not in node:
            node["anyOf"] = node.pop("oneOf")
        extra = node.get("additionalProperties")
        if (
            isinstance(extra, dict)
            and extra.get("type") == "object"
            and not ({"properties", "additionalProperties", "$ref", "required"} & extra.keys())
        ):
            node["additionalProperties"] = {}
        for value in node.values():
            _relax(value)
    elif isinstance(node, list):
        for value in node:
            _relax(value)


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@dataclass
class _Parameter:
    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    pointer: str


@dataclass
class _Operation:
    method: str
    template: str
    pointer: str
    parameters: list[_Parameter]
    body_required: bool
    # media type -> JSON pointer of its schema (None: no schema given)
    body_media: dict[str, str | None] = field(default_factory=dict)
    has_body: bool = False


@dataclass
class _Route:
    template: str
    regex: re.Pattern[str]
    param_slots: list[int]
    # literal segments first: sort key making `/contacts/lists` win over `/contacts/{id}`
    specificity: tuple[int, ...]
    operations: dict[str, _Operation]


class OpenAPIRequestValidator:
    """Check one request against the spec; `validate` returns readable violations ([] = ok)."""

    def __init__(
        self,
        spec_path: Path,
        *,
        server_prefix: str,
        allow_unknown_query: bool = False,
    ) -> None:
        self._spec = load_spec(spec_path)
        self._prefix = "/" + server_prefix.strip("/") if server_prefix.strip("/") else ""
        self._allow_unknown_query = allow_unknown_query
        self._registry: Registry[Any] = Registry().with_resource(
            _SPEC_URI, Resource.from_contents(self._spec, default_specification=DRAFT4)
        )
        self._validators: dict[str, OAS30Validator] = {}
        self._routes = _build_routes(self._spec, self._resolve)

    def validate(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | Iterable[tuple[str, str]] | str,
        headers: Mapping[str, str],
        body: bytes | None,
        content_type: str | None,
    ) -> list[str]:
        method = method.lower()
        label = f"{method.upper()} {path}"
        if self._prefix:
            if path != self._prefix and not path.startswith(self._prefix + "/"):
                return [f"{label}: path is outside the server prefix {self._prefix}"]
            path = path[len(self._prefix) :] or "/"
        match = self._match(path)
        if match is None:
            return [f"{label}: no such path in the spec"]
        route, values = match
        operation = route.operations.get(method)
        if operation is None:
            allowed = ", ".join(sorted(m.upper() for m in route.operations))
            return [f"{label}: method not in the spec for {route.template} (allowed: {allowed})"]
        label = f"{method.upper()} {route.template}"
        problems: list[str] = []
        path_values = dict(zip(_template_names(route.template), values, strict=False))
        query_items = _query_items(query)
        lowered_headers = {k.lower(): v for k, v in headers.items()}
        known_query: set[str] = set()
        for param in operation.parameters:
            if param.location == "query":
                known_query.add(param.name)
                raw = [v for k, v in query_items if k == param.name]
            elif param.location == "path":
                raw = [path_values[param.name]] if param.name in path_values else []
                if not raw and len(path_values) == 1:
                    # the spec's own parameter may be named differently from the template slot
                    raw = list(path_values.values())
            elif param.location == "header":
                if param.name.lower() in _IGNORED_HEADERS:
                    continue
                header = lowered_headers.get(param.name.lower())
                raw = [header] if header is not None else []
            else:
                continue
            if not raw:
                if param.required:
                    problems.append(
                        f"{label}: missing required {param.location} parameter '{param.name}'"
                    )
                continue
            value = _coerce(raw, param.schema)
            problems.extend(
                f"{label}: {param.location} parameter '{param.name}'{msg}"
                for msg in self._schema_errors(param.pointer, value)
            )
        if not self._allow_unknown_query:
            unknown = sorted({k for k, _ in query_items} - known_query)
            if unknown:
                problems.append(f"{label}: unknown query parameter(s) {', '.join(unknown)}")
        problems.extend(self._check_body(label, operation, body, content_type))
        return problems

    def _check_body(
        self, label: str, operation: _Operation, body: bytes | None, content_type: str | None
    ) -> list[str]:
        if not body:
            if operation.body_required:
                return [f"{label}: request body is required"]
            return []
        if not operation.has_body:
            return [f"{label}: the spec defines no request body for this operation"]
        media = (content_type or "").split(";", 1)[0].strip().lower()
        pointer_key = _match_media(media, operation.body_media)
        if pointer_key is None:
            allowed = ", ".join(operation.body_media)
            return [f"{label}: content type {media or '(none)'} not accepted (spec: {allowed})"]
        pointer = operation.body_media[pointer_key]
        if not (media.endswith("json") or media.endswith("+json")):
            return []  # only JSON bodies are schema-checked; others just need an allowed type
        try:
            document = json.loads(body)
        except ValueError as exc:
            return [f"{label}: request body is not valid JSON ({exc})"]
        if pointer is None:
            return []
        return [f"{label}: body{msg}" for msg in self._schema_errors(pointer, document)]

    def _schema_errors(self, pointer: str, instance: Any) -> list[str]:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = OAS30Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=self._registry)
            self._validators[pointer] = validator
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [_describe(error) for error in errors[:20]]

    def _match(self, path: str) -> tuple[_Route, list[str]] | None:
        for route in self._routes:
            found = route.regex.fullmatch(path)
            if found:
                return route, [unquote(v) for v in found.groups()]
        return None

    def _resolve(self, node: Any) -> Any:
        """Follow a local `$ref` (parameters and request bodies may be references)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            node = self._registry.resolver(base_uri=_SPEC_URI).lookup(node["$ref"]).contents
            seen += 1
        return node


def _describe(error: ValidationError) -> str:
    location = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    message = error.message
    if len(message) > 300:
        message = message[:300] + "…"
    return f"{location}: {message}" if location else f": {message}"


def _template_names(template: str) -> list[str]:
    return re.findall(r"\{([^}/]+)\}", template)


def _query_items(
    query: Mapping[str, Any] | Iterable[tuple[str, str]] | str,
) -> list[tuple[str, str]]:
    if isinstance(query, str):
        return parse_qsl(query, keep_blank_values=True)
    if isinstance(query, Mapping):
        items: list[tuple[str, str]] = []
        multi = getattr(query, "multi_items", None)
        if callable(multi):
            return [(str(k), str(v)) for k, v in multi()]
        for key, value in query.items():
            if isinstance(value, list | tuple):
                items.extend((str(key), str(v)) for v in value)
            else:
                items.append((str(key), str(value)))
        return items
    return [(str(k), str(v)) for k, v in query]


def _coerce(raw: list[str], schema: dict[str, Any]) -> Any:
    """Turn the textual parameter value(s) into the JSON type the schema describes."""
    kind = schema.get("type")
    if kind == "array":
        parts = [p for value in raw for p in value.split(",")] if len(raw) == 1 else raw
        item_schema = schema.get("items", {})
        return [_coerce_scalar(p, item_schema.get("type")) for p in parts]
    return _coerce_scalar(raw[-1], kind)


def _coerce_scalar(value: str, kind: Any) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value  # left as text so the schema check reports the wrong type
    if kind == "boolean" and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _match_media(media: str, available: Mapping[str, str | None]) -> str | None:
    lowered = {key.split(";", 1)[0].strip().lower(): key for key in available}
    if media in lowered:
        return lowered[media]
    major = media.split("/", 1)[0]
    for candidate in (f"{major}/*", "*/*"):
        if candidate in lowered:
            return lowered[candidate]
    return None


def _build_routes(spec: dict[str, Any], resolve: Any) -> list[_Route]:
    routes: list[_Route] = []
    for template, item in spec["paths"].items():
        item = resolve(item)
        if not isinstance(item, dict):
            continue
        item_pointer = f"/paths/{_escape_pointer(template)}"
        common = _parameters(item.get("parameters", []), f"{item_pointer}/parameters", resolve)
        operations: dict[str, _Operation] = {}
        for method in _HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            op_pointer = f"{item_pointer}/{method}"
            params = {(p.name, p.location): p for p in common}
            for p in _parameters(op.get("parameters", []), f"{op_pointer}/parameters", resolve):
                params[(p.name, p.location)] = p
            operation = _Operation(
                method=method,
                template=template,
                pointer=op_pointer,
                parameters=list(params.values()),
                body_required=False,
            )
            body = op.get("requestBody")
            if body is not None:
                body_pointer = f"{op_pointer}/requestBody"
                if isinstance(body, dict) and "$ref" in body:
                    body_pointer = body["$ref"].lstrip("#")
                body = resolve(body)
                operation.has_body = True
                operation.body_required = bool(body.get("required", False))
                for media, media_obj in (body.get("content") or {}).items():
                    has_schema = isinstance(media_obj, dict) and "schema" in media_obj
                    operation.body_media[media] = (
                        f"{body_pointer}/content/{_escape_pointer(media)}/schema"
                        if has_schema
                        else None
                    )
            operations[method] = operation
        segments = template.strip("/").split("/")
        regex = "/" + "/".join(
            re.sub(r"\{[^}/]+\}", "([^/]+)", re.escape(s).replace(r"\{", "{").replace(r"\}", "}"))
            for s in segments
        )
        routes.append(
            _Route(
                template=template,
                regex=re.compile(regex.rstrip("/") + "/?" if template != "/" else "/"),
                param_slots=[i for i, s in enumerate(segments) if "{" in s],
                specificity=tuple(0 if "{" in s else 1 for s in segments),
                operations=operations,
            )
        )
    # Most literal first: at the first differing segment, a literal beats a template slot.
    routes.sort(key=lambda r: tuple(-x for x in r.specificity))
    return routes


def _parameters(raw: list[Any], pointer: str, resolve: Any) -> list[_Parameter]:
    result: list[_Parameter] = []
    for index, entry in enumerate(raw):
        param_pointer = f"{pointer}/{index}"
        if isinstance(entry, dict) and "$ref" in entry:
            param_pointer = entry["$ref"].lstrip("#")
        param = resolve(entry)
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            continue
        schema = resolve(param.get("schema", {}))
        result.append(
            _Parameter(
                name=param["name"],
                location=param["in"],
                required=bool(param.get("required", param["in"] == "path")),
                schema=schema if isinstance(schema, dict) else {},
                pointer=f"{param_pointer}/schema",
            )
        )
    return result
