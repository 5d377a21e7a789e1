"""Which filters the maintained counts answer, and what they ask of them.

The counts hold, per hour (and day, month, all time), runs by creator, name
and status, and the same per annotation (key, value) for the annotation keys
they track. So they answer a conjunction of conditions on those columns:

- created_by: value_equals / value_in ("me" resolved), key_exists;
- name: value_equals / value_in / value_contains, key_exists;
- created_at: time_range with any bounds;
- status: the `status` parameter and the status predicate;
- annotations of one key (not an untracked one): key_exists, value_equals,
  value_in, value_contains.

Anything else (`or`, `not`, status_updated_at, two annotation keys, an
untracked key) is answered by a scan: `plan` returns None.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ...filters import nodes
from ...filters.nodes import FilterNode


@dataclass(frozen=True)
class TextCondition:
    """A conjunction on one text column: in every `one_of` set, containing every substring."""

    one_of: tuple[frozenset[str], ...] = ()
    contains: tuple[str, ...] = ()

    @property
    def constrained(self) -> bool:
        return bool(self.one_of or self.contains)


@dataclass(frozen=True)
class AnnotationCondition:
    key: str
    value: TextCondition


@dataclass(frozen=True)
class CountsQuery:
    """A filter the counts answer: conditions on the counts' columns, all of them ANDed."""

    created_by: TextCondition = field(default_factory=TextCondition)
    created_by_known: bool = False
    name: TextCondition = field(default_factory=TextCondition)
    statuses: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    annotation: AnnotationCondition | None = None

    @property
    def by_creator(self) -> bool:
        """Whether the counts must be read per creator."""
        return self.created_by.constrained or self.created_by_known


class _Unanswerable(Exception):
    pass


@dataclass
class _Builder:
    untracked_keys: Collection[str]
    created_by: list[frozenset[str]] = field(default_factory=list)
    created_by_contains: list[str] = field(default_factory=list)
    created_by_known: bool = False
    names: list[frozenset[str]] = field(default_factory=list)
    name_contains: list[str] = field(default_factory=list)
    statuses: frozenset[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    annotation_key: str | None = None
    annotation_values: list[frozenset[str]] = field(default_factory=list)
    annotation_contains: list[str] = field(default_factory=list)

    def add(self, node: FilterNode) -> None:
        match node:
            case nodes.And(items):
                for item in items:
                    self.add(item)
            case nodes.Or(items) if len(items) == 1:
                self.add(items[0])
            case nodes.KeyExists(key) | nodes.ValueEquals(key, _) | nodes.ValueIn(key, _):
                self._leaf(key, node)
            case nodes.ValueContains(key, _) | nodes.TimeRange(key, _, _):
                self._leaf(key, node)
            case _:
                raise _Unanswerable

    def _leaf(self, key: str, node: FilterNode) -> None:
        if key == nodes.CREATED_BY:
            if isinstance(node, nodes.KeyExists):
                self.created_by_known = True
            else:
                self.created_by.append(_values(node))
        elif key == nodes.NAME:
            if isinstance(node, nodes.ValueContains):
                self.name_contains.append(node.value_substring)
            elif not isinstance(node, nodes.KeyExists):
                self.names.append(_values(node))
        elif key == nodes.STATUS:
            self._statuses(_values(node))
        elif key == nodes.CREATED_AT and isinstance(node, nodes.TimeRange):
            self._time(node.start_time, node.end_time)
        elif not key.startswith(nodes.SYSTEM_PREFIX):
            self._annotation(key, node)
        else:
            raise _Unanswerable

    def _statuses(self, values: frozenset[str]) -> None:
        self.statuses = values if self.statuses is None else self.statuses & values

    def _time(self, start: datetime | None, end: datetime | None) -> None:
        if start is not None:
            self.start = start if self.start is None else max(self.start, start)
        if end is not None:
            self.end = end if self.end is None else min(self.end, end)

    def _annotation(self, key: str, node: FilterNode) -> None:
        if key in self.untracked_keys or self.annotation_key not in (None, key):
            raise _Unanswerable
        self.annotation_key = key
        if isinstance(node, nodes.ValueContains):
            self.annotation_contains.append(node.value_substring)
        elif not isinstance(node, nodes.KeyExists):
            self.annotation_values.append(_values(node))

    def query(self) -> CountsQuery:
        annotation = None
        if self.annotation_key is not None:
            annotation = AnnotationCondition(
                self.annotation_key,
                TextCondition(tuple(self.annotation_values), tuple(self.annotation_contains)),
            )
        return CountsQuery(
            created_by=TextCondition(tuple(self.created_by)),
            created_by_known=self.created_by_known,
            name=TextCondition(tuple(self.names), tuple(self.name_contains)),
            statuses=self.statuses,
            start=self.start,
            end=self.end,
            annotation=annotation,
        )


def _values(node: FilterNode) -> frozenset[str]:
    match node:
        case nodes.ValueEquals(_, value):
            return frozenset({value})
        case nodes.ValueIn(_, values):
            return frozenset(values)
    raise _Unanswerable


def plan(
    tree: FilterNode | None, statuses: Sequence[str] | None, untracked_keys: Collection[str]
) -> CountsQuery | None:
    """The counts' query for a resolved filter, or None when only a scan can answer it."""
    builder = _Builder(untracked_keys)
    try:
        if tree is not None:
            builder.add(tree)
    except _Unanswerable:
        return None
    if statuses:
        builder._statuses(frozenset(statuses))
    return builder.query()


def only_a_scan_answers(tree: FilterNode | None, statuses: Sequence[str] | None) -> bool:
    """Whether no state of the counts could answer the filter (`plan` without untracked
    keys is None): such a filter is a scan without asking the database."""
    return plan(tree, statuses, untracked_keys=()) is None


def without_created_at(tree: FilterNode | None) -> FilterNode | None:
    """A filter the counts answer (a conjunction) less its created_at ranges: the runs at
    a range's edges are chosen by the edge's bounds, and an edge outside the range
    (the part of a bucket the answer takes away) would match none of them."""
    match tree:
        case nodes.And(items):
            kept = [k for k in map(without_created_at, items) if k is not None]
            return nodes.And(tuple(kept)) if kept else None
        case nodes.Or(items) if len(items) == 1:
            return without_created_at(items[0])
        case nodes.TimeRange(key, _, _) if key == nodes.CREATED_AT:
            return None
    return tree
