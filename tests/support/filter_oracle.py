"""A plain-Python evaluator of the filter_query grammar, written from API.md alone.

It shares no code with runstats_app.filters: it reads the filter as the JSON a
client sends and decides, run by run, whether the contract says it matches.
The property tests compare the list endpoint against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .contract import CREATED_AT, CREATED_BY, NAME, STATUS, STATUS_UPDATED_AT

ME = "me"


def parse_time(text: str) -> datetime:
    """An RFC 3339 timestamp with an offset, as an aware datetime."""
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"naive timestamp {text!r}")
    return value


def parse_bound(text: str) -> datetime:
    """A time_range bound at microsecond precision, rounded *up* when finer digits say
    it lies after that microsecond: stored timestamps are whole microseconds, so
    `t >= bound` and `t < bound` keep their exact meaning for every run."""
    moment = parse_time(text)
    fraction = re.search(r"\.(\d+)", text)
    if fraction and fraction.group(1)[6:].strip("0"):
        moment += timedelta(microseconds=1)
    return moment


@dataclass(frozen=True)
class Run:
    """The fields of a run that filters can see, as the API returned them."""

    id: str
    name: str
    created_by: str | None
    created_at: datetime
    status: str
    status_updated_at: datetime
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Run:
        return cls(
            id=body["id"],
            name=body["name"],
            created_by=body["created_by"],
            created_at=parse_time(body["created_at"]),
            status=body["status"],
            status_updated_at=parse_time(body["status_updated_at"]),
            annotations=dict(body["annotations"]),
        )

    def system_value(self, key: str) -> Any:
        return {
            CREATED_BY: self.created_by,
            NAME: self.name,
            CREATED_AT: self.created_at,
            STATUS: self.status,
            STATUS_UPDATED_AT: self.status_updated_at,
        }[key]


class MeUnresolved(Exception):
    """The filter says "me" and the request names nobody: the API answers 400."""


def _only(predicate: Mapping[str, Any]) -> tuple[str, Any]:
    assert len(predicate) == 1, predicate
    ((name, body),) = predicate.items()
    return name, body


def mentions_me(predicate: Mapping[str, Any]) -> bool:
    """Whether "me" must be resolved: a creator value_equals/value_in naming it."""
    name, body = _only(predicate)
    if name in ("and", "or"):
        return any(mentions_me(item) for item in body)
    if name == "not":
        return mentions_me(body)
    if body.get("key") != CREATED_BY:
        return False
    if name == "value_equals":
        return bool(body["value"] == ME)
    if name == "value_in":
        return ME in body["values"]
    return False


def _resolve(key: str, value: str, me: str | None) -> str:
    if key == CREATED_BY and value == ME:
        assert me is not None
        return me
    return value


def matches(predicate: Mapping[str, Any], run: Run, me: str | None) -> bool:
    """Whether `run` satisfies `predicate` under the contract's matching rules."""
    name, body = _only(predicate)
    if name == "and":
        return all(matches(item, run, me) for item in body)
    if name == "or":
        return any(matches(item, run, me) for item in body)
    if name == "not":
        return not matches(body, run, me)

    key: str = body["key"]
    if key.startswith("system/"):
        present = run.system_value(key) is not None
        value = run.system_value(key)
    else:
        present = key in run.annotations
        value = run.annotations.get(key)

    if name == "key_exists":
        return present
    if not present:
        return False
    if name == "value_equals":
        return bool(value == _resolve(key, body["value"], me))
    if name == "value_in":
        return value in {_resolve(key, v, me) for v in body["values"]}
    if name == "value_contains":
        return bool(body["value_substring"].lower() in value.lower())
    if name == "time_range":
        start = body.get("start_time")
        end = body.get("end_time")
        if start is not None and value < parse_bound(start):
            return False
        return not (end is not None and value >= parse_bound(end))
    raise AssertionError(f"unknown predicate {name!r}")


def sort_newest_first(runs: Iterable[Run]) -> list[Run]:
    """created_at DESC, id DESC (ids are ASCII, so str order is byte order)."""
    return sorted(runs, key=lambda run: (run.created_at, run.id.encode()), reverse=True)


def newest_first(bodies: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of runs, as the API returned them, in the list's order."""
    return [run.id for run in sort_newest_first(Run.from_json(body) for body in bodies)]


def expected_ids(
    runs: Iterable[Run],
    filter_query: Mapping[str, Any] | None,
    statuses: Sequence[str] = (),
    me: str | None = None,
) -> list[str]:
    """The ids the list endpoint must page through, in order.

    Raises MeUnresolved when the filter needs "me" and `me` is None.
    """
    if filter_query is not None and me is None and mentions_me(filter_query):
        raise MeUnresolved
    selected = [
        run
        for run in runs
        if (filter_query is None or matches(filter_query, run, me))
        and (not statuses or run.status in statuses)
    ]
    return [run.id for run in sort_newest_first(selected)]
