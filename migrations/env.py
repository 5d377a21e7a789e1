"""Alembic environment: the app's engine and the models' metadata."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from runstats_app.extensions import db
from runstats_app.models import autogenerate_filter
from runstats_app.schema import metadata

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging_config"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def run_migrations_offline():
    context.configure(
        url=str(db.engine.url),
        target_metadata=metadata,
        literal_binds=True,
        compare_type=True,
        include_object=autogenerate_filter(db.engine.dialect.name),
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
        target_metadata=metadata,
        **{
            **current_app.extensions["migrate"].configure_args,
            "compare_type": True,
            "render_as_batch": connection.dialect.name == "sqlite",
            "include_object": autogenerate_filter(connection.dialect.name),
        },
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
