"""Alembic environment: the app's engine and the models' metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from runstats_app.extensions import db
from runstats_app.models import Base

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def include_object(obj, name, type_, reflected, compare_to):
    """Skip schema items the models declare for another dialect (ddl_if)."""
    ddl_if = getattr(obj, "_ddl_if", None)
    if ddl_if is not None and ddl_if.dialect is not None:
        dialect = context.get_context().dialect.name
        dialects = ddl_if.dialect if isinstance(ddl_if.dialect, (list, tuple, set)) else [ddl_if.dialect]
        return dialect in dialects
    return True


def run_migrations_offline():
    context.configure(
        url=str(db.engine.url),
        target_metadata=Base.metadata,
        literal_binds=True,
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with db.engine.connect() as connection:
        _run(connection)


def _run(connection):
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        **{
            **current_app.extensions["migrate"].configure_args,
            "compare_type": True,
            "render_as_batch": connection.dialect.name == "sqlite",
            "include_object": include_object,
        },
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
