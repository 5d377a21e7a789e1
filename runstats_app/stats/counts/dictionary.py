"""The dictionary ids a counts query constrains, looked up before its read.

Rollups key creators, names and annotation labels by their dictionary ids. Asked
as subqueries inside the read, the ids are unknown when PostgreSQL plans it: it
guessed 269 counters of a creator where 10,556 matched, then probed the names'
index once per counter for a substring (15 ms of a 31 ms read at 1M runs). Looked
up first, in the read's own snapshot (dictionaries only grow, so an id never
changes meaning), they reach the planner as literal arrays: a creator's counters
are estimated from its statistics, and names are tested against a hashed set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, any_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ...filters.sql import LIKE_ESCAPE, contains_pattern
from .planner import CountsQuery, TextCondition
from .tables import creators, labels, names


@dataclass(frozen=True)
class DictionaryIds:
    """The ids each condition allows: one tuple per created_by set (all of them must
    hold); the names' and the labels' when the query constrains them, else None."""

    creators: tuple[tuple[int, ...], ...] = ()
    names: tuple[int, ...] | None = None
    labels: tuple[int, ...] | None = None


NO_IDS = DictionaryIds()
FEW_IDS = 16


def text_conditions(column: Any, condition: TextCondition) -> list[ColumnElement[bool]]:
    """`condition` on a text column: in every one_of set, containing every substring."""
    clauses: list[ColumnElement[bool]] = [column.in_(sorted(v)) for v in condition.one_of]
    clauses += [
        column.ilike(contains_pattern(part), escape=LIKE_ESCAPE) for part in condition.contains
    ]
    return clauses


def look_up(
    session: Session, query: CountsQuery, also: Sequence[ColumnElement[Any]] = ()
) -> tuple[DictionaryIds, Sequence[Any]]:
    """The query's dictionary ids and the values of `also`, in one statement (a read's
    settings and the counts' state ride along: a round trip each less)."""
    lists: list[Any] = [
        select(creators.c.id).where(creators.c.created_by.in_(sorted(allowed)))
        for allowed in query.created_by.one_of
    ]
    if query.name.constrained:
        lists.append(select(names.c.id).where(*text_conditions(names.c.name, query.name)))
    if query.annotation is not None:
        lists.append(
            select(labels.c.id).where(
                labels.c.key == query.annotation.key,
                *text_conditions(labels.c.value, query.annotation.value),
            )
        )
    arrays = [func.array(ids.scalar_subquery()) for ids in lists]
    if not arrays and not also:
        return NO_IDS, ()
    row = session.execute(select(*also, *arrays)).one()
    found = iter(row[len(also) :])
    chosen_creators = tuple(tuple(next(found)) for _ in query.created_by.one_of)
    chosen_names = tuple(next(found)) if query.name.constrained else None
    chosen_labels = tuple(next(found)) if query.annotation is not None else None
    return DictionaryIds(chosen_creators, chosen_names, chosen_labels), row[: len(also)]


def one_of(column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`column = ANY(ids)` for a few ids; a semi-join against the unnested array for
    more: the planner estimates `= ANY` element by element (1,346 names of "train"
    took 5 ms of planning), and an unnested array by its length."""
    array = literal(list(ids), ARRAY(Integer))
    if len(ids) <= FEW_IDS:
        return column == any_(array)
    return column.in_(select(func.unnest(array)))
