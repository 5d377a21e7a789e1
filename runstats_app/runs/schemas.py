"""Request and response schemas of the runs resource."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ..filters import FilterArgsSchema
from ..statuses import NON_TERMINAL_NAMES, STATUS_NAMES
from ..text import label_text, value_text
from ..timefmt import Timestamp
from .annotations import (
    MAX_ANNOTATIONS_PER_RUN,
    MAX_VALUE_LENGTH,
    RESERVED_PREFIX,
    annotation_key_problem,
)

_status = validate.OneOf(
    STATUS_NAMES, error="Unknown status {input!r}; expected one of: {choices}."
)


def _annotation_key(key: str) -> None:
    problem = annotation_key_problem(key)
    if problem:
        raise ma.ValidationError(problem)


class RunSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "Opaque, server-assigned."})
    name = fields.String(required=True, metadata={"minLength": 1, "maxLength": 255})
    created_by = fields.String(required=True, allow_none=True, metadata={"maxLength": 255})
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUS_NAMES))
    status_updated_at = Timestamp(required=True)
    started_at = Timestamp(required=True, allow_none=True)
    ended_at = Timestamp(required=True, allow_none=True)
    duration_seconds = fields.Float(required=True, allow_none=True, metadata={"minimum": 0})
    attempt = fields.Integer(required=True, metadata={"minimum": 1, "maximum": 10})
    max_attempts = fields.Integer(required=True, metadata={"minimum": 1, "maximum": 10})
    annotations = fields.Method(
        "_annotations",
        required=True,
        metadata={
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": 255},
            "maxProperties": MAX_ANNOTATIONS_PER_RUN,
        },
    )

    def _annotations(self, run: Any) -> dict[str, str]:
        return {a.key: a.value for a in run.annotations}


def _annotation_count(annotations: dict[str, str]) -> None:
    # Not validate.Length: apispec would document it as a string's maxLength.
    if len(annotations) > MAX_ANNOTATIONS_PER_RUN:
        raise ma.ValidationError(
            f"At most {MAX_ANNOTATIONS_PER_RUN} annotations per run (annotation limit)."
        )


class RunCreateSchema(ma.Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=255), label_text])
    created_by = fields.String(
        allow_none=True, validate=[validate.Length(min=1, max=255), label_text]
    )
    annotations = fields.Dict(
        keys=fields.String(validate=_annotation_key),
        values=fields.String(validate=[validate.Length(max=MAX_VALUE_LENGTH), value_text]),
        validate=_annotation_count,
        metadata={
            "maxProperties": MAX_ANNOTATIONS_PER_RUN,
            "description": f"Keys 1-255 characters, not beginning with {RESERVED_PREFIX!r}; "
            f"values at most 255; at most {MAX_ANNOTATIONS_PER_RUN}.",
        },
    )
    max_attempts = fields.Integer(strict=True, validate=validate.Range(min=1, max=10))
    status = fields.String(
        validate=validate.OneOf(
            NON_TERMINAL_NAMES,
            error="A run can only be created in a non-terminal status: {choices}.",
        )
    )


class TransitionSchema(ma.Schema):
    status = fields.String(required=True, validate=_status)
    expected_status = fields.String(validate=_status)


class AnnotationValueSchema(ma.Schema):
    value = fields.String(
        required=True, validate=[validate.Length(max=MAX_VALUE_LENGTH), value_text]
    )


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
    pipeline_runs = fields.List(fields.Nested(RunSchema), required=True)
    next_page_token = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as page_token for the next page; null on the last."},
    )


class StatusChangeSchema(ma.Schema):
    from_status = fields.String(required=True, validate=validate.OneOf(STATUS_NAMES))
    to_status = fields.String(required=True, validate=validate.OneOf(STATUS_NAMES))
    at = Timestamp(required=True)
    seconds_in_previous_status = fields.Float(required=True, metadata={"minimum": 0})
