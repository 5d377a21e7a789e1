"""A runstats deployment's backends, all the test's own: PostgreSQL with the schema and
demo data, and a redis-server reached through a proxy the test can break."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from .servers import StatsCacheTimings, flask_command
from .services import RedisServer, TcpProxy, TemporaryPostgres


@dataclass
class Backends:
    postgres: TemporaryPostgres
    redis_server: RedisServer
    proxy: TcpProxy
    database_url: str
    env: dict[str, str]
    """The RUNSTATS_* settings that point an app at these backends."""


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
        postgres = TemporaryPostgres(durable=durable).start()
        cleanup.callback(postgres.destroy)
        redis_server = RedisServer().start()
        cleanup.callback(redis_server.stop)
        proxy = TcpProxy(redis_server.port).start()
        cleanup.callback(proxy.stop)
        url = postgres.create_database()
        env = {
            "RUNSTATS_DATABASE_URL": url,
            "RUNSTATS_REDIS_URL": proxy.url,
            "RUNSTATS_SECRET_KEY": secret_key,
            **timings.env(),
            **(more_env or {}),
        }
        flask_command(env, "db", "upgrade")
        flask_command(env, "demo-data", "--runs", str(demo_runs), "--seed", str(seed))
        yield Backends(postgres, redis_server, proxy, url, env)
