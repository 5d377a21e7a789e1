"""Run operations: create, read, list, status changes and annotations.

Each public function is one unit of work and commits once. A status change is
a conditional UPDATE guarded by the status and attempt the caller saw, so two
workers racing from the same status can never both win; the loser re-reads
and either retries (no precondition) or answers 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from ..auth import Identity, Role, require_owner_or_admin
from ..database import write_transaction
from ..errors import BadRequest, Conflict, Forbidden, NotFound
from ..filters.nodes import FilterNode
from ..filters.sql import build_run_filter
from ..ids import new_run_id
from ..metrics import observe_transition
from ..models import Base, PipelineRun, RunAnnotation, StatusChange
from ..pagination import Cursor
from ..statuses import (
    RunStatus,
    can_transition,
    cancel_target,
    is_retry,
    is_terminal,
    resolve_target,
)
from ..text import is_storable_text, label_error
from ..types import UTCDateTime
from .schemas import MAX_ANNOTATIONS_PER_RUN, RESERVED_PREFIX

log = logging.getLogger(__name__)

MAX_CAS_ATTEMPTS = 5


def _now() -> datetime:
    return datetime.now(UTC)


def _run_query() -> Any:
    # populate_existing: what a read returns comes from the database, never from a
    # session identity map that outlived the unit of work that loaded it.
    return (
        select(PipelineRun)
        .options(selectinload(PipelineRun.annotations))
        .execution_options(populate_existing=True)
    )


def _found(run_id: str, fetch: Callable[[], Any]) -> Any:
    """What `fetch` finds for this run id; 404 when nothing (an unstorable id matches nothing)."""
    found = fetch() if is_storable_text(run_id) else None
    if not found:
        raise NotFound(f"No pipeline run with id {run_id!r}.")
    return found


def _find_run(session: Session, query: Any, run_id: str) -> Any:
    return _found(run_id, lambda: session.scalar(query.where(PipelineRun.id == run_id)))


_RUNS = Base.metadata.tables[PipelineRun.__tablename__]
_ANNOTATIONS = Base.metadata.tables[RunAnnotation.__tablename__]
_RUN_WITH_ANNOTATIONS = (
    select(_RUNS, _ANNOTATIONS.c.key.label("annotation_key"), _ANNOTATIONS.c.value)
    .outerjoin(_ANNOTATIONS, _ANNOTATIONS.c.run_id == _RUNS.c.id)
    .where(_RUNS.c.id == bindparam("run_id"))
    .order_by(_ANNOTATIONS.c.key)
)
_HISTORY = Base.metadata.tables[StatusChange.__tablename__]
_RUN_COLUMNS = tuple(column.key for column in _RUNS.columns)


def get_run(session: Session, run_id: str) -> PipelineRun:
    """The run and its annotations, read by one statement into a detached PipelineRun.

    Single-run reads sit on the write path (every status change reads the run
    first), where the ORM's identity map and a second SELECT for the
    annotations cost more than the change itself.
    """
    rows = _found(
        run_id,
        lambda: session.connection().execute(_RUN_WITH_ANNOTATIONS, {"run_id": run_id}).all(),
    )
    first = rows[0]._mapping
    run = PipelineRun(**{name: first[name] for name in _RUN_COLUMNS})
    annotations = [
        RunAnnotation(run_id=run.id, key=row.annotation_key, value=row.value)
        for row in rows
        if row.annotation_key is not None
    ]
    set_committed_value(run, "annotations", annotations)
    return run


def create_run(session: Session, identity: Identity, data: Mapping[str, Any]) -> PipelineRun:
    created_by = _creator(identity, data)
    status = RunStatus(data.get("status", RunStatus.QUEUED))
    now = _now()
    run = PipelineRun(
        id=new_run_id(),
        name=data["name"],
        created_by=created_by,
        created_at=now,
        updated_at=now,
        status=status.value,
        status_updated_at=now,
        started_at=now if status is RunStatus.RUNNING else None,
        ended_at=None,
        attempt=1,
        max_attempts=data.get("max_attempts", 1),
    )
    run.annotations = [
        RunAnnotation(key=key, value=value)
        for key, value in sorted((data.get("annotations") or {}).items())
    ]
    with write_transaction(session):
        session.add(run)
    session.commit()
    log.info("run created id=%s status=%s", run.id, run.status)
    return run


def _creator(identity: Identity, data: Mapping[str, Any]) -> str | None:
    if "created_by" not in data:
        return identity.user
    requested: str | None = data["created_by"]
    if requested == identity.user or identity.has(Role.admin):
        return requested
    raise Forbidden("A writer may only create runs in their own name; admins may name anyone.")


@dataclass(frozen=True)
class Page:
    runs: list[PipelineRun]
    next_cursor: Cursor | None


def list_runs(
    session: Session,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    page_size: int,
    after: Cursor | None,
) -> Page:
    """One page in (created_at DESC, id DESC) order, keyset-paginated."""
    query = (
        _run_query()
        .where(*build_run_filter(tree, statuses))
        .order_by(PipelineRun.created_at.desc(), PipelineRun.id.desc())
        .limit(page_size + 1)
    )
    if after is not None:
        query = query.where(
            tuple_(PipelineRun.created_at, PipelineRun.id)
            < tuple_(literal(after.created_at, UTCDateTime()), literal(after.run_id))
        )
    rows = list(session.scalars(query))
    if len(rows) <= page_size:
        return Page(rows, None)
    last = rows[page_size - 1]
    return Page(rows[:page_size], Cursor(last.created_at, last.id))


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
    now = _now()
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


def history(session: Session, run_id: str) -> list[StatusChange]:
    _find_run(session, select(PipelineRun.id), run_id)
    return list(
        session.scalars(
            select(StatusChange).where(StatusChange.run_id == run_id).order_by(StatusChange.id)
        )
    )


def _check_annotation_key(key: str) -> None:
    if key.startswith(RESERVED_PREFIX):
        raise BadRequest(
            f"Annotation keys beginning with {RESERVED_PREFIX!r} are reserved.",
            {"path": {"key": ["Reserved prefix."]}},
        )
    broken = label_error(key)
    if broken:
        raise BadRequest(f"Annotation key: {broken}", {"path": {"key": [broken]}})
    if not 1 <= len(key) <= 255:
        raise BadRequest(
            "Annotation keys are 1 to 255 characters.", {"path": {"key": ["Bad length."]}}
        )


def _lock_run_for_change(session: Session, identity: Identity, run_id: str) -> PipelineRun:
    run: PipelineRun = _find_run(session, select(PipelineRun).with_for_update(), run_id)
    require_owner_or_admin(identity, run.created_by)
    return run


def set_annotation(
    session: Session, identity: Identity, run_id: str, key: str, value: str
) -> PipelineRun:
    _check_annotation_key(key)
    with write_transaction(session):
        run = _lock_run_for_change(session, identity, run_id)
        exists = session.scalar(
            select(func.count()).where(RunAnnotation.run_id == run_id, RunAnnotation.key == key)
        )
        if not exists:
            count = session.scalar(select(func.count()).where(RunAnnotation.run_id == run_id))
            if (count or 0) >= MAX_ANNOTATIONS_PER_RUN:
                raise BadRequest(f"A run holds at most {MAX_ANNOTATIONS_PER_RUN} annotations.")
        insert = (
            postgresql.insert(RunAnnotation)
            if session.get_bind().dialect.name == "postgresql"
            else sqlite.insert(RunAnnotation)
        )
        statement = insert.values(run_id=run_id, key=key, value=value)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[RunAnnotation.run_id, RunAnnotation.key],
                set_={"value": statement.excluded.value},
            )
        )
        _touch(session, run)
    session.commit()
    return get_run(session, run_id)


def delete_annotation(session: Session, identity: Identity, run_id: str, key: str) -> None:
    _check_annotation_key(key)
    with write_transaction(session):
        run = _lock_run_for_change(session, identity, run_id)
        result = session.execute(
            delete(RunAnnotation).where(RunAnnotation.run_id == run_id, RunAnnotation.key == key)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            session.rollback()
            raise NotFound(f"Run {run_id!r} has no annotation {key!r}.")
        _touch(session, run)
    session.commit()


def _touch(session: Session, run: PipelineRun) -> None:
    session.execute(
        update(PipelineRun)
        .where(PipelineRun.id == run.id)
        .values(updated_at=_now())
        .execution_options(synchronize_session=False)
    )
