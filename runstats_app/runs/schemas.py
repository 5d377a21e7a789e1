"""Request and response schemas of the runs resource."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ..filters import FilterArgsSchema
from ..filters.schema import storable_text
from ..statuses import STATUS_NAMES, TERMINAL_STATUSES
from ..timefmt import Timestamp

MAX_ANNOTATIONS_PER_RUN = 100
RESERVED_PREFIX = "system/"
NON_TERMINAL_STATUSES = tuple(s for s in STATUS_NAMES if s not in TERMINAL_STATUSES)

_status = validate.OneOf(
    STATUS_NAMES, error="Unknown status {input!r}; expected one of: {choices}."
)


def _annotation_key(key: str) -> None:
    if key.startswith(RESERVED_PREFIX):
        raise ma.ValidationError(
            f"Annotation keys beginning with {RESERVED_PREFIX!r} are reserved."
        )


class RunSchema(ma.Schema):
    id = fields.String()
    name = fields.String()
    created_by = fields.String(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp()
    status = fields.String(validate=validate.OneOf(STATUS_NAMES))
    status_updated_at = Timestamp()
    started_at = Timestamp(allow_none=True)
    ended_at = Timestamp(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)
    attempt = fields.Integer()
    max_attempts = fields.Integer()
    annotations = fields.Method(
        "_annotations", metadata={"type": "object", "additionalProperties": {"type": "string"}}
    )

    def _annotations(self, run: Any) -> dict[str, str]:
        return {a.key: a.value for a in run.annotations}


class RunCreateSchema(ma.Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=255), storable_text])
    created_by = fields.String(
        allow_none=True, validate=[validate.Length(min=1, max=255), storable_text]
    )
    annotations = fields.Dict(
        keys=fields.String(
            validate=[validate.Length(min=1, max=255), _annotation_key, storable_text]
        ),
        values=fields.String(validate=[validate.Length(max=255), storable_text]),
        validate=validate.Length(
            max=MAX_ANNOTATIONS_PER_RUN,
            error=f"At most {MAX_ANNOTATIONS_PER_RUN} annotations per run.",
        ),
    )
    max_attempts = fields.Integer(strict=True, validate=validate.Range(min=1, max=10))
    status = fields.String(
        validate=validate.OneOf(
            NON_TERMINAL_STATUSES,
            error="A run can only be created in a non-terminal status: {choices}.",
        )
    )


class TransitionSchema(ma.Schema):
    status = fields.String(required=True, validate=_status)
    expected_status = fields.String(validate=_status)


class AnnotationValueSchema(ma.Schema):
    value = fields.String(required=True, validate=[validate.Length(max=255), storable_text])


class ListArgsSchema(FilterArgsSchema):
    page_size = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "Rows per page, 1-100."},
    )
    page_token = fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "next_page_token of the previous page."},
    )


class RunListSchema(ma.Schema):
    pipeline_runs = fields.List(fields.Nested(RunSchema))
    next_page_token = fields.String(allow_none=True)


class StatusChangeSchema(ma.Schema):
    from_status = fields.String()
    to_status = fields.String()
    at = Timestamp()
    seconds_in_previous_status = fields.Float()
