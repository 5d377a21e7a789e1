"""The six measurements of issue 5, each side by side with its baseline.

Every function takes the running `Bench` and returns a `Section`: the markdown
for bench/RESULTS.md and the goals it met or missed. A broken harness raises
HarnessError; a missed goal is only reported.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import psycopg
import redis
from sqlalchemy import Connection, create_engine, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from runstats_app.auth import Role, create_token
from runstats_app.filters.nodes import FilterNode, resolve_me
from runstats_app.filters.schema import parse_filter_query
from runstats_app.filters.sql import build_run_filter
from runstats_app.ids import new_run_id
from runstats_app.models import ApiToken, PipelineRun, StatusChange
from runstats_app.timefmt import parse_timestamp
from tests.multiprocess.probes import AGGREGATE

from .context import Bench, Goal, HomepageFilter, Section, api_path, homepage_filters, week_ago
from .harness.client import HttpClient, Reply, expect
from .harness.cpu import process_tree_cpu_seconds
from .harness.errors import HarnessError
from .harness.formatting import DASH, X, details, mib, ms, per_second, table, times
from .harness.load import LoadResult
from .harness.metrics import sample_sum, scrape
from .harness.processes import flask_cli
from .harness.servers import Gunicorn
from .harness.stats import median, percentile
from .report import note

FLOOR_KEY = "runstats:bench:floor"
WRITER = "runstats-bench-writer"
STATUSES_SEEN = ("hit", "miss", "stale", "bypass")


def _cache_results(before: dict[str, float], after: dict[str, float]) -> str:
    parts = []
    for result in STATUSES_SEEN:
        delta = sample_sum(after, "runstats_stats_cache_requests_total", result=result)
        delta -= sample_sum(before, "runstats_stats_cache_requests_total", result=result)
        parts.append(f"{result} {delta:,.0f}")
    return ", ".join(parts)


def _aggregates(before: dict[str, float], after: dict[str, float]) -> int:
    name = "runstats_aggregate_query_seconds_count"
    return round(sample_sum(after, name) - sample_sum(before, name))


# --- 1. warm stats vs the floor ------------------------------------------------


def warm_stats(bench: Bench) -> Section:
    profile = bench.profile
    app = bench.app()
    floor = bench.server(
        "bench.floor_app:app",
        {"FLOOR_REDIS_URL": bench.redis_url, "FLOOR_KEY": FLOOR_KEY},
        "floor",
    )
    chosen = homepage_filters(week_ago())[2]
    assert chosen.filter_query is not None
    path = api_path("stats", chosen.filter_query, current_user=bench.user)

    client = HttpClient(app.url)
    body = expect(client.get(path), 200, "warm stats: first request").body
    warm = expect(client.get(path), 200, "warm stats: second request")
    client.close()
    if warm.headers.get("x-cache") != "hit":
        raise HarnessError(f"warm stats: second request was not a hit: {warm.headers}")
    store = redis.Redis.from_url(bench.redis_url)
    store.set(FLOOR_KEY, body)
    bench.stack.callback(store.delete, FLOOR_KEY)
    floor_client = HttpClient(floor.url)
    if expect(floor_client.get(path), 200, "floor").body != body:
        raise HarnessError("the floor does not serve the stats body")
    floor_client.close()

    connections = profile.wrk_connections
    for url in (app.url, floor.url):  # unmeasured warm-up of every worker
        bench.load.run(url, [path], connections, duration=1).check("warm-up")

    def measured(server: Gunicorn, what: str) -> Round:
        cpu, redis_cpu = server.cpu_seconds(), _redis_cpu(store)
        result = bench.load.run(server.url, [path], connections, duration=profile.wrk_seconds)
        result.check(what)
        return Round(
            result,
            (server.cpu_seconds() - cpu) / result.requests,
            (_redis_cpu(store) - redis_cpu) / result.requests,
        )

    before = scrape(app.url)
    rounds: list[tuple[Round, Round]] = []
    for number in range(profile.wrk_rounds):
        ours = measured(app, f"stats round {number + 1}")
        rounds.append((ours, measured(floor, f"floor round {number + 1}")))
    after = scrape(app.url)

    ours_rps = median(a.load.rps for a, _ in rounds)
    floor_rps = median(b.load.rps for _, b in rounds)
    ratio = median(a.load.rps / b.load.rps for a, b in rounds)
    ratio_of_medians = ours_rps / floor_rps
    ours_cpu = median(a.cpu for a, _ in rounds)
    floor_cpu = median(b.cpu for _, b in rounds)
    ours_redis = median(a.redis_cpu for a, _ in rounds)
    floor_redis = median(b.redis_cpu for _, b in rounds)

    def latency(result: LoadResult) -> str:
        if result.p50_ms is None or result.p99_ms is None:
            return DASH
        return f"{result.p50_ms:.2f} / {result.p99_ms:.2f} ms"

    rows: list[list[Any]] = [
        [
            number + 1,
            per_second(a.load.rps),
            latency(a.load),
            us(a.cpu),
            per_second(b.load.rps),
            latency(b.load),
            us(b.cpu),
            times(a.load.rps / b.load.rps),
        ]
        for number, (a, b) in enumerate(rounds)
    ]
    rows.append(
        [
            "**median**",
            f"**{per_second(ours_rps)}**",
            "",
            us(ours_cpu),
            f"**{per_second(floor_rps)}**",
            "",
            us(floor_cpu),
            f"**{times(ratio)}**",
        ]
    )
    threads = getattr(bench.load, "threads", None)
    tool = bench.load.name + (f" -t{min(threads, connections)}" if threads else "")
    header = [
        "round",
        "runstats req/s",
        "p50 / p99",
        "CPU/req",
        "floor req/s",
        "p50 / p99",
        "CPU/req",
        "ratio",
    ]
    text_ = f"""\
`GET /api/pipeline_runs/stats?filter_query=…&current_user={bench.user}` (URL-encoded).

Filter: created_by = me (`current_user={bench.user}`) and created_at within the last
7 days — `{chosen.filter_query}`. Both servers: `gunicorn -c gunicorn.conf.py
--workers 4` (sync workers), same Redis; the floor (`bench/floor_app.py`) does one
Redis `GET` of the very bytes runstats answered. Load: {tool}, {connections}
connections, {profile.wrk_seconds:g} s per round, {profile.wrk_rounds} rounds
alternating runstats, floor, runstats, floor… after a 1 s unmeasured warm-up of each.
"CPU/req" is the user + system CPU time of the gunicorn master and workers (psutil)
during the round divided by the requests served.

{table(header, rows)}

**Ratio: {times(ratio)}** (median of the per-round ratios, each round's two runs
being next to each other in time; ratio of the medians: {times(ratio_of_medians)}).
CPU per request, medians: runstats' gunicorn processes {us(ours_cpu)} vs the
floor's {us(floor_cpu)} ({times(ours_cpu / floor_cpu)}); Redis server
{us(ours_redis)} vs {us(floor_redis)} (the whole server, from `INFO cpu`). With 2 cores
shared by wrk, Redis and the workers, requests/s follow CPU per request. How runstats'
cache answered during the rounds: {_cache_results(before, after)}.
"""
    goal = Goal(
        1,
        "warm stats (2 predicates) vs floor, req/s",
        f"{per_second(ours_rps)} vs {per_second(floor_rps)}: {times(ratio)}",
        f"≥ 0.8{X}",
        ratio >= 0.8,
    )
    if not goal.met:
        text_ += f"\n**Goal not met**: {times(ratio)} of the floor, {0.8 / ratio:.2f}{X} short.\n"
    return Section(1, "Warm stats vs the floor", text_, [goal])


@dataclass(frozen=True)
class Round:
    load: LoadResult
    cpu: float  # gunicorn CPU seconds per request
    redis_cpu: float  # Redis server CPU seconds per request


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


# --- 2. cold aggregates --------------------------------------------------------

BARE_SQL = "SELECT status, count(*) FROM pipeline_runs GROUP BY status"


@dataclass
class AggregateQuery:
    label: str
    filter_query: str | None
    statement: Any
    sql: str
    selective: bool
    setting: str | None = None  # a SET LOCAL run before it, in its transaction


NAME_CONTAINS = 'name contains "train"'
TRIGRAM_FORCED = f"{NAME_CONTAINS}, trigram forced"


def aggregate_statement(tree: FilterNode | None) -> Any:
    """The aggregate as runstats.stats.service.count_by_status builds it."""
    return (
        select(PipelineRun.status, func.count())
        .where(*build_run_filter(tree, None))
        .group_by(PipelineRun.status)
    )


def literal_sql(statement: Any) -> str:
    dialect = postgresql.psycopg.dialect(paramstyle="named")  # type: ignore[attr-defined]
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _aggregate_queries(bench: Bench) -> list[AggregateQuery]:
    queries = [AggregateQuery("bare `GROUP BY status`", None, text(BARE_SQL), BARE_SQL, False)]
    for item in homepage_filters(week_ago()):
        tree = (
            None
            if item.filter_query is None
            else resolve_me(parse_filter_query(item.filter_query), bench.user)
        )
        statement = aggregate_statement(tree)
        queries.append(
            AggregateQuery(
                item.label, item.filter_query, statement, literal_sql(statement), item.selective
            )
        )
        if item.label == NAME_CONTAINS:
            # Not what runstats runs: the same query with sequential scans disabled,
            # to show what the trigram index would cost when the planner declines it.
            queries.append(
                AggregateQuery(
                    TRIGRAM_FORCED,
                    item.filter_query,
                    statement,
                    literal_sql(statement),
                    selective=False,
                    setting="enable_seqscan = off",
                )
            )
    return queries


def _estimated_cost(connection: Connection, sql: str, setting: str) -> float:
    """The planner's total cost for `sql` with one kind of scan disabled."""
    raw: Any = connection.connection.driver_connection
    raw.execute(f"SET LOCAL {setting}")
    plan = raw.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()[0]
    raw.rollback()
    return float(plan[0]["Plan"]["Total Cost"])


def _explain(connection: Connection, sql: str, setting: str | None = None) -> str:
    raw: Any = connection.connection.driver_connection
    if setting:
        raw.execute(f"SET LOCAL {setting}")
    rows = raw.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()
    raw.rollback()  # the driver's: SQLAlchemy began nothing, and SET LOCAL must not leak
    return "\n".join(row[0] for row in rows)


_SCAN = re.compile(
    r"((?:Parallel )?(?:Seq Scan|Index Scan|Index Only Scan|Bitmap Index Scan|Bitmap Heap Scan)"
    r"(?: Backward)?(?: using \w+)?(?: on \w+)?)"
)


def plan_summary(plan: str) -> str:
    seen: list[str] = []
    for match in _SCAN.findall(plan):
        if match not in seen:
            seen.append(match)
    return "; ".join(seen)


AGGREGATE_HEADER = [
    "filter",
    "runs matched",
    "first run",
    "median",
    "vs bare",
    "fraction",
    "scans in the plan",
]


def cold_aggregates(bench: Bench) -> Section:
    queries = _aggregate_queries(bench)
    timings: dict[str, list[float]] = {q.label: [] for q in queries}
    first: dict[str, float] = {}
    matched: dict[str, int] = {}
    rounds = bench.profile.aggregate_rounds
    with bench.engine.connect() as connection:
        for number in range(rounds + 1):
            for query in queries:
                if query.setting:
                    connection.execute(text(f"SET LOCAL {query.setting}"))
                started = time.perf_counter()
                rows = connection.execute(query.statement).all()
                elapsed = time.perf_counter() - started
                connection.rollback()
                if number == 0:
                    first[query.label] = elapsed
                    matched[query.label] = sum(int(count) for _, count in rows)
                else:
                    timings[query.label].append(elapsed)
        plans = {q.label: _explain(connection, q.sql, q.setting) for q in queries}
        name_query = next(q for q in queries if q.label == NAME_CONTAINS)
        seq_cost = _estimated_cost(connection, name_query.sql, "enable_bitmapscan = off")
        trigram_cost = _estimated_cost(connection, name_query.sql, "enable_seqscan = off")

    bare = median(timings[queries[0].label])
    rows: list[list[Any]] = []
    goals: list[Goal] = []
    misses: list[str] = []
    for query in queries:
        value = median(timings[query.label])
        ratio = value / bare
        rows.append(
            [
                query.label,
                f"{matched[query.label]:,}",
                ms(first[query.label]),
                f"**{ms(value)}**",
                times(ratio) if query is not queries[0] else "1",
                f"1/{1 / ratio:.0f}" if ratio < 1 else DASH,
                plan_summary(plans[query.label]),
            ]
        )
        if query.selective:
            met = ratio <= 0.05
            goals.append(
                Goal(
                    2,
                    f"cold aggregate, {query.label}",
                    f"{ms(value)} = {times(ratio)} of the bare scan ({ms(bare)})",
                    f"≤ 1/20 (0.05{X})",
                    met,
                )
            )
            if not met:
                misses.append(
                    f"- {query.label}: {times(ratio)} of the bare scan, "
                    f"{ratio / 0.05:.1f}{X} over the 1/20 goal"
                )
    name_plan = plans[NAME_CONTAINS]
    uses_trigram = "ix_pipeline_runs_name_trgm" in name_plan
    goals.append(
        Goal(
            2,
            'cold aggregate, name contains "train": trigram index',
            "used" if uses_trigram else "not used: " + plan_summary(name_plan),
            "ix_pipeline_runs_name_trgm in the plan",
            uses_trigram,
        )
    )
    estimates = (
        f"the planner's estimates: {seq_cost:,.0f} for the sequential scan, {trigram_cost:,.0f} "
        f"for the trigram plan ({abs(seq_cost - trigram_cost) / min(seq_cost, trigram_cost):.1%} "
        f"apart); measured, {ms(median(timings[NAME_CONTAINS]))} as planned vs "
        f"{ms(median(timings[TRIGRAM_FORCED]))} with the trigram index forced"
    )
    if not uses_trigram:
        misses.append(
            '- name contains "train": the plan does not use `ix_pipeline_runs_name_trgm`; '
            + estimates
        )
    plan_blocks = "\n\n".join(
        details(
            f"{query.label}: <code>EXPLAIN (ANALYZE, BUFFERS)</code>",
            f"{'SET LOCAL ' + query.setting + ';' + chr(10) if query.setting else ''}"
            f"{query.sql}\n\n{plan}",
        )
        for query, plan in ((q, plans[q.label]) for q in queries)
    )
    text_ = f"""\
Each query is the aggregate runstats issues on a cache miss — `SELECT status, count(*)
… WHERE <build_run_filter(tree)> GROUP BY status`, built with runstats' own
`parse_filter_query` → `resolve_me` ("me" = `{bench.user}`) → `build_run_filter` and
executed through SQLAlchemy with bound parameters on an engine made by
`runstats_app.database.make_engine` — beside the bare `{BARE_SQL}`. One untimed
round first ("first run"), then {rounds} rounds, each running every query once in
turn (bare, none, me, …, bare, none, me, …); the median is over those rounds.
"Cold" means the stats cache is cold and the query runs; PostgreSQL's buffers and
the OS page cache are whatever the previous rounds left, as on a live server. The row
"{TRIGRAM_FORCED}" is not a query runstats issues: the same statement after
`SET LOCAL enable_seqscan = off`, to show what the trigram index costs when the planner
prefers a sequential scan. Name contains "train": {estimates}.

{table(AGGREGATE_HEADER, rows)}
"""
    if misses:
        text_ += "\nGoals missed:\n\n" + "\n".join(misses) + "\n\n" + note("cold-aggregates-tried")
        if not uses_trigram:
            text_ += "\n" + note("cold-aggregates-trigram-declined")
    text_ += "\n" + plan_blocks + "\n"
    return Section(2, f"Cold aggregates at {bench.runs_total:,} runs", text_, goals)


# --- 3. deep pages -------------------------------------------------------------

RUN_COLUMNS = (
    "id, name, created_by, created_at, updated_at, status, status_updated_at, "
    "started_at, ended_at, attempt, max_attempts"
)
OFFSET_SQL = (
    f"SELECT {RUN_COLUMNS} FROM pipeline_runs "
    "ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset"
)
KEYSET_SQL = (
    f"SELECT {RUN_COLUMNS} FROM pipeline_runs WHERE (created_at, id) < (:created_at, :id) "
    "ORDER BY created_at DESC, id DESC LIMIT :limit"
)


def deep_pages(bench: Bench) -> Section:
    profile = bench.profile
    page_size = 20
    deep = min(profile.deep_page, max(2, bench.runs_total // page_size))
    app = bench.app()
    client = HttpClient(app.url)
    first_path = api_path("", page_size=page_size)

    started = time.perf_counter()
    reply = expect(client.get(first_path), 200, "list page 1")
    previous = reply.json()
    for page in range(2, deep + 1):
        token = previous["next_page_token"]
        if token is None:
            raise HarnessError(f"the list ended at page {page - 1}, before page {deep}")
        if page == deep:
            break
        previous = expect(
            client.get(f"{first_path}&page_token={quote(token)}"), 200, f"list page {page}"
        ).json()
    follow_seconds = time.perf_counter() - started
    deep_path = f"{first_path}&page_token={quote(previous['next_page_token'])}"
    last = previous["pipeline_runs"][-1]
    cursor = {"created_at": parse_timestamp(last["created_at"]), "id": last["id"]}
    offset = (deep - 1) * page_size
    deep_ids = [
        run["id"]
        for run in expect(client.get(deep_path), 200, "deep page").json()["pipeline_runs"]
    ]

    http_first: list[float] = []
    http_deep: list[float] = []
    for _ in range(profile.page_repeats):
        http_first.append(expect(client.get(first_path), 200, "page 1").seconds)
        http_deep.append(expect(client.get(deep_path), 200, f"page {deep}").seconds)
    client.close()

    limit = page_size + 1  # what runstats asks for: one more row says whether a next page exists
    offset_sql, keyset_sql = text(OFFSET_SQL), text(KEYSET_SQL)
    sql_first: list[float] = []
    sql_keyset: list[float] = []
    sql_offset: list[float] = []

    def timed(connection: Connection, statement: Any, params: dict[str, Any]) -> tuple[float, Any]:
        started = time.perf_counter()
        rows = connection.execute(statement, params).all()
        elapsed = time.perf_counter() - started
        connection.rollback()
        return elapsed, rows

    with bench.engine.connect() as connection:
        _, offset_rows = timed(connection, offset_sql, {"limit": limit, "offset": offset})
        _, keyset_rows = timed(connection, keyset_sql, {**cursor, "limit": limit})
        for _ in range(profile.page_repeats):
            sql_first.append(timed(connection, offset_sql, {"limit": limit, "offset": 0})[0])
            sql_keyset.append(timed(connection, keyset_sql, {**cursor, "limit": limit})[0])
            sql_offset.append(timed(connection, offset_sql, {"limit": limit, "offset": offset})[0])
        stamp = f"'{cursor['created_at'].isoformat()}'::timestamptz"
        keyset_plan = _explain(
            connection,
            KEYSET_SQL.replace(":created_at", stamp)
            .replace(":id", f"'{cursor['id']}'")
            .replace(":limit", str(limit)),
        )
        offset_plan = _explain(
            connection,
            OFFSET_SQL.replace(":limit", str(limit)).replace(":offset", str(offset)),
        )
    same_rows = (
        [row[0] for row in offset_rows][:page_size]
        == [row[0] for row in keyset_rows][:page_size]
        == deep_ids
    )

    http_ratio = median(http_deep) / median(http_first)
    keyset_ratio = median(sql_keyset) / median(sql_first)
    offset_ratio = median(sql_offset) / median(sql_first)
    rows = [
        [
            f"HTTP `GET /api/pipeline_runs/?page_size={page_size}`, keyset token",
            ms(median(http_first)),
            ms(median(http_deep)),
            f"**{times(http_ratio)}**",
        ],
        [
            "SQL, keyset `WHERE (created_at, id) < (…)`",
            ms(median(sql_first)),
            ms(median(sql_keyset)),
            times(keyset_ratio),
        ],
        [
            f"SQL, `OFFSET {offset:,}`",
            ms(median(sql_first)),
            ms(median(sql_offset)),
            times(offset_ratio),
        ],
    ]
    goal = Goal(
        3,
        f"deep page ({deep:,}) vs page 1, keyset over HTTP",
        f"{ms(median(http_deep))} vs {ms(median(http_first))} = {times(http_ratio)} "
        f"(OFFSET: {times(offset_ratio)})",
        f"≤ 1.5{X}",
        http_ratio <= 1.5,
    )
    text_ = f"""\
Page {deep:,} (page_size {page_size}) was reached by following `next_page_token`
from page 1 ({deep - 1:,} requests, {follow_seconds:.0f} s in all); then page 1 and page
{deep:,} were requested alternately {profile.page_repeats} times with that token,
timing each request alone (client side, `http.client`). Beside them, the same ordering in
raw SQL through SQLAlchemy (`ORDER BY created_at DESC, id DESC LIMIT {limit}`, all run
columns): page 1, the keyset predicate from page {deep - 1:,}'s last row, and
`OFFSET {offset:,}`, alternately, {profile.page_repeats} times. Rows on page {deep:,}
by keyset (HTTP and SQL) and by OFFSET are the same: **{"yes" if same_rows else "NO"}**.

{table(["what", "page 1 (median)", f"page {deep:,} (median)", "ratio"], rows)}

{details(f"page {deep:,} by keyset: <code>EXPLAIN (ANALYZE, BUFFERS)</code>", keyset_plan)}

{details(f"page {deep:,} by OFFSET: <code>EXPLAIN (ANALYZE, BUFFERS)</code>", offset_plan)}
"""
    if not same_rows:
        text_ += "\n**The keyset page and the OFFSET page differ** (concurrent writes?).\n"
    return Section(3, "Deep pages: keyset vs OFFSET", text_, [goal])


# --- 4. writes -------------------------------------------------------------------


def _psycopg_conninfo(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _remove_bench_runs(bench: Bench) -> None:
    with Session(bench.engine) as session:
        ids = select(PipelineRun.id).where(PipelineRun.created_by == WRITER)
        session.execute(delete(StatusChange).where(StatusChange.run_id.in_(ids)))
        session.execute(delete(PipelineRun).where(PipelineRun.created_by == WRITER))
        session.execute(delete(ApiToken).where(ApiToken.user_name == WRITER))
        session.commit()


def _run_clients(clients: int, work: Callable[[int, threading.Barrier], int]) -> tuple[float, int]:
    """Start `clients` threads at once; seconds until the last one is done, and failures."""
    barrier = threading.Barrier(clients + 1)
    failures = [0] * clients
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            failures[index] = work(index, barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=120)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise HarnessError(f"a write client failed: {errors[0]!r}") from errors[0]
    return elapsed, sum(failures)


def writes(bench: Bench) -> Section:
    profile = bench.profile
    app = bench.app()
    _remove_bench_runs(bench)
    bench.stack.callback(_remove_bench_runs, bench)
    with Session(bench.engine) as session:
        token = create_token(session, WRITER, Role.writer)
        session.commit()
    auth = {"Authorization": f"Bearer {token}"}

    clients, per_client, rounds = (
        profile.write_clients,
        profile.runs_per_client,
        profile.write_rounds,
    )
    batches: list[list[list[str]]] = []  # [round and side][client] -> run ids
    values = []
    now = datetime.now(UTC)
    for _ in range(rounds * 2 + 2):  # the first two: an unmeasured warm-up of each side
        batch = []
        for _ in range(clients):
            ids = [new_run_id() for _ in range(per_client)]
            batch.append(ids)
            for run_id in ids:
                values.append(
                    {
                        "id": run_id,
                        "name": "bench-writes",
                        "created_by": WRITER,
                        "created_at": now,
                        "updated_at": now,
                        "status": "QUEUED",
                        "status_updated_at": now,
                        "attempt": 1,
                        "max_attempts": 1,
                    }
                )
        batches.append(batch)
    with Session(bench.engine) as session:
        session.execute(insert(PipelineRun), values)
        session.commit()

    def through_app(batch: list[list[str]]) -> Callable[[int, threading.Barrier], int]:
        def work(index: int, barrier: threading.Barrier) -> int:
            client = HttpClient(app.url)
            barrier.wait(timeout=120)
            failed = 0
            for run_id in batch[index]:
                for target, expected in (("RUNNING", "QUEUED"), ("SUCCEEDED", "RUNNING")):
                    reply = client.post_json(
                        f"/api/pipeline_runs/{run_id}/transitions",
                        {"status": target, "expected_status": expected},
                        auth,
                    )
                    failed += reply.status != 200
            client.close()
            return failed

        return work

    conninfo = _psycopg_conninfo(bench.database_url)

    def bare(batch: list[list[str]]) -> Callable[[int, threading.Barrier], int]:
        def work(index: int, barrier: threading.Barrier) -> int:
            failed = 0
            with psycopg.connect(conninfo) as connection:
                barrier.wait(timeout=120)
                for run_id in batch[index]:
                    changed_at = now
                    for target, previous, column in (
                        ("RUNNING", "QUEUED", "started_at"),
                        ("SUCCEEDED", "RUNNING", "ended_at"),
                    ):
                        at = datetime.now(UTC)
                        cursor = connection.execute(
                            "UPDATE pipeline_runs SET status = %s, status_updated_at = %s, "
                            f"updated_at = %s, {column} = %s "
                            "WHERE id = %s AND status = %s AND attempt = %s",
                            (target, at, at, at, run_id, previous, 1),
                        )
                        if cursor.rowcount != 1:
                            failed += 1
                            connection.rollback()
                            continue
                        connection.execute(
                            "INSERT INTO run_status_history (run_id, from_status, to_status, "
                            "at, seconds_in_previous_status) VALUES (%s, %s, %s, %s, %s)",
                            (run_id, previous, target, at, (at - changed_at).total_seconds()),
                        )
                        connection.commit()
                        changed_at = at
            return failed

        return work

    transitions = clients * per_client * 2
    harness = psutil.Process()
    postgres = _postgres_cpu(bench)

    def measured(work: Callable[[int, threading.Barrier], int]) -> WriteRound:
        cpu, own, pg = app.cpu_seconds(), sum(harness.cpu_times()[:2]), postgres()
        seconds, failed = _run_clients(clients, work)
        if failed:
            raise HarnessError(f"writes: {failed} transitions failed")
        pg_after = postgres()
        return WriteRound(
            rate=transitions / seconds,
            server_cpu=(app.cpu_seconds() - cpu) / transitions,
            harness_cpu=(sum(harness.cpu_times()[:2]) - own) / transitions,
            postgres_cpu=None if pg is None or pg_after is None else (pg_after - pg) / transitions,
        )

    measured(through_app(batches[0]))
    measured(bare(batches[1]))
    results: list[tuple[WriteRound, WriteRound]] = []
    for number in range(1, rounds + 1):
        results.append(
            (measured(through_app(batches[2 * number])), measured(bare(batches[2 * number + 1])))
        )
    healthz = measured(_healthz_clients(app.url, transitions // clients))

    with Session(bench.engine) as session:
        done = session.scalar(
            select(func.count()).where(
                PipelineRun.created_by == WRITER, PipelineRun.status == "SUCCEEDED"
            )
        )
        history = session.scalar(
            select(func.count())
            .select_from(StatusChange)
            .join(PipelineRun, PipelineRun.id == StatusChange.run_id)
            .where(PipelineRun.created_by == WRITER)
        )
    if done != len(values) or history != 2 * len(values):
        raise HarnessError(
            f"writes: {done} runs succeeded and {history} history rows, "
            f"expected {len(values)} and {2 * len(values)}"
        )

    ours = median(a.rate for a, _ in results)
    floor = median(b.rate for _, b in results)
    ratio = median(a.rate / b.rate for a, b in results)
    rows: list[list[Any]] = [
        [
            n + 1,
            per_second(a.rate),
            us(a.server_cpu),
            _maybe_us(a.postgres_cpu),
            per_second(b.rate),
            us(b.harness_cpu),
            _maybe_us(b.postgres_cpu),
            times(a.rate / b.rate),
        ]
        for n, (a, b) in enumerate(results)
    ]
    ours_cpu = WriteRound.median(a for a, _ in results)
    bare_cpu = WriteRound.median(b for _, b in results)
    rows.append(
        [
            "**median**",
            f"**{per_second(ours)}**",
            us(ours_cpu.server_cpu),
            _maybe_us(ours_cpu.postgres_cpu),
            f"**{per_second(floor)}**",
            us(bare_cpu.harness_cpu),
            _maybe_us(bare_cpu.postgres_cpu),
            f"**{times(ratio)}**",
        ]
    )
    header = [
        "round",
        "runstats transitions/s",
        "gunicorn CPU/transition",
        "PostgreSQL CPU/transition",
        "bare psycopg transitions/s",
        "bare loop CPU/transition",
        "PostgreSQL CPU/transition",
        "ratio",
    ]
    goal = Goal(
        4,
        "transitions/s, HTTP (4 workers) vs bare psycopg",
        f"{per_second(ours)} vs {per_second(floor)}: {times(ratio)}",
        f"≥ 0.5{X}",
        ratio >= 0.5,
    )
    text_ = f"""\
{len(values):,} QUEUED runs were inserted first (owner `{WRITER}`, a writer token). In
each round {clients} concurrent clients each move their own {per_client} runs
QUEUED → RUNNING → SUCCEEDED ({transitions:,} transitions per round):

- **runstats**: `POST /api/pipeline_runs/{{id}}/transitions` with `expected_status`,
  through gunicorn (4 workers) — token lookup, one read of the run with its
  annotations, the guarded `UPDATE` and the history `INSERT` as one statement (a
  data-modifying CTE), commit, JSON response;
- **bare loop**: one psycopg connection per client (threads of the harness) doing only
  the same guarded `UPDATE … WHERE id = … AND status = … AND attempt = …`, the history
  `INSERT` and `COMMIT`.

One unmeasured warm-up round of each, then {rounds} rounds alternating runstats and
bare, on the {bench.runs_total:,}-run table (every status update touches its indexes).
The runs are deleted afterwards. CPU per transition: user + system time of the gunicorn
processes (runstats), of the harness process running the bare loop (bare), and of
PostgreSQL's processes (both sides).

{table(header, rows)}

**Ratio: {times(ratio)}** (median of the per-round ratios; ratio of the medians
{times(ours / floor)}). The HTTP clients themselves used {us(ours_cpu.harness_cpu)} of CPU per
transition. PostgreSQL's CPU is that of the postmaster and all its processes (backends
that exited included, psutil) while the clients ran.
"""
    if not goal.met:
        text_ += f"\n**Goal not met**: {times(ratio)}, {0.5 / ratio:.1f}{X} short of 0.5{X}.\n\n"
        text_ += _write_budget(ours_cpu, floor, healthz, clients) + "\n" + note("writes-tried")
    return Section(4, "Writes: status transitions", text_, [goal])


@dataclass(frozen=True)
class WriteRound:
    """One round of writes: the rate, and CPU seconds per transition by where they went."""

    rate: float
    server_cpu: float
    harness_cpu: float
    postgres_cpu: float | None

    @staticmethod
    def median(rounds: Iterable[WriteRound]) -> WriteRound:
        items = list(rounds)
        postgres = [r.postgres_cpu for r in items if r.postgres_cpu is not None]
        return WriteRound(
            rate=median(r.rate for r in items),
            server_cpu=median(r.server_cpu for r in items),
            harness_cpu=median(r.harness_cpu for r in items),
            postgres_cpu=median(postgres) if len(postgres) == len(items) else None,
        )


def _maybe_us(seconds: float | None) -> str:
    return DASH if seconds is None else us(seconds)


def _postgres_cpu(bench: Bench) -> Callable[[], float | None]:
    """A reader of the bench server's total CPU seconds; it reads None when that is not local.

    The postmaster's pid is the first line of `postmaster.pid` in the data directory.
    """
    url = make_url(bench.database_url)
    if url.host not in (None, "", "127.0.0.1", "localhost", "::1"):
        return lambda: None
    try:
        with bench.engine.connect() as connection:
            directory = connection.execute(text("SHOW data_directory")).scalar_one()
        pid = int((Path(directory) / "postmaster.pid").read_text().split()[0])
        process_tree_cpu_seconds(pid)
    except (OSError, ValueError, IndexError, psutil.Error, SQLAlchemyError):
        return lambda: None
    return lambda: process_tree_cpu_seconds(pid)


def _healthz_clients(url: str, requests: int) -> Callable[[int, threading.Barrier], int]:
    """The write clients' shape, asking `GET /healthz`: what the stack costs before any work."""

    def work(index: int, barrier: threading.Barrier) -> int:
        client = HttpClient(url)
        barrier.wait(timeout=120)
        failed = sum(client.get("/healthz").status != 200 for _ in range(requests))
        client.close()
        return failed

    return work


def _write_budget(ours: WriteRound, bare_rate: float, healthz: WriteRound, clients: int) -> str:
    """Where the CPU of a transition goes, against what half the bare loop's rate would allow."""
    cores = os.cpu_count() or 1
    budget = cores / (0.5 * bare_rate)
    busy = (ours.server_cpu + ours.harness_cpu + (ours.postgres_cpu or 0.0)) * ours.rate / cores
    if ours.postgres_cpu is None:
        return (
            f"PostgreSQL is not on this machine, so its CPU was not measured; at 0.5{X} the "
            f"bare loop the {cores} cores here would have {us(budget)} per transition for "
            f"gunicorn and the clients, and gunicorn alone used {us(ours.server_cpu)}.\n"
        )
    left = budget - ours.postgres_cpu - ours.harness_cpu
    share = "more than all" if left <= 0 else f"{healthz.server_cpu / left:.0%}"
    return f"""\
Where the CPU goes. During runstats' rounds gunicorn, PostgreSQL and the clients kept
{busy:.0%} of the {cores} cores busy. At 0.5{X} the bare loop ({per_second(0.5 * bare_rate)})
the machine has at most {us(budget)} of CPU per transition for everything, every core
busy. runstats' transitions cost PostgreSQL {us(ours.postgres_cpu)}
each and the HTTP clients {us(ours.harness_cpu)}, which leaves {us(max(left, 0))} for gunicorn;
gunicorn used {us(ours.server_cpu)}. Answering `GET /healthz` — no database, no body, no
token — the same gunicorn costs {us(healthz.server_cpu)} per request under the same
{clients} clients ({per_second(healthz.rate)}): the web stack alone, before any work of a
transition, takes {share} of what the goal leaves it.
"""


# --- 5. stampede -------------------------------------------------------------------


@dataclass
class StampedeRound:
    statuses: Counter[int]
    caches: Counter[str]
    latencies: list[float]
    db_queries: int | None
    metric_queries: int
    query_ms: float | None


def _stampede_round(
    bench: Bench, url: str, count_engine: Any | None, requests_: int
) -> StampedeRound:
    redis.Redis.from_url(bench.redis_url).flushdb()
    if count_engine is not None:
        with count_engine.connect() as connection:
            connection.execute(text("SELECT pg_stat_statements_reset()"))
            connection.commit()
    before = scrape(url)
    path = api_path("stats")
    barrier = threading.Barrier(requests_)
    replies: list[Reply | BaseException] = [RuntimeError("not run")] * requests_

    def one(index: int) -> None:
        client = HttpClient(url, timeout=120)
        try:
            client.connect()
            barrier.wait(timeout=60)
            replies[index] = client.get(path)
        except BaseException as exc:
            replies[index] = exc
        finally:
            client.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(requests_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failures = [r for r in replies if isinstance(r, BaseException)]
    if failures:
        raise HarnessError(f"stampede: {len(failures)} requests failed: {failures[0]!r}")
    answered = [r for r in replies if isinstance(r, Reply)]
    after = scrape(url)
    db_queries = query_ms = None
    if count_engine is not None:
        with count_engine.connect() as connection:
            calls, mean = connection.execute(
                text(
                    "SELECT coalesce(sum(calls), 0), max(mean_exec_time) FROM pg_stat_statements"
                    " WHERE query LIKE :q"
                ),
                {"q": AGGREGATE},
            ).one()
        db_queries, query_ms = int(calls), (float(mean) if mean is not None else None)
    return StampedeRound(
        statuses=Counter(r.status for r in answered),
        caches=Counter(r.headers.get("x-cache", DASH) for r in answered),
        latencies=[r.seconds for r in answered],
        db_queries=db_queries,
        metric_queries=_aggregates(before, after),
        query_ms=query_ms,
    )


def _private_cluster(bench: Bench) -> tuple[str, Any, float]:
    """A PostgreSQL of our own with pg_stat_statements, loaded like the bench database."""
    from tests.services import TemporaryPostgres

    cluster = TemporaryPostgres()
    bench.stack.callback(cluster.destroy)
    cluster.start()
    url = cluster.create_database()
    count_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    bench.stack.callback(count_engine.dispose)
    with count_engine.connect() as connection:
        connection.execute(text("CREATE EXTENSION pg_stat_statements"))
    env = {"RUNSTATS_DATABASE_URL": url}
    flask_cli(env, "db", "upgrade", timeout=600)
    started = time.perf_counter()
    flask_cli(env, "demo-data", "--runs", str(bench.runs_total), "--seed", "42", timeout=3600)
    return url, count_engine, time.perf_counter() - started


STAMPEDE_HEADER = [
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


def stampede(bench: Bench) -> Section:
    profile = bench.profile
    bench.stop_app()
    where = ""
    count_engine = None
    database_url = bench.database_url
    if bench.stampede_db == "private":
        try:
            database_url, count_engine, load_seconds = _private_cluster(bench)
            where = (
                f"a private PostgreSQL cluster started for this measurement "
                f"(`tests/services.TemporaryPostgres`, with `pg_stat_statements`), loaded "
                f"with `flask demo-data --runs {bench.runs_total} --seed 42` "
                f"({load_seconds:.0f} s); aggregate queries are counted **by PostgreSQL** "
                f"(`pg_stat_statements` calls of the `GROUP BY pipeline_runs.status` "
                "statement), and by the app's own `runstats_aggregate_query_seconds_count` "
                "beside it"
            )
        except Exception as exc:
            count_engine = None
            where = (
                f"the bench database, because a private cluster could not be started "
                f"({type(exc).__name__}: {exc}); aggregate queries are counted only by "
                "the app's own `runstats_aggregate_query_seconds_count` from `/metrics`, "
                "**not by the database**"
            )
    else:
        where = (
            "the bench database (pg_stat_statements is not loaded there); aggregate queries "
            "are counted only by the app's own `runstats_aggregate_query_seconds_count` "
            "from `/metrics`, **not by the database**"
        )
    server = bench.server("wsgi:app", bench.app_env(database_url), "stampede")
    warm = HttpClient(server.url)
    for _ in range(8):  # connections to the database and Redis in (likely) every worker
        expect(warm.get("/readyz"), 200, "readyz")
    warm.close()
    results = [
        _stampede_round(bench, server.url, count_engine, profile.stampede_requests)
        for _ in range(profile.stampede_rounds)
    ]
    server.stop()

    rows = []
    for number, result in enumerate(results):
        rows.append(
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
        )
    counts = [r.db_queries if r.db_queries is not None else r.metric_queries for r in results]
    by = "pg_stat_statements" if results[0].db_queries is not None else "app metrics only"
    goal = Goal(
        5,
        f"stampede: aggregate queries for {profile.stampede_requests} cold requests",
        f"{', '.join(map(str, counts))} per round ({by}); reader p50 "
        f"{ms(median(percentile(r.latencies, 0.5) for r in results))}, p99 "
        f"{ms(median(percentile(r.latencies, 0.99) for r in results))}",
        "1",
        all(count == 1 for count in counts),
    )
    text_ = f"""\
Cold cache: the bench Redis database is flushed (`FLUSHDB`) before each round. Then
{profile.stampede_requests} clients, each already connected, send `GET
/api/pipeline_runs/stats` (no filter) at the same instant (a barrier) to runstats under
gunicorn with 4 sync workers, {profile.stampede_rounds} round(s). Database: {where}.
Latency is what each reader saw, from sending its request to the end of the answer.

{table(STAMPEDE_HEADER, rows)}
"""
    return Section(5, "Stampede on a cold cache", text_, [goal])


# --- 6. memory -------------------------------------------------------------------


def _mixed_paths(bench: Bench, user_ids: list[str]) -> list[str]:
    filters: list[HomepageFilter] = homepage_filters(week_ago())
    stats: list[str] = []
    lists: list[str] = []
    for item in filters:
        users = (
            ["alice", "bob", "carol"]
            if item.filter_query and '"me"' in item.filter_query
            else [""]
        )
        for user in users:
            params: dict[str, str | int] = {"current_user": user} if user else {}
            stats.append(api_path("stats", item.filter_query, **params))
            lists.append(api_path("", item.filter_query, page_size=20, **params))
    gets = [f"/api/pipeline_runs/{run_id}" for run_id in user_ids]
    size = max(len(stats), len(lists), len(gets))
    paths = []
    for index in range(size):
        paths += [stats[index % len(stats)], lists[index % len(lists)], gets[index % len(gets)]]
    return paths


MAX_CHUNK_SECONDS = 60.0  # the warm-up's rate (cold caches) says little about the next chunk


def memory(bench: Bench) -> Section:
    profile = bench.profile
    bench.stop_app()
    with bench.engine.connect() as connection:
        ids = [
            row[0]
            for row in connection.execute(
                text("SELECT id FROM pipeline_runs ORDER BY random() LIMIT 100")
            )
        ]
    paths = _mixed_paths(bench, ids)
    server = bench.server(
        "wsgi:app", bench.app_env(), "memory", workers=1, extra_args=["--max-requests", "0"]
    )
    (pid,) = server.worker_pids()
    process = psutil.Process(pid)
    connections = 4
    warm = bench.load.run(server.url, paths, connections, duration=profile.memory_warmup)
    rate = warm.check("memory warm-up").rps
    samples: list[tuple[int, int, float, int]] = [(0, process.memory_info().rss, 0.0, 0)]
    unique = [process.memory_full_info().uss]
    served = 0
    before = scrape(server.url)
    while profile.memory_total - served > 0.02 * profile.memory_total:
        # wrk runs are timed, so a chunk of about memory_chunk requests is a duration
        # from the last chunk's rate; the counts reported are the ones wrk completed.
        remaining = profile.memory_total - served
        # the last chunk aims 5 % past the total, so that no sliver of a chunk follows it
        last = remaining < 1.5 * profile.memory_chunk
        wanted = remaining * 1.05 if last else profile.memory_chunk
        duration = min(max(1.0, wanted / rate), MAX_CHUNK_SECONDS)
        result = bench.load.run(server.url, paths, connections, duration=duration)
        result.check("memory load")
        served += result.requests
        rate = result.rps
        if server.worker_pids() != [pid]:
            raise HarnessError(f"the memory worker was replaced; see {server.log_path}")
        samples.append((served, process.memory_info().rss, result.rps, result.non_2xx))
        unique.append(process.memory_full_info().uss)
    after = scrape(server.url)
    server.stop()

    half = profile.memory_total // 2

    def at(target: int) -> tuple[int, int]:
        return min(((n, rss) for n, rss, _, _ in samples), key=lambda s: abs(s[0] - target))

    mid_n, mid_rss = at(half)
    end_n, end_rss = samples[-1][0], samples[-1][1]
    growth = end_rss - mid_rss
    rows = [
        [f"{n:,}", mib(rss), mib(uss), per_second(rps) if rps else "(after warm-up)", bad]
        for (n, rss, rps, bad), uss in zip(samples, unique, strict=True)
    ]
    goals = [
        Goal(
            6,
            f"worker RSS after {end_n:,} mixed requests",
            mib(end_rss),
            "≤ 100 MiB",
            end_rss <= 100 * 2**20,
        ),
        Goal(
            6,
            f"worker RSS growth, {mid_n:,} → {end_n:,} requests",
            f"{growth / 2**20:+.2f} MiB",
            "none (≤ 1 MiB)",
            growth <= 2**20,
        ),
    ]
    text_ = f"""\
One gunicorn sync worker (`--workers 1 --max-requests 0`, so that the same process
serves every request: the production setting `max_requests = 20000` would recycle it
and hide any growth) on the {bench.runs_total:,}-run database, Redis as configured.
{profile.memory_warmup} s of unmeasured warm-up ({warm.requests:,} requests), then
{served:,} requests in chunks of about {profile.memory_chunk:,} (wrk runs are timed: each
chunk's duration comes from the previous rate), {connections} connections, rotating
through {len(paths)} paths: a third stats (the five homepage filters, "me" as alice, bob
and carol), a third list page 1 of the same filters (page_size 20), a third
`GET /api/pipeline_runs/{{id}}` of 100 random runs. RSS of worker {pid} (psutil) after
each chunk, and its USS (memory no other process shares, e.g. not the pages it still
shares with the gunicorn master since the fork). Stats cache during the run:
{_cache_results(before, after)}; aggregate queries run: {_aggregates(before, after)}.

{table(["requests served", "worker RSS", "USS", "req/s in the chunk", "non-2xx"], rows)}
"""
    return Section(6, "Memory of one worker", text_, goals)
