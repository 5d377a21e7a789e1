"""SQLAlchemy 2.0 typed models: runs, their annotations and history, API tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .statuses import STATUS_NAMES
from .types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_STATUS_LIST = ", ".join(f"'{name}'" for name in STATUS_NAMES)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PipelineRun(Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    status_updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    max_attempts: Mapped[int] = mapped_column(Integer, server_default=text("1"))

    annotations: Mapped[list[RunAnnotation]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        order_by="RunAnnotation.key",
        lazy="raise",
    )

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_LIST})", name="status_known"),
        CheckConstraint("attempt >= 1 AND attempt <= max_attempts", name="attempt_in_range"),
        CheckConstraint("max_attempts BETWEEN 1 AND 10", name="max_attempts_range"),
        Index("ix_pipeline_runs_created_at_id", "created_at", "id"),
        Index(
            "ix_pipeline_runs_created_by_created_at",
            "created_by",
            "created_at",
            "id",
            postgresql_include=["status"],
        ),
        Index("ix_pipeline_runs_status_created_at", "status", "created_at", "id"),
        Index("ix_pipeline_runs_status_updated_at", "status_updated_at"),
        Index("ix_pipeline_runs_name", "name"),
        Index(
            "ix_pipeline_runs_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class RunAnnotation(Base):
    __tablename__ = "run_annotations"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))

    run: Mapped[PipelineRun] = relationship(back_populates="annotations", lazy="raise")

    __table_args__ = (
        Index("ix_run_annotations_key_value", "key", "value", "run_id"),
        Index(
            "ix_run_annotations_value_trgm",
            "value",
            postgresql_using="gin",
            postgresql_ops={"value": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class StatusChange(Base):
    """One row per status change of a run, appended in the same transaction."""

    __tablename__ = "run_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    seconds_in_previous_status: Mapped[float]

    __table_args__ = (Index("ix_run_status_history_run_id_id", "run_id", "id"),)


class ApiToken(Base):
    """A bearer token, stored only as its SHA-256 digest."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("role IN ('reader', 'writer', 'admin')", name="role_known"),)


PARTITIONS = "runstats_partitions"
"""MetaData.info key: tables made as partitions of a declared table (PostgreSQL only)."""


def autogenerate_filter(dialect_name: str) -> Callable[..., bool]:
    """An Alembic include_object hook that skips items declared for other dialects,
    and the partitions of a partitioned table (part of the table the models declare)."""

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ == "table" and reflected and name in Base.metadata.info.get(PARTITIONS, ()):
            return False
        ddl_if = getattr(obj, "_ddl_if", None)
        if ddl_if is None or ddl_if.dialect is None:
            return True
        dialects = (
            ddl_if.dialect if isinstance(ddl_if.dialect, (list, tuple, set)) else [ddl_if.dialect]
        )
        return dialect_name in dialects

    return include_object
