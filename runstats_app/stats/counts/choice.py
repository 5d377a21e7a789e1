"""Which rollup answers a counts query: the smallest one that keeps what it constrains."""

from __future__ import annotations

from ..history import HistoryRange
from .planner import CountsQuery
from .tables import (
    BY_CREATOR,
    BY_LABEL,
    CREATOR_NAMES,
    CREATOR_TIMELINE,
    LABEL_NAMES,
    LABEL_TIMELINE,
    NAMES,
    RUNS,
    TIMELINE,
    Rollup,
)
from .timeline import Grain


def history_unit(span: HistoryRange) -> Grain:
    return Grain.HOUR if span.bucket == "hour" else Grain.DAY


def named_rollup(query: CountsQuery) -> Rollup:
    """The smallest rollup per name and status with what the query constrains."""
    if query.annotation is not None:
        return BY_LABEL
    return BY_CREATOR if query.by_creator else RUNS


def status_rollup(query: CountsQuery) -> Rollup:
    """The smallest rollup that counts the query's runs by status: one without names
    unless the query constrains the name (or both an annotation and the creator)."""
    if query.name.constrained:
        return named_rollup(query)
    if query.annotation is not None:
        return BY_LABEL if query.by_creator else LABEL_TIMELINE
    return CREATOR_TIMELINE if query.by_creator else TIMELINE


def small_rollups(query: CountsQuery) -> tuple[Rollup, Rollup] | None:
    """For a filter on no name, no status and no created_at range (all runs, "me", a
    team): (a timeline for its runs by status, an all-time rollup per name without
    statuses for its distinct names). None for any other filter: per name and status
    rows tell both."""
    ranged = query.start is not None or query.end is not None
    if query.name.constrained or query.statuses is not None or ranged:
        return None
    if query.annotation is not None:
        return None if query.by_creator else (LABEL_TIMELINE, LABEL_NAMES)
    return (CREATOR_TIMELINE, CREATOR_NAMES) if query.by_creator else (TIMELINE, NAMES)


def history_rollup(query: CountsQuery, unit: Grain) -> Rollup | None:
    """The rollup counting by status, when it is kept as fine as `unit`; None when not
    (an hourly history filtered by name and creator or label scans)."""
    rollup = status_rollup(query)
    return rollup if rollup.finest <= unit else None
