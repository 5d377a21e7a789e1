"""Reads on the driver's cursor fail as SQLAlchemy's would: a lost server is an
OperationalError the app answers 503, and the dead connection leaves the pool."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import OperationalError

from runstats_app.runs import driver_reads

from .support.app import PG_URL

pytestmark = pytest.mark.skipif(PG_URL is None, reason="needs RUNSTATS_TEST_DATABASE_URL")


def test_a_server_gone_mid_read_is_sqlalchemys_operational_error_and_invalidates() -> None:
    assert PG_URL is not None
    engine = create_engine(PG_URL)
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            connection.commit()
            with engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(OperationalError) as raised:
                driver_reads.fetch(connection, "one", lambda: select(1), {})
            assert raised.value.connection_invalidated
            assert connection.invalidated
    finally:
        engine.dispose()
