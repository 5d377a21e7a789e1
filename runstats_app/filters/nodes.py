"""The validated filter tree, independent of JSON and SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SYSTEM_PREFIX = "system/"
CREATED_BY = "system/pipeline_run.created_by"
NAME = "system/pipeline_run.name"
CREATED_AT = "system/pipeline_run.date.created_at"
STATUS = "system/pipeline_run.status"
STATUS_UPDATED_AT = "system/pipeline_run.date.status_updated_at"

KEY_EXISTS = "key_exists"
VALUE_EQUALS = "value_equals"
VALUE_CONTAINS = "value_contains"
VALUE_IN = "value_in"
TIME_RANGE = "time_range"

ANNOTATION_PREDICATES = frozenset({KEY_EXISTS, VALUE_EQUALS, VALUE_CONTAINS, VALUE_IN})
SYSTEM_KEY_PREDICATES: dict[str, frozenset[str]] = {
    CREATED_BY: frozenset({KEY_EXISTS, VALUE_EQUALS, VALUE_IN}),
    NAME: frozenset({KEY_EXISTS, VALUE_EQUALS, VALUE_CONTAINS, VALUE_IN}),
    CREATED_AT: frozenset({TIME_RANGE}),
    STATUS: frozenset({VALUE_EQUALS, VALUE_IN}),
    STATUS_UPDATED_AT: frozenset({TIME_RANGE}),
}

ME = "me"


def allowed_predicates(key: str) -> frozenset[str] | None:
    """The predicates a key takes; None for an unknown system key."""
    if not key.startswith(SYSTEM_PREFIX):
        return ANNOTATION_PREDICATES
    return SYSTEM_KEY_PREDICATES.get(key)


@dataclass(frozen=True)
class And:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Not:
    item: FilterNode


@dataclass(frozen=True)
class KeyExists:
    key: str


@dataclass(frozen=True)
class ValueEquals:
    key: str
    value: str


@dataclass(frozen=True)
class ValueContains:
    key: str
    value_substring: str


@dataclass(frozen=True)
class ValueIn:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class TimeRange:
    key: str
    start_time: datetime | None
    end_time: datetime | None


FilterNode = And | Or | Not | KeyExists | ValueEquals | ValueContains | ValueIn | TimeRange


def mentions_me(node: FilterNode) -> bool:
    match node:
        case And(items) | Or(items):
            return any(mentions_me(item) for item in items)
        case Not(item):
            return mentions_me(item)
        case ValueEquals(key, value):
            return key == CREATED_BY and value == ME
        case ValueIn(key, values):
            return key == CREATED_BY and ME in values
    return False


def resolve_me(node: FilterNode, user: str) -> FilterNode:
    """Replace "me" by `user` wherever it names a creator."""
    match node:
        case And(items):
            return And(tuple(resolve_me(item, user) for item in items))
        case Or(items):
            return Or(tuple(resolve_me(item, user) for item in items))
        case Not(item):
            return Not(resolve_me(item, user))
        case ValueEquals(key, value) if key == CREATED_BY and value == ME:
            return ValueEquals(key, user)
        case ValueIn(key, values) if key == CREATED_BY and ME in values:
            return ValueIn(key, tuple(user if v == ME else v for v in values))
    return node
