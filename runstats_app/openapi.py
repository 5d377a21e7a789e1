"""What the OpenAPI document says beyond the marshmallow schemas.

The document is precise enough for a schema fuzzer to explore valid and
invalid inputs, and plain enough for a client generator to miss nothing:
timestamps are `date-time`; `filter_query` is a string parameter whose text
is a JSON document of the `FilterQuery` schema, said with the JSON Schema
keywords `contentMediaType` / `contentSchema` as `x-` extensions (OpenAPI 3.0
has no such keywords, and generators skip a parameter documented with
`content`); every error an operation can answer is listed with the one error
envelope (and `Retry-After` / `WWW-Authenticate` where they are sent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields

from .filters import nodes
from .filters.schema import (
    MAX_DEPTH,
    MAX_FILTER_BYTES,
    MAX_KEY_LENGTH,
    MAX_PREDICATES,
    MAX_VALUE_IN_ITEMS,
    FilterQueryField,
)
from .request_limits import MAX_HEADER_LINE, MAX_REQUEST_LINE
from .text import LABEL_PATTERN, VALUE_PATTERN
from .timefmt import Timestamp


class ErrorSchema(ma.Schema):
    """The one error envelope of every 4xx and 5xx answer."""

    code = fields.Integer(required=True, metadata={"minimum": 400, "maximum": 599})
    status = fields.String(required=True, metadata={"description": "HTTP reason phrase."})
    message = fields.String(required=True, metadata={"description": "What is wrong, one line."})
    errors = fields.Dict(
        metadata={
            "description": "Where: location (json, query, path, headers) then field or "
            "JSON path, each with its messages; a 409 carries `current_status`."
        }
    )


@dataclass(frozen=True)
class ErrorResponse:
    name: str
    description: str
    headers: dict[str, Any] | None = None


ERROR_RESPONSES: dict[int, ErrorResponse] = {
    400: ErrorResponse("BadRequest", "Invalid input; `message` and `errors` say what and where."),
    401: ErrorResponse(
        "Unauthorized",
        "No valid bearer token: missing where one is needed, or presented but not valid "
        "(a 401 on every route).",
        {
            "WWW-Authenticate": {
                "description": 'Bearer realm="runstats"',
                "schema": {"type": "string"},
            }
        },
    ),
    403: ErrorResponse(
        "Forbidden", "The token lacks the role, or the run was created by someone else."
    ),
    404: ErrorResponse("NotFound", "No such run (or no such annotation on it)."),
    409: ErrorResponse(
        "Conflict",
        "The run's status does not allow the change; `errors.current_status` names it.",
    ),
    413: ErrorResponse("PayloadTooLarge", "The request body is over the size limit (64 KiB)."),
    414: ErrorResponse(
        "URITooLong",
        f"The request line (method, URL with its query string, protocol) is over "
        f"{MAX_REQUEST_LINE} bytes. A filter_query within its own limit ({MAX_FILTER_BYTES} "
        "bytes of JSON) fits, however it is encoded.",
    ),
    431: ErrorResponse(
        "RequestHeaderFieldsTooLarge",
        f"A header (`Name: value`) is over {MAX_HEADER_LINE} bytes; `errors.headers` names it.",
    ),
    503: ErrorResponse(
        "ServiceUnavailable",
        "The database is unreachable, or no stats result came within the wait budget; "
        "retry after `Retry-After` seconds.",
        {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    ),
}

REQUEST_HEAD_ERRORS = (414, 431)
"""Answered for any operation, before it runs (runstats_app/request_limits.py)."""

_ANNOTATION_KEY = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_LENGTH,
    "pattern": "^(?!" + nodes.SYSTEM_PREFIX + ")" + LABEL_PATTERN[1:],
    "description": "An annotation key.",
}


def _key(predicate: str) -> dict[str, Any]:
    """An annotation key (unless the predicate is time_range), or a system key taking it."""
    system = sorted(
        k for k, allowed in nodes.SYSTEM_KEY_PREDICATES.items() if predicate in allowed
    )
    system_keys = {"type": "string", "enum": system}
    if predicate not in nodes.ANNOTATION_PREDICATES:
        return system_keys
    return {"anyOf": [_ANNOTATION_KEY, system_keys]}


_VALUE = {"type": "string", "pattern": VALUE_PATTERN}

# Path parameters. Run ids are opaque, but always 26 lowercase letters and digits: so
# `/api/pipeline_runs/stats` is the stats, never a run called "stats".
RUN_ID = {
    "in": "path",
    "name": "run_id",
    "required": True,
    "description": "A run's id (26 lowercase letters and digits).",
    "schema": {"type": "string", "pattern": "^[0-9a-z]{26}$"},
}
ANNOTATION_KEY = {
    "in": "path",
    "name": "key",
    "required": True,
    "description": f"An annotation key (may contain '/'; keys beginning with "
    f"'{nodes.SYSTEM_PREFIX}' are reserved: a 400).",
    "schema": _ANNOTATION_KEY,
}
_BOUND = {"type": "string", "format": "date-time"}


def _leaf(predicate: str, required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"key": _key(predicate), **properties},
        "required": ["key", *required],
        "additionalProperties": False,
    }


def _one_of_keys(properties: dict[str, Any], description: str) -> dict[str, Any]:
    """An object with exactly one of `properties`."""
    return {
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
        "description": description,
    }


_PREDICATES_REF = {"$ref": "#/components/schemas/FilterPredicates"}
_PREDICATE_REF = {"$ref": "#/components/schemas/FilterPredicate"}

FILTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "FilterQuery": _one_of_keys(
        {"and": _PREDICATES_REF, "or": _PREDICATES_REF},
        f"The filter_query document: `and` or `or` over predicates. Limits (a 400 over "
        f"any): {MAX_FILTER_BYTES} bytes, nesting depth {MAX_DEPTH}, {MAX_PREDICATES} "
        f"predicates in all, {MAX_VALUE_IN_ITEMS} values in a value_in. "
        'In values, "me" means the caller (see current_user).',
    ),
    "FilterPredicates": {
        "type": "array",
        "items": _PREDICATE_REF,
        "minItems": 1,
        "maxItems": MAX_PREDICATES,
    },
    "FilterPredicate": _one_of_keys(
        {
            "and": _PREDICATES_REF,
            "or": _PREDICATES_REF,
            "not": _PREDICATE_REF,
            nodes.KEY_EXISTS: _leaf(nodes.KEY_EXISTS, []),
            nodes.VALUE_EQUALS: _leaf(nodes.VALUE_EQUALS, ["value"], value=_VALUE),
            nodes.VALUE_CONTAINS: _leaf(
                nodes.VALUE_CONTAINS,
                ["value_substring"],
                value_substring={**_VALUE, "minLength": 1},
            ),
            nodes.VALUE_IN: _leaf(
                nodes.VALUE_IN,
                ["values"],
                values={
                    "type": "array",
                    "items": _VALUE,
                    "minItems": 1,
                    "maxItems": MAX_VALUE_IN_ITEMS,
                },
            ),
            nodes.TIME_RANGE: {
                **_leaf(nodes.TIME_RANGE, [], start_time=_BOUND, end_time=_BOUND),
                "minProperties": 2,
                "description": "At least one bound; start inclusive, end exclusive.",
            },
        },
        "One predicate: an object with exactly one key.",
    ),
}

FILTER_QUERY_EXAMPLE = {
    "and": [
        {"value_contains": {"key": "system/pipeline_run.name", "value_substring": "train"}},
        {"not": {"value_in": {"key": "system/pipeline_run.status", "values": ["SKIPPED"]}}},
    ]
}


# What the string parameter's text is, in the JSON Schema keywords for it (draft 2019-09).
CONTENT_MEDIA_TYPE = "x-contentMediaType"
CONTENT_SCHEMA = "x-contentSchema"


def _json_query_parameter(_converter: Any, field: ma.fields.Field, ret: dict[str, Any]) -> Any:
    """apispec parameter function: filter_query is the text of a JSON document.

    The description is the schema's too, where generators take their docstrings from.
    """
    if not isinstance(field, FilterQueryField):
        return {}
    return {
        "schema": {
            "type": "string",
            "description": ret["description"],
            "maxLength": MAX_FILTER_BYTES,
            CONTENT_MEDIA_TYPE: "application/json",
            CONTENT_SCHEMA: {"$ref": "#/components/schemas/FilterQuery"},
        },
        "example": json.dumps(FILTER_QUERY_EXAMPLE),
    }


def init_app(app: Any, api: Any) -> None:
    """Serve the document, with the project's components, converters and security scheme."""
    api.init_app(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "runstats API token"}
    )
    api.ma_plugin.map_to_openapi_type(Timestamp, "string", "date-time")
    api.ma_plugin.converter.add_parameter_attribute_function(_json_query_parameter)
    for name, schema in FILTER_SCHEMAS.items():
        api.spec.components.schema(name, schema)
    for error in ERROR_RESPONSES.values():
        response: dict[str, Any] = {
            "description": error.description,
            "content": {"application/json": {"schema": ErrorSchema}},
        }
        if error.headers:
            response["headers"] = error.headers
        api.spec.components.response(error.name, response)
