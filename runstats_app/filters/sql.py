"""The one WHERE builder: a FilterNode becomes a SQLAlchemy boolean expression.

Every leaf is two-valued (never SQL NULL), so `not` is an exact complement:
comparisons on the nullable `created_by` are guarded with IS NOT NULL, and
annotation predicates are EXISTS subqueries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, not_, or_, true

from ..models import PipelineRun, RunAnnotation
from . import nodes
from .nodes import FilterNode

LIKE_ESCAPE = "\\"

_SYSTEM_COLUMNS: dict[str, Any] = {
    nodes.CREATED_BY: PipelineRun.created_by,
    nodes.NAME: PipelineRun.name,
    nodes.CREATED_AT: PipelineRun.created_at,
    nodes.STATUS: PipelineRun.status,
    nodes.STATUS_UPDATED_AT: PipelineRun.status_updated_at,
}
_NULLABLE = frozenset({nodes.CREATED_BY})


def contains_pattern(substring: str) -> str:
    """A LIKE pattern matching `substring` literally anywhere."""
    escaped = (
        substring.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", "\\%").replace("_", "\\_")
    )
    return f"%{escaped}%"


def _annotation(key: str, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        RunAnnotation.run_id == PipelineRun.id, RunAnnotation.key == key, *conditions
    )


def _value_condition(column: Any, node: FilterNode) -> ColumnElement[bool]:
    match node:
        case nodes.ValueEquals(value=value):
            condition: ColumnElement[bool] = column == value
        case nodes.ValueContains(value_substring=substring):
            condition = column.ilike(contains_pattern(substring), escape=LIKE_ESCAPE)
        case nodes.ValueIn(values=values):
            condition = column.in_(sorted(set(values)))
        case nodes.TimeRange(start_time=start, end_time=end):
            bounds = []
            if start is not None:
                bounds.append(column >= start)
            if end is not None:
                bounds.append(column < end)
            condition = and_(*bounds)
        case _:
            raise TypeError(f"not a value predicate: {node!r}")
    return condition


def _leaf(node: FilterNode) -> ColumnElement[bool]:
    key: str = node.key  # type: ignore[union-attr]
    column = _SYSTEM_COLUMNS.get(key)
    if column is None:
        if isinstance(node, nodes.KeyExists):
            return _annotation(key)
        return _annotation(key, _value_condition(RunAnnotation.value, node))
    if isinstance(node, nodes.KeyExists):
        return column.is_not(None) if key in _NULLABLE else true()
    condition = _value_condition(column, node)
    if key in _NULLABLE:
        return and_(column.is_not(None), condition)
    return condition


def build_where(node: FilterNode) -> ColumnElement[bool]:
    match node:
        case nodes.And(items):
            return and_(*(build_where(item) for item in items))
        case nodes.Or(items):
            return or_(*(build_where(item) for item in items))
        case nodes.Not(item):
            return not_(build_where(item))
    return _leaf(node)


def build_run_filter(
    tree: FilterNode | None, statuses: Sequence[str] | None
) -> list[ColumnElement[bool]]:
    """The WHERE clauses shared by the list and the stats endpoints."""
    clauses: list[ColumnElement[bool]] = []
    if tree is not None:
        clauses.append(build_where(tree))
    if statuses:
        clauses.append(PipelineRun.status.in_(sorted(set(statuses))))
    return clauses
