"""marshmallow schemas for filter_query: JSON text in, a validated FilterNode out.

Errors name the JSON path of the offending value (``and[1].time_range.start_time``);
limits are checked on the raw JSON before the schemas recurse, so an oversized
filter costs a walk, never a query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate, validates_schema

from .. import strict_json
from ..statuses import STATUS_NAMES
from ..strict_json import StrictJSONError
from ..text import label_text, value_text
from ..timefmt import Timestamp
from . import nodes
from .nodes import FilterNode

MAX_FILTER_BYTES = 8 * 1024
MAX_DEPTH = 16
MAX_PREDICATES = 100
MAX_VALUE_IN_ITEMS = 100
MAX_KEY_LENGTH = 255
MAX_STATUS_PARAMETERS = len(STATUS_NAMES)

COMBINATORS = ("and", "or")
PREDICATE_NAMES = (
    "and",
    "or",
    "not",
    nodes.KEY_EXISTS,
    nodes.VALUE_EQUALS,
    nodes.VALUE_CONTAINS,
    nodes.VALUE_IN,
    nodes.TIME_RANGE,
)
ROOT_PATH = "$"


@dataclass(frozen=True)
class ParsedFilter:
    """The filter as sent (for binding page tokens) and as understood."""

    raw: str
    tree: FilterNode


class FilterQueryError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def _key_field() -> fields.String:
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_KEY_LENGTH), label_text],
    )


class _LeafSchema(ma.Schema):
    predicate: str = ""

    key = _key_field()

    @validates_schema
    def _key_takes_predicate(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        key = data["key"]
        allowed = nodes.allowed_predicates(key)
        if allowed is None:
            known = ", ".join(sorted(nodes.SYSTEM_KEY_PREDICATES))
            raise ma.ValidationError(f"Unknown system key {key!r}; known: {known}.", "key")
        if self.predicate not in allowed:
            raise ma.ValidationError(
                f"{self.predicate} is not allowed on key {key!r}; "
                f"it takes: {', '.join(sorted(allowed))}.",
                "key",
            )


def _check_status(value: str) -> None:
    if value not in STATUS_NAMES:
        raise ma.ValidationError(
            f"Unknown status {value!r}; expected one of: {', '.join(STATUS_NAMES)}."
        )


class KeyExistsSchema(_LeafSchema):
    predicate = nodes.KEY_EXISTS

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> FilterNode:
        return nodes.KeyExists(data["key"])


class ValueEqualsSchema(_LeafSchema):
    predicate = nodes.VALUE_EQUALS
    value = fields.String(required=True, validate=value_text)

    @validates_schema
    def _status_value(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        if data.get("key") == nodes.STATUS:
            try:
                _check_status(data["value"])
            except ma.ValidationError as exc:
                raise ma.ValidationError(exc.messages, "value") from exc

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> FilterNode:
        return nodes.ValueEquals(data["key"], data["value"])


class ValueContainsSchema(_LeafSchema):
    predicate = nodes.VALUE_CONTAINS
    value_substring = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, error="The substring must not be empty."),
            value_text,
        ],
    )

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> FilterNode:
        return nodes.ValueContains(data["key"], data["value_substring"])


class ValueInSchema(_LeafSchema):
    predicate = nodes.VALUE_IN
    values = fields.List(
        fields.String(validate=value_text),
        required=True,
        validate=validate.Length(
            min=1,
            max=MAX_VALUE_IN_ITEMS,
            error=f"Must hold 1 to {MAX_VALUE_IN_ITEMS} values (value_in limit).",
        ),
    )

    @validates_schema
    def _status_values(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        if data.get("key") != nodes.STATUS:
            return
        errors: dict[int, Any] = {}
        for index, value in enumerate(data["values"]):
            try:
                _check_status(value)
            except ma.ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ma.ValidationError(errors, "values")

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> FilterNode:
        return nodes.ValueIn(data["key"], tuple(data["values"]))


_SUB_MICROSECOND = re.compile(r"\.\d{6}(\d+)")


class BoundTimestamp(Timestamp):
    """A time_range bound: finer than a microsecond rounds *up* to the next one.

    Stored timestamps are whole microseconds, so for every run t, `t >= bound`
    and `t < bound` mean the same with the rounded-up bound; truncating instead
    would let a start bound admit a run before it and an end bound drop one.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        finer = _SUB_MICROSECOND.search(value)
        if finer and finer.group(1).strip("0"):
            if moment == datetime.max.replace(tzinfo=UTC):
                raise ma.ValidationError("Out of range: after the last representable instant.")
            moment += timedelta(microseconds=1)
        return moment


class TimeRangeSchema(_LeafSchema):
    predicate = nodes.TIME_RANGE
    start_time = BoundTimestamp()
    end_time = BoundTimestamp()

    @validates_schema
    def _bounds(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        start, end = data.get("start_time"), data.get("end_time")
        if start is None and end is None:
            raise ma.ValidationError("Give start_time, end_time or both.", ROOT_PATH)
        if start is not None and end is not None and start > end:
            raise ma.ValidationError("start_time must not be after end_time.", "start_time")

    @ma.post_load
    def _make(self, data: dict[str, Any], **_kwargs: Any) -> FilterNode:
        return nodes.TimeRange(data["key"], data.get("start_time"), data.get("end_time"))


LEAF_SCHEMAS: dict[str, ma.Schema] = {
    nodes.KEY_EXISTS: KeyExistsSchema(),
    nodes.VALUE_EQUALS: ValueEqualsSchema(),
    nodes.VALUE_CONTAINS: ValueContainsSchema(),
    nodes.VALUE_IN: ValueInSchema(),
    nodes.TIME_RANGE: TimeRangeSchema(),
}


def _one_key(value: Any, allowed: tuple[str, ...]) -> tuple[str, Any]:
    if not isinstance(value, dict) or len(value) != 1:
        raise ma.ValidationError(
            f"Must be an object with exactly one key, one of: {', '.join(allowed)}."
        )
    ((name, body),) = value.items()
    if name not in allowed:
        raise ma.ValidationError(
            f"Unknown predicate {name!r}; expected one of: {', '.join(allowed)}."
        )
    return name, body


def _load_predicate(value: Any, allowed: tuple[str, ...] = PREDICATE_NAMES) -> FilterNode:
    name, body = _one_key(value, allowed)
    try:
        if name in COMBINATORS:
            if not isinstance(body, list) or not body:
                raise ma.ValidationError("Must be a non-empty list of predicates.")
            errors: dict[int, Any] = {}
            items: list[FilterNode] = []
            for index, item in enumerate(body):
                try:
                    items.append(_load_predicate(item))
                except ma.ValidationError as exc:
                    errors[index] = exc.messages
            if errors:
                raise ma.ValidationError(errors)
            return nodes.And(tuple(items)) if name == "and" else nodes.Or(tuple(items))
        if name == "not":
            return nodes.Not(_load_predicate(body))
        if not isinstance(body, dict):
            raise ma.ValidationError("Must be an object.")
        node: FilterNode = LEAF_SCHEMAS[name].load(body)
        return node
    except ma.ValidationError as exc:
        raise ma.ValidationError({name: exc.messages}) from exc


def _flatten(messages: Any, path: str = "") -> dict[str, list[str]]:
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, sub in messages.items():
            if isinstance(key, int):
                child = f"{path}[{key}]"
            elif key in (ROOT_PATH, ma.exceptions.SCHEMA):
                child = path
            else:
                child = f"{path}.{key}" if path else str(key)
            for sub_path, sub_messages in _flatten(sub, child).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {path or ROOT_PATH: list(messages)}
    if isinstance(messages, list):
        flat = {}
        for index, sub in enumerate(messages):
            flat.update(_flatten(sub, f"{path}[{index}]"))
        return flat
    return {path or ROOT_PATH: [str(messages)]}


def _check_limits(root: Any) -> None:
    """Depth and predicate count, walked iteratively over the raw JSON."""
    count = 0
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if not isinstance(value, dict) or len(value) != 1:
            continue
        ((name, body),) = value.items()
        if depth > 0 and name in PREDICATE_NAMES:
            count += 1
        if depth > MAX_DEPTH:
            raise FilterQueryError(
                {ROOT_PATH: [f"Nesting deeper than the limit of {MAX_DEPTH} (depth limit)."]}
            )
        if count > MAX_PREDICATES:
            raise FilterQueryError(
                {
                    ROOT_PATH: [
                        f"More than the limit of {MAX_PREDICATES} predicates (predicate limit)."
                    ]
                }
            )
        if name in COMBINATORS and isinstance(body, list):
            stack.extend((item, depth + 1) for item in body)
        elif name == "not":
            stack.append((body, depth + 1))


@functools.lru_cache(maxsize=256)
def parse_filter_query(raw: str) -> FilterNode:
    """Validate filter_query text; raises FilterQueryError mapping paths to messages.

    Remembered per process (a tree is immutable; errors are not cached): the homepage
    and the admin panel send the same few filters on every poll, and validating one
    costs more than the list page's queries. At most 256 texts of at most 8 KiB.
    """
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_FILTER_BYTES:
        raise FilterQueryError(
            {ROOT_PATH: [f"Longer than the limit of {MAX_FILTER_BYTES} bytes (size limit)."]}
        )
    try:
        document = strict_json.loads(raw)
    except StrictJSONError as exc:
        if str(exc) == strict_json.TOO_DEEP:
            raise FilterQueryError(
                {ROOT_PATH: [f"Nesting deeper than the limit of {MAX_DEPTH} (depth limit)."]}
            ) from None
        raise FilterQueryError({ROOT_PATH: [f"Not valid JSON: {exc}"]}) from None
    _check_limits(document)
    try:
        return _load_predicate(document, COMBINATORS)
    except ma.ValidationError as exc:
        raise FilterQueryError(_flatten(exc.messages)) from None


class FilterQueryField(fields.Field):
    """A JSON document carried in one query-string parameter."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> ParsedFilter:
        if not isinstance(value, str):
            raise ma.ValidationError("Must be a JSON string.")
        try:
            return ParsedFilter(raw=value, tree=parse_filter_query(value))
        except FilterQueryError as exc:
            raise ma.ValidationError(exc.errors) from None


def _status_choice(value: str) -> None:
    _check_status(value)


class FilterArgsSchema(ma.Schema):
    """The filter parameters shared by the list and the stats endpoints."""

    filter_query = FilterQueryField(
        metadata={
            "description": "The text of a JSON document, URL-encoded like any query "
            "parameter: its grammar is the FilterQuery schema (x-contentSchema).",
        }
    )
    current_user = fields.String(
        validate=[validate.Length(min=1, max=255), label_text],
        metadata={"description": 'What "me" means when the request carries no token.'},
    )
    status = fields.List(
        fields.String(validate=_status_choice, metadata={"enum": list(STATUS_NAMES)}),
        validate=validate.Length(
            max=MAX_STATUS_PARAMETERS,
            error="Given more than {max} times (status limit).",
        ),
        metadata={
            "description": f"Repeatable, at most {MAX_STATUS_PARAMETERS} times; "
            "a run matches any of them."
        },
    )
