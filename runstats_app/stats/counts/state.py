"""Whether the counts can answer now, and which annotation keys they leave out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .tables import count_state, untracked_keys


@dataclass(frozen=True)
class CountsState:
    ready: bool
    untracked_keys: frozenset[str]


NOT_READY = CountsState(False, frozenset())


def read_state(session: Session) -> CountsState:
    """The counts' state as the session's snapshot sees it (not ready where they are not kept)."""
    if session.get_bind().dialect.name != "postgresql":
        return NOT_READY
    keys = func.array(select(untracked_keys.c.key).scalar_subquery())
    found = session.execute(select(count_state.c.ready, keys).where(count_state.c.id == 1)).first()
    if found is None or not found.ready:
        return NOT_READY
    return CountsState(True, frozenset(found[1]))
