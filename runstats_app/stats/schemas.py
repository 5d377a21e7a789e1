"""The stats answers' schemas: the OpenAPI document, and the one way their bodies are made.

A body is made once per computation (then cached as bytes), by dumping
through these schemas, so what is sent is what the document describes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields

from ..filters import FilterArgsSchema
from ..statuses import STATUS_NAMES
from ..timefmt import Timestamp
from .history import BUCKETS, MAX_BUCKETS, HistoryRange
from .result import SOURCES

COUNTS_BY_STATUS_DOC = {
    "type": "object",
    "properties": {name: {"type": "integer", "minimum": 0} for name in STATUS_NAMES},
    "required": list(STATUS_NAMES),
    "additionalProperties": False,
}
BUCKET_DOC = {"description": "UTC hours or days of created_at."}


class CountsSchema(ma.Schema):
    """What every stats answer counts: the runs matched, and their split by status."""

    total_runs = fields.Integer(required=True, metadata={"minimum": 0})
    counts_by_status = fields.Dict(
        keys=fields.String(validate=ma.validate.OneOf(STATUS_NAMES)),
        values=fields.Integer(),
        required=True,
        metadata=COUNTS_BY_STATUS_DOC,
    )


class StatsSchema(CountsSchema):
    total_pipelines = fields.Integer(
        required=True,
        metadata={"minimum": 0, "description": "Distinct pipeline names among the runs."},
    )
    cached_at = Timestamp(required=True)


class HistoryArgsSchema(FilterArgsSchema):
    bucket = fields.String(
        load_default="day", validate=ma.validate.OneOf(tuple(BUCKETS)), metadata=BUCKET_DOC
    )
    start_time = Timestamp(
        metadata={
            "description": "RFC 3339 with an offset; rounded down to a bucket start. "
            "Default: end_time minus 30 days (day) or 48 hours (hour)."
        }
    )
    end_time = Timestamp(
        metadata={
            "description": "RFC 3339 with an offset, exclusive; rounded up to a bucket start. "
            f"Default: the end of the current bucket. At most {MAX_BUCKETS} buckets."
        }
    )


class BucketCountsSchema(CountsSchema):
    """One bucket of a history.

    Not `HistoryBucket`: client generators name the enum of `History.bucket` so,
    and two types of one name make them drop the whole history response.
    """

    start_time = Timestamp(required=True)


class HistorySchema(ma.Schema):
    bucket = fields.String(
        required=True, validate=ma.validate.OneOf(tuple(BUCKETS)), metadata=BUCKET_DOC
    )
    start_time = Timestamp(required=True)
    end_time = Timestamp(required=True)
    buckets = fields.List(fields.Nested(BucketCountsSchema), required=True)
    cached_at = Timestamp(required=True)


CACHE_HEADERS = {
    "X-Cache": {
        "description": "hit: a fresh shared result; miss: this request ran the query; "
        "stale: past its TTL (within the grace); bypass: computed without the shared "
        "cache because Redis is unusable.",
        "schema": {"type": "string", "enum": ["hit", "miss", "stale", "bypass"]},
    },
    "Cache-Control": {
        "description": "max-age=<seconds the result stays fresh>; 0 for stale and bypass.",
        "schema": {"type": "string"},
    },
    "X-Stats-Source": {
        "description": "counts: read from counts maintained as runs change; scan: computed "
        "from the runs. For a cached result, the source of the computation that produced it.",
        "schema": {"type": "string", "enum": list(SOURCES)},
    },
}

_STATS = StatsSchema()
_HISTORY = HistorySchema()


def _counts(by_status: Mapping[str, int]) -> dict[str, Any]:
    counts = {name: int(by_status.get(name, 0)) for name in STATUS_NAMES}
    return {"total_runs": sum(counts.values()), "counts_by_status": counts}


def _encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def stats_body(by_status: Mapping[str, int], total_pipelines: int, cached_at: datetime) -> bytes:
    return _encode(
        _STATS.dump(
            {**_counts(by_status), "total_pipelines": total_pipelines, "cached_at": cached_at}
        )
    )


def history_body(
    span: HistoryRange, by_bucket: Mapping[datetime, Mapping[str, int]], cached_at: datetime
) -> bytes:
    return _encode(
        _HISTORY.dump(
            {
                "bucket": span.bucket,
                "start_time": span.start,
                "end_time": span.end,
                "buckets": [
                    {"start_time": start, **_counts(by_bucket.get(start, {}))}
                    for start in span.starts
                ],
                "cached_at": cached_at,
            }
        )
    )
