"""Every table of the database in one MetaData: the models and the maintained counts.

Alembic's environment and the migration tests compare this with the database.
"""

from __future__ import annotations

from .models import Base
from .stats.counts import tables

metadata = Base.metadata
assert tables.count_state.metadata is metadata

__all__ = ["metadata"]
