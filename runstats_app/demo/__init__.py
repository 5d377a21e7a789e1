"""Demo data: runs with plausible lifecycles, users, annotations and histories."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from .python_loader import load_demo_data_in_python
from .shape import DemoShape
from .sql_loader import load_demo_data_in_database

__all__ = ["DEFAULT_SHAPE", "DemoShape", "load_demo_data"]

DEFAULT_SHAPE = DemoShape()


def load_demo_data(
    session: Session,
    count: int,
    shape: DemoShape = DEFAULT_SHAPE,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    stage: Callable[[str], Any] | None = None,
) -> None:
    """Insert `count` runs of a platform of `shape`'s sizes (shape.py describes the model).

    PostgreSQL generates the rows itself (set-based, sql_loader.py), and into
    an empty database builds the indexes once at the end; `stage` hears of the
    steps after the rows. Other databases get the same shape of data generated
    in Python (python_loader.py), one transaction per batch.
    """
    if session.get_bind().dialect.name == "postgresql":
        load_demo_data_in_database(session, count, shape, seed, progress, stage)
    else:
        load_demo_data_in_python(session, count, shape, seed, progress)
