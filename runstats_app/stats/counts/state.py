"""Whether the counts can answer now, and which annotation keys they leave out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from .tables import count_state, untracked_keys


@dataclass(frozen=True)
class CountsState:
    ready: bool
    untracked_keys: frozenset[str]


NOT_READY = CountsState(False, frozenset())


class CountsChanged(Exception):
    """In a read's snapshot the counts' state is not the one its plan was made with (a
    rebuild began or ended in between): the caller scans instead."""


def state_columns() -> list[ColumnElement[Any]]:
    """The counts' state as two columns of a SELECT: ready, the untracked keys."""
    ready = select(count_state.c.ready).where(count_state.c.id == 1).scalar_subquery()
    return [ready, func.array(select(untracked_keys.c.key).scalar_subquery())]


def state_of(values: Sequence[Any]) -> CountsState:
    """The state those two columns tell."""
    ready, keys = values
    return CountsState(True, frozenset(keys)) if ready else NOT_READY


def read_state(session: Session) -> CountsState:
    """The counts' state as the session's snapshot sees it (not ready where they are not kept)."""
    if session.get_bind().dialect.name != "postgresql":
        return NOT_READY
    return state_of(session.execute(select(*state_columns())).one())
