"""RFC 3339 timestamps: strict parsing (an offset is required), UTC `Z` output."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import marshmallow as ma

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?$"
)


def format_timestamp(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; a missing offset is an error, not UTC."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError("Not an RFC 3339 timestamp (e.g. 2026-03-19T12:00:00Z).")
    if match.group("offset") is None:
        raise ValueError("Must carry a UTC offset (e.g. a trailing Z): naive times are ambiguous.")
    normalized = text.replace("z", "Z").replace("t", "T")
    if "." in normalized:
        head, _, tail = normalized.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits is not None
        fraction = digits.group(0)
        normalized = f"{head}.{fraction[:6].ljust(6, '0')}{tail[len(fraction) :]}"
    try:
        moment = datetime.fromisoformat(normalized)
    except ValueError:
        raise ValueError("Not a valid date or time.") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is in year 0 in UTC; 9999-12-31T23:00:00-02:00 in 10000.
        raise ValueError("Out of range: in UTC it must fall within years 1-9999.") from None


class Timestamp(ma.fields.Field):
    """RFC 3339 in, `...Z` in UTC out."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_timestamp(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ma.ValidationError("Must be an RFC 3339 timestamp string.")
        try:
            return parse_timestamp(value)
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None


TIMESTAMP_OPENAPI = {"type": "string", "format": "date-time"}
