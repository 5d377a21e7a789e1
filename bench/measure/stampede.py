"""5. Stampede: hundreds of readers of a cold stats cache at once, and how many aggregates ran."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, create_engine, text

from tests.support.probes import COMPUTATION

from ..context import Bench, Goal, Section, api_path
from ..databases import demo_data_command, load_demo_runs
from ..harness.client import HttpClient, Reply, expect
from ..harness.clients import Work, run_together
from ..harness.formatting import DASH, ms, table
from ..harness.metrics import aggregates_run, scrape
from ..harness.stats import median, percentile

HEADER = [
    "round",
    "aggregates (PostgreSQL)",
    "aggregates (app metric)",
    "query time",
    "p50",
    "p99",
    "max",
    "HTTP status",
    "X-Cache",
]
APP_METRIC_ONLY = (
    "aggregate queries are counted only by the app's own "
    "`runstats_aggregate_query_seconds_count` from `/metrics`, **not by the database**"
)


@dataclass(frozen=True)
class Target:
    """The database the stampede's server uses, how aggregates are counted there, in words."""

    database_url: str
    count_engine: Engine | None  # with pg_stat_statements; None: the app's metric only
    where: str


@dataclass
class StampedeRound:
    statuses: Counter[int]
    caches: Counter[str]
    latencies: list[float]
    db_queries: int | None
    metric_queries: int
    query_ms: float | None


def measure(bench: Bench) -> Section:
    profile = bench.profile
    bench.stop_app()
    target = _target(bench)
    server = bench.server("wsgi:app", bench.app_env(target.database_url), "stampede")
    warm = HttpClient(server.url)
    for _ in range(8):  # connections to the database and Redis in (likely) every worker
        expect(warm.get("/readyz"), 200, "readyz")
    warm.close()
    results = [
        _round(bench, server.url, target.count_engine, profile.stampede_requests)
        for _ in range(profile.stampede_rounds)
    ]
    server.stop()
    counts = [r.db_queries if r.db_queries is not None else r.metric_queries for r in results]
    by = "pg_stat_statements" if results[0].db_queries is not None else "app metrics only"
    goal = Goal(
        f"stampede: aggregate queries for {profile.stampede_requests} cold requests",
        f"{', '.join(map(str, counts))} per round ({by}); reader p50 "
        f"{ms(median(percentile(r.latencies, 0.5) for r in results))}, p99 "
        f"{ms(median(percentile(r.latencies, 0.99) for r in results))}",
        "1",
        all(count == 1 for count in counts),
    )
    body = f"""\
Cold cache: the bench Redis database is flushed (`FLUSHDB`) before each round. Then
{profile.stampede_requests} clients, each already connected, send `GET
/api/pipeline_runs/stats` (no filter) at the same instant (a barrier) to runstats under
gunicorn with 4 sync workers, {profile.stampede_rounds} round(s). Database: {target.where}.
Latency is what each reader saw, from sending its request to the end of the answer.

{_table(results)}
"""
    return Section("Stampede on a cold cache", body, [goal])


def _target(bench: Bench) -> Target:
    """A private cluster that counts with pg_stat_statements, or the bench database."""
    if bench.stampede_db != "private":
        return Target(
            bench.database_url,
            None,
            "the bench database (pg_stat_statements is not loaded there); " + APP_METRIC_ONLY,
        )
    try:
        database_url, count_engine, load_seconds = _private_cluster(bench)
    except Exception as exc:
        return Target(
            bench.database_url,
            None,
            f"the bench database, because a private cluster could not be started "
            f"({type(exc).__name__}: {exc}); " + APP_METRIC_ONLY,
        )
    return Target(
        database_url,
        count_engine,
        f"a private PostgreSQL cluster started for this measurement "
        f"(`tests/support/services.TemporaryPostgres`, with `pg_stat_statements`), loaded "
        f"with `{demo_data_command(bench.runs_total)}` "
        f"({load_seconds:.0f} s); computations are counted **by PostgreSQL** "
        "(`pg_stat_statements` calls of the statements tagged `/* runstats:stats-… */`: "
        "a scan of the runs or a read of the maintained counts, whichever answers the "
        "filter), and by the app's own `runstats_aggregate_query_seconds_count` beside it",
    )


def _private_cluster(bench: Bench) -> tuple[str, Engine, float]:
    """A PostgreSQL of our own with pg_stat_statements, loaded like the bench database."""
    from tests.support.services import TemporaryPostgres

    cluster = TemporaryPostgres()
    bench.stack.callback(cluster.destroy)
    cluster.start()
    url = cluster.create_database()
    count_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    bench.stack.callback(count_engine.dispose)
    with count_engine.connect() as connection:
        connection.execute(text("CREATE EXTENSION pg_stat_statements"))
    return url, count_engine, load_demo_runs(url, bench.runs_total)


def _round(bench: Bench, url: str, count_engine: Engine | None, readers: int) -> StampedeRound:
    """Flush the cache, reset the counts, and release `readers` requests at one instant."""
    redis.Redis.from_url(bench.redis_url).flushdb()
    if count_engine is not None:
        with count_engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_statements_reset()"))
            connection.commit()
    before = scrape(url)
    replies: list[Reply | None] = [None] * readers
    run_together(readers, _reader(url, replies), "stampede")
    answered = [reply for reply in replies if reply is not None]
    metric_queries = aggregates_run(before, scrape(url))
    db_queries, query_ms = _counted(count_engine) if count_engine is not None else (None, None)
    return StampedeRound(
        statuses=Counter(r.status for r in answered),
        caches=Counter(r.headers.get("x-cache", DASH) for r in answered),
        latencies=[r.seconds for r in answered],
        db_queries=db_queries,
        metric_queries=metric_queries,
        query_ms=query_ms,
    )


def _reader(url: str, replies: list[Reply | None]) -> Work:
    """A reader, connected before the barrier, that keeps its answer in `replies`."""
    path = api_path("stats")

    def work(index: int, barrier: threading.Barrier) -> int:
        client = HttpClient(url, timeout=120)
        try:
            client.connect()
            barrier.wait(timeout=60)
            replies[index] = client.get(path)
        finally:
            client.close()
        return 0

    return work


def _counted(count_engine: Engine) -> tuple[int, float | None]:
    """Stats computations (scans or counts reads) PostgreSQL ran since the reset, and their
    mean time in ms."""
    with count_engine.connect() as connection:
        calls, mean = connection.execute(
            text(
                "SELECT coalesce(sum(calls), 0), max(mean_exec_time) FROM pg_stat_statements"
                " WHERE query LIKE :q"
            ),
            {"q": COMPUTATION},
        ).one()
    return int(calls), (float(mean) if mean is not None else None)


def _table(results: list[StampedeRound]) -> str:
    rows = [
        [
            number + 1,
            DASH if result.db_queries is None else f"**{result.db_queries}**",
            result.metric_queries,
            DASH if result.query_ms is None else ms(result.query_ms / 1000),
            ms(percentile(result.latencies, 0.5)),
            ms(percentile(result.latencies, 0.99)),
            ms(max(result.latencies)),
            ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items())),
            ", ".join(f"{k}: {v}" for k, v in sorted(result.caches.items())),
        ]
        for number, result in enumerate(results)
    ]
    return table(HEADER, rows)
