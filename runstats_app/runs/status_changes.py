"""Status changes: transitions and cancels, atomic and serialised per run.

Each public function is one unit of work and commits once. A status change is
a conditional UPDATE guarded by the status and attempt the caller saw, so two
workers racing from the same status can never both win; the loser re-reads
and either retries (no precondition) or answers 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..auth import Identity, require_owner_or_admin
from ..database import write_transaction
from ..errors import Conflict
from ..metrics import observe_transition
from ..models import Base, PipelineRun, StatusChange
from ..statuses import (
    RunStatus,
    can_transition,
    cancel_target,
    is_retry,
    is_terminal,
    resolve_target,
)
from .service import get_run, utc_now

log = logging.getLogger(__name__)

MAX_CAS_ATTEMPTS = 5
_RUNS = Base.metadata.tables[PipelineRun.__tablename__]
_HISTORY = Base.metadata.tables[StatusChange.__tablename__]


Decision = Callable[[PipelineRun, RunStatus], RunStatus | None]


def transition_run(
    session: Session,
    identity: Identity,
    run_id: str,
    target: RunStatus,
    expected: RunStatus | None = None,
) -> PipelineRun:
    def decide(run: PipelineRun, current: RunStatus) -> RunStatus:
        if expected is not None and current is not expected:
            raise _conflict(run, f"The run is {current.value}, not {expected.value}.")
        if is_terminal(current):
            raise _conflict(run, f"The run is {current.value}, a terminal status.")
        if not can_transition(current, target):
            raise _conflict(run, f"A run cannot go from {current.value} to {target.value}.")
        return resolve_target(target, run.attempt, run.max_attempts)

    return _change_status(session, identity, run_id, decide)


def cancel_run(session: Session, identity: Identity, run_id: str) -> PipelineRun:
    def decide(run: PipelineRun, current: RunStatus) -> RunStatus | None:
        if is_terminal(current):
            raise _conflict(run, f"The run is {current.value}, a terminal status.")
        return cancel_target(current)

    return _change_status(session, identity, run_id, decide)


def _conflict(run: PipelineRun, message: str) -> Conflict:
    return Conflict(message, {"current_status": run.status})


def _change_status(
    session: Session, identity: Identity, run_id: str, decide: Decision
) -> PipelineRun:
    for _ in range(MAX_CAS_ATTEMPTS):
        with write_transaction(session):
            run = get_run(session, run_id)
            require_owner_or_admin(identity, run.created_by)
            current = RunStatus(run.status)
            new_status = decide(run, current)
            if new_status is None:
                session.rollback()
                return run
            seconds = _apply(session, run, current, new_status)
        if seconds is not None:
            session.commit()
            observe_transition(current.value, new_status.value, seconds)
            log.info(
                "run status changed id=%s from=%s to=%s attempt=%s",
                run.id,
                current.value,
                new_status.value,
                run.attempt,
            )
            return run
        session.rollback()
    raise Conflict("The run kept changing concurrently; retry.", {"current_status": None})


def _apply(
    session: Session, run: PipelineRun, current: RunStatus, new_status: RunStatus
) -> float | None:
    """The guarded UPDATE plus its history row; None when another writer got there first."""
    now = utc_now()
    started_at = run.started_at
    if new_status is RunStatus.RUNNING and started_at is None:
        started_at = now
    values: dict[str, Any] = {
        "status": new_status.value,
        "status_updated_at": now,
        "updated_at": now,
        "started_at": started_at,
        "ended_at": now if is_terminal(new_status) else None,
        "attempt": run.attempt + 1 if is_retry(current, new_status) else run.attempt,
    }
    seconds = max(0.0, (now - run.status_updated_at).total_seconds())
    change = {
        "run_id": run.id,
        "from_status": current.value,
        "to_status": new_status.value,
        "at": now,
        "seconds_in_previous_status": seconds,
    }
    guard = {"guard_status": current.value, "guard_attempt": run.attempt}
    if not _update_with_history(session.connection(), {**values, **change, **guard}):
        return None
    for name, value in values.items():
        set_committed_value(run, name, value)
    return seconds


# Built once: a status change is the hottest write, and building a statement
# (and its cache key) per request costs more CPU than executing it.
_GUARDED_UPDATE = (
    update(_RUNS)
    .where(
        _RUNS.c.id == bindparam("run_id"),
        _RUNS.c.status == bindparam("guard_status"),
        _RUNS.c.attempt == bindparam("guard_attempt"),
    )
    .values(
        {
            name: bindparam(name, type_=_RUNS.c[name].type)
            for name in (
                "status",
                "status_updated_at",
                "updated_at",
                "started_at",
                "ended_at",
                "attempt",
            )
        }
    )
)
_HISTORY_COLUMNS = ("run_id", "from_status", "to_status", "at", "seconds_in_previous_status")
_HISTORY_INSERT = insert(_HISTORY).values(
    {name: bindparam(name, type_=_HISTORY.c[name].type) for name in _HISTORY_COLUMNS}
)
_CHANGED = _GUARDED_UPDATE.returning(_RUNS.c.id).cte("changed")
_UPDATE_WITH_HISTORY = (
    insert(_HISTORY)
    .from_select(
        _HISTORY_COLUMNS,
        select(
            *(bindparam(name, type_=_HISTORY.c[name].type) for name in _HISTORY_COLUMNS)
        ).select_from(_CHANGED),
    )
    .returning(_HISTORY.c.id)
)


def _update_with_history(connection: Connection, params: dict[str, Any]) -> bool:
    """The guarded UPDATE and, when it changed the row, the history row.

    PostgreSQL does both in one statement (a data-modifying CTE), saving a round
    trip on the hottest write; SQLite cannot, and runs them one after the other
    inside the same transaction.
    """
    if connection.dialect.name == "postgresql":
        return connection.execute(_UPDATE_WITH_HISTORY, params).first() is not None
    if connection.execute(_GUARDED_UPDATE, params).rowcount != 1:
        return False
    connection.execute(_HISTORY_INSERT, params)
    return True
