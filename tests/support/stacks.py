"""A runstats deployment's backends, all the test's own: PostgreSQL with the schema and
demo data, and a redis-server reached through a proxy the test can break (or, with
`private_database`, whatever Redis the test gives the settings of)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from .servers import StatsCacheTimings, flask_command
from .services import RedisServer, TcpProxyProcess, TemporaryPostgres


@dataclass
class Backends:
    postgres: TemporaryPostgres
    redis_server: RedisServer
    proxy: TcpProxyProcess
    database_url: str
    env: dict[str, str]
    """The RUNSTATS_* settings that point an app at these backends."""


@contextmanager
def private_database(
    env: Mapping[str, str], demo_runs: int, seed: int, *, durable: bool = False
) -> Iterator[tuple[TemporaryPostgres, dict[str, str]]]:
    """A PostgreSQL of the test's own, migrated and loaded with `demo_runs` demo runs; the
    server and `env` with RUNSTATS_DATABASE_URL added. durable: see TemporaryPostgres."""
    postgres = TemporaryPostgres(durable=durable).start()
    try:
        full_env = {**env, "RUNSTATS_DATABASE_URL": postgres.create_database()}
        flask_command(full_env, "db", "upgrade")
        flask_command(full_env, "demo-data", "--runs", str(demo_runs), "--seed", str(seed))
        yield postgres, full_env
    finally:
        postgres.destroy()


@contextmanager
def private_backends(
    secret_key: str,
    timings: StatsCacheTimings,
    demo_runs: int,
    seed: int,
    *,
    durable: bool = False,
    more_env: Mapping[str, str] | None = None,
) -> Iterator[Backends]:
    """Start the backends, migrate and load `demo_runs` demo runs; stop them afterwards.

    durable: see TemporaryPostgres. more_env: further RUNSTATS_* settings of the stack.
    """
    with ExitStack() as cleanup:
        redis_server = RedisServer().start()
        cleanup.callback(redis_server.stop)
        proxy = TcpProxyProcess(redis_server.port).start()
        cleanup.callback(proxy.stop)
        settings = {
            "RUNSTATS_REDIS_URL": proxy.url,
            "RUNSTATS_SECRET_KEY": secret_key,
            **timings.env(),
            **(more_env or {}),
        }
        postgres, env = cleanup.enter_context(
            private_database(settings, demo_runs, seed, durable=durable)
        )
        yield Backends(postgres, redis_server, proxy, env["RUNSTATS_DATABASE_URL"], env)
