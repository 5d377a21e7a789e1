"""Runs as plain values, for answers that only read: no models, no identity map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..pagination import Cursor

RUN_COLUMNS = (
    "id",
    "name",
    "created_by",
    "created_at",
    "updated_at",
    "status",
    "status_updated_at",
    "started_at",
    "ended_at",
    "attempt",
    "max_attempts",
)
"""A run's stored columns, in the order a record's `columns` hold them."""
ID, CREATED_AT = RUN_COLUMNS.index("id"), RUN_COLUMNS.index("created_at")


@dataclass(frozen=True)
class RunRecord:
    """A run: its RUN_COLUMNS values, and its annotations by key."""

    columns: Sequence[Any]
    annotations: dict[str, str]


@dataclass(frozen=True)
class Page:
    """A page of runs as rows of RUN_COLUMNS, their annotations by run id, the next cursor."""

    rows: Sequence[Sequence[Any]]
    annotations: dict[str, dict[str, str]]
    next_cursor: Cursor | None
