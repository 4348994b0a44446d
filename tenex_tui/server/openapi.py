"""The OpenAPI 3.1 document of `/api/v1/chat`, generated from the route table.

Paths, methods, parameters and bodies come from `routes.ROUTES`, and every schema is the
JSON Schema of the `core` pydantic model that the server really validates or returns, so
the document cannot drift from the code (a test checks that each route appears in it and
that it lists nothing else).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from tenex_tui.core.events import StreamEvent

if TYPE_CHECKING:
    from tenex_tui.server.routes import RouteSpec

_REF = "#/components/schemas/{model}"


class ErrorDetail(pydantic.BaseModel):
    """The inside of the error envelope."""

    code: str
    """A stable code such as `not_found`, `invalid_request`, `unauthorized`."""
    message: str
    """A sentence for people."""


class ErrorEnvelope(pydantic.BaseModel):
    """Every error answer: `{"error": {"code", "message"}}`."""

    error: ErrorDetail


_ERRORS: dict[str, str] = {
    "400": "Invalid request (bad JSON, unknown field, bad limit or cursor)",
    "401": "Missing, malformed, unknown or revoked API key",
    "404": "Not found in the caller's workspace (never 403)",
    "413": "Body or attachment larger than its limit",
    "422": "Idempotency-Key reused with a different request",
}


def _model_types(routes: Sequence[RouteSpec]) -> list[tuple[Any, JsonSchemaMode]]:
    wanted: list[tuple[Any, JsonSchemaMode]] = [
        (ErrorEnvelope, "serialization"),
        (StreamEvent, "serialization"),
    ]
    for spec in routes:
        if spec.response is not None:
            wanted.append((spec.response, "serialization"))
        if spec.body is not None:
            wanted.append((spec.body, "validation"))
    unique: list[tuple[Any, JsonSchemaMode]] = []
    for item in wanted:
        if item not in unique:
            unique.append(item)
    return unique


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in spec.path_params
    ]
    for query in spec.query:
        schema: dict[str, Any] = {"type": query.type}
        if query.enum:
            schema["enum"] = list(query.enum)
        params.append(
            {
                "name": query.name,
                "in": "query",
                "required": query.required,
                "description": query.description,
                "schema": schema,
            }
        )
    if spec.idempotent_post:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Replays the first result for a retried request "
                "(1-255 printable ASCII characters).",
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if spec.operation == "stream_events":
        params.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event id.",
                "schema": {"type": "string"},
            }
        )
    return params


def build_openapi(
    routes: Sequence[RouteSpec], *, prefix: str, version: str = "1.0.0"
) -> dict[str, Any]:
    """Build the document.

    Args:
        routes: The route table.
        prefix: The path every route lives under (`/api/v1/chat`).
        version: The API version string.

    Returns:
        The OpenAPI 3.1 document as JSON-ready data.
    """
    refs, top = models_json_schema(_model_types(routes), ref_template=_REF)
    error_schema = refs[(ErrorEnvelope, "serialization")]
    event_schema = refs[(StreamEvent, "serialization")]
    paths: dict[str, dict[str, Any]] = {}
    for spec in routes:
        responses: dict[str, Any] = {}
        success: dict[str, Any] = {"description": spec.summary}
        content: dict[str, Any] = {}
        if spec.response is not None and spec.operation != "stream_events":
            content["application/json"] = {
                "schema": refs[(spec.response, "serialization")]
            }
        if spec.streams:
            content["text/event-stream"] = {
                "schema": event_schema,
                "description": "Server-Sent Events: `id:` (resumable), `event:` "
                "(the type), `data:` (one StreamEvent as JSON); `: ping` comments.",
            }
        if content:
            success["content"] = content
        responses[str(spec.status)] = success
        if spec.operation == "stream_events":
            responses["204"] = {"description": "No events after Last-Event-ID"}
        for status, description in _ERRORS.items():
            responses[status] = {
                "description": description,
                "content": {"application/json": {"schema": error_schema}},
            }
        operation: dict[str, Any] = {
            "operationId": spec.operation,
            "summary": spec.summary,
            "parameters": _parameters(spec),
            "responses": responses,
        }
        if spec.body is not None:
            operation["requestBody"] = {
                "required": spec.operation != "create_thread",
                "content": {
                    "application/json": {"schema": refs[(spec.body, "validation")]}
                },
            }
        paths.setdefault(prefix + spec.path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tenex-tui chat API",
            "version": version,
            "description": "The 10ex `/api/v1/chat` contract, served by `tenex-tui "
            "serve` over the local engine.",
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "tnx_<prefix>_<secret>",
                }
            },
        },
        "security": [{"bearer": []}],
    }
