"""Run operations: create, read, list, history and annotations (status changes: status_changes.py).

Each public function is one unit of work and commits once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    String,
    any_,
    bindparam,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..auth import Identity, Role, require_owner_or_admin
from ..database import write_transaction
from ..errors import BadRequest, Forbidden, NotFound
from ..filters.nodes import FilterNode
from ..filters.sql import build_run_filter
from ..ids import new_run_id
from ..models import Base, PipelineRun, RunAnnotation, StatusChange
from ..pagination import Cursor
from ..statuses import (
    RunStatus,
)
from ..text import is_storable_text
from ..types import UTCDateTime
from . import driver_reads
from .annotations import MAX_ANNOTATIONS_PER_RUN, annotation_key_problem
from .records import CREATED_AT, ID, RUN_COLUMNS, Page, RunRecord

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
_RUN_SELECTED = tuple(_RUNS.c[name] for name in RUN_COLUMNS)
_RUN_WITH_ANNOTATIONS = (
    select(*_RUN_SELECTED, _ANNOTATIONS.c.key.label("annotation_key"), _ANNOTATIONS.c.value)
    .outerjoin(_ANNOTATIONS, _ANNOTATIONS.c.run_id == _RUNS.c.id)
    .where(_RUNS.c.id == bindparam("run_id"))
    .order_by(_ANNOTATIONS.c.key)
)
_HISTORY = Base.metadata.tables[StatusChange.__tablename__]


def _run_rows(connection: Connection, run_id: str) -> Sequence[Sequence[Any]]:
    """The run's columns, once per annotation (once when it has none); 404 when no run."""

    def fetch() -> Sequence[Sequence[Any]]:
        return driver_reads.run_rows(
            connection, "run with annotations", lambda: _RUN_WITH_ANNOTATIONS, {"run_id": run_id}
        )

    rows: Sequence[Sequence[Any]] = _found(run_id, fetch)
    return rows


def read_run(connection: Connection, run_id: str) -> RunRecord:
    """The run and its annotations, by one statement, as plain values (read-only answers)."""
    rows = _run_rows(connection, run_id)
    width = len(RUN_COLUMNS)
    return RunRecord(
        rows[0][:width],
        {row[width]: row[width + 1] for row in rows if row[width] is not None},
    )


def get_run(session: Session, run_id: str) -> PipelineRun:
    """The run and its annotations, read by one statement into a detached PipelineRun.

    Single-run reads sit on the write path (every status change reads the run
    first), where the ORM's identity map and a second SELECT for the
    annotations cost more than the change itself.
    """
    record = read_run(session.connection(), run_id)
    run = PipelineRun(**dict(zip(RUN_COLUMNS, record.columns, strict=True)))
    annotations = [
        RunAnnotation(run_id=run.id, key=key, value=value)
        for key, value in record.annotations.items()
    ]
    set_committed_value(run, "annotations", annotations)
    return run


def create_run(session: Session, identity: Identity, data: Mapping[str, Any]) -> PipelineRun:
    created_by = _creator(identity, data)
    status = RunStatus(data.get("status", RunStatus.QUEUED))
    now = utc_now()
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


_ANNOTATIONS_OF = select(_ANNOTATIONS.c.run_id, _ANNOTATIONS.c.key, _ANNOTATIONS.c.value).order_by(
    _ANNOTATIONS.c.run_id, _ANNOTATIONS.c.key
)
_ANNOTATIONS_OF_IDS = _ANNOTATIONS_OF.where(
    _ANNOTATIONS.c.run_id.in_(bindparam("ids", expanding=True))
)
# One array parameter on PostgreSQL: the statement is the same for every page (psycopg
# prepares it).
_ANNOTATIONS_OF_ARRAY = _ANNOTATIONS_OF.where(
    _ANNOTATIONS.c.run_id == any_(bindparam("ids", type_=postgresql.ARRAY(String)))
)


def _annotations_of(connection: Connection, run_ids: list[str]) -> Sequence[Any]:
    """(run_id, key, value) of the runs' annotations, by run id then key."""
    if not driver_reads.on_driver(connection):
        return connection.execute(_ANNOTATIONS_OF_IDS, {"ids": run_ids}).all()
    return driver_reads.fetch(
        connection, "annotations of runs", lambda: _ANNOTATIONS_OF_ARRAY, {"ids": run_ids}
    )


_PAGE = (
    select(*_RUN_SELECTED)
    .order_by(_RUNS.c.created_at.desc(), _RUNS.c.id.desc())
    .limit(bindparam("limit", type_=Integer))
)
_AFTER = tuple_(_RUNS.c.created_at, _RUNS.c.id) < tuple_(
    bindparam("after_created_at", type_=UTCDateTime()), bindparam("after_id", type_=String)
)


def list_runs(
    session: Session,
    tree: FilterNode | None,
    statuses: Sequence[str] | None,
    page_size: int,
    after: Cursor | None,
) -> Page:
    """One page in (created_at DESC, id DESC) order, keyset-paginated.

    Two statements, Core rows rather than models: the runs, then the annotations of
    all of them (a page is only read, so the ORM's identity map and instrumented
    objects would be built only to be dumped).
    """
    connection = session.connection()
    values: dict[str, Any] = {"limit": page_size + 1}
    if after is not None:
        values.update(after_created_at=after.created_at, after_id=after.run_id)

    def build() -> Any:
        query = _PAGE.where(*build_run_filter(tree, statuses))
        return query.where(_AFTER) if after is not None else query

    shape = ("page", tree, tuple(statuses) if statuses else None, after is not None)
    rows = driver_reads.run_rows(connection, shape, build, values)
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = Cursor(rows[-1][CREATED_AT], rows[-1][ID])
    annotations: dict[str, dict[str, str]] = {row[ID]: {} for row in rows}
    if rows:
        for run_id, key, value in _annotations_of(connection, list(annotations)):
            annotations[run_id][key] = value
    return Page(rows, annotations, next_cursor)


def history(session: Session, run_id: str) -> list[StatusChange]:
    _find_run(session, select(PipelineRun.id), run_id)
    return list(
        session.scalars(
            select(StatusChange).where(StatusChange.run_id == run_id).order_by(StatusChange.id)
        )
    )


def _check_annotation_key(key: str) -> None:
    problem = annotation_key_problem(key)
    if problem:
        raise BadRequest(problem, {"path": {"key": [problem]}})


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
        .values(updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
