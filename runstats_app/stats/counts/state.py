"""Whether the counts can answer now, and which annotation keys they leave out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
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
    ready = session.execute(select(count_state.c.ready).where(count_state.c.id == 1)).scalar()
    if not ready:
        return NOT_READY
    keys = session.execute(select(untracked_keys.c.key)).scalars()
    return CountsState(True, frozenset(keys))
