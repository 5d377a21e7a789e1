"""1. Warm stats vs the floor: the cached stats route against one Redis GET, same gunicorn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from ..context import Bench, Goal, HomepageFilter, Section, api_path, homepage_filters, week_ago
from ..harness.client import HttpClient, expect
from ..harness.cpu import redis_cpu_seconds
from ..harness.errors import HarnessError
from ..harness.formatting import DASH, X, per_second, table, times, us
from ..harness.load import LoadResult
from ..harness.metrics import cache_answers, scrape
from ..harness.servers import Gunicorn
from ..harness.stats import median

FLOOR_KEY = "runstats:bench:floor"
GOAL = 0.8
HEADER = [
    "round",
    "runstats req/s",
    "p50 / p99",
    "CPU/req",
    "floor req/s",
    "p50 / p99",
    "CPU/req",
    "ratio",
]


@dataclass(frozen=True)
class Round:
    load: LoadResult
    cpu: float  # gunicorn CPU seconds per request
    redis_cpu: float  # Redis server CPU seconds per request


@dataclass(frozen=True)
class Medians:
    ours_rps: float
    floor_rps: float
    ratio: float  # the median of the per-round ratios
    ours_cpu: float
    floor_cpu: float
    ours_redis: float
    floor_redis: float

    @staticmethod
    def of(rounds: list[tuple[Round, Round]]) -> Medians:
        return Medians(
            ours_rps=median(a.load.rps for a, _ in rounds),
            floor_rps=median(b.load.rps for _, b in rounds),
            ratio=median(a.load.rps / b.load.rps for a, b in rounds),
            ours_cpu=median(a.cpu for a, _ in rounds),
            floor_cpu=median(b.cpu for _, b in rounds),
            ours_redis=median(a.redis_cpu for a, _ in rounds),
            floor_redis=median(b.redis_cpu for _, b in rounds),
        )


def measure(bench: Bench) -> Section:
    app = bench.app()
    floor = bench.server(
        "bench.floor_app:app",
        {"FLOOR_REDIS_URL": bench.redis_url, "FLOOR_KEY": FLOOR_KEY},
        "floor",
    )
    chosen = homepage_filters(week_ago())[2]
    assert chosen.filter_query is not None
    path = api_path("stats", chosen.filter_query, current_user=bench.user)
    store = redis.Redis.from_url(bench.redis_url)
    _serve_one_body(bench, store, app, floor, path)
    rounds, cache = _alternate(bench, store, app, floor, path)
    medians = Medians.of(rounds)
    ratio = medians.ratio
    goal = Goal(
        "warm stats (2 predicates) vs floor, req/s",
        f"{per_second(medians.ours_rps)} vs {per_second(medians.floor_rps)}: {times(ratio)}",
        f"≥ {GOAL}{X}",
        ratio >= GOAL,
    )
    body = _describe(bench, chosen, rounds, medians, cache)
    if not goal.met:
        body += f"\n**Goal not met**: {times(ratio)} of the floor, {GOAL / ratio:.2f}{X} short.\n"
    return Section("Warm stats vs the floor", body, [goal])


def _serve_one_body(
    bench: Bench, store: redis.Redis, app: Gunicorn, floor: Gunicorn, path: str
) -> None:
    """Warm runstats' cache, and store the body it answers where the floor reads it."""
    client = HttpClient(app.url)
    body = expect(client.get(path), 200, "warm stats: first request").body
    warm = expect(client.get(path), 200, "warm stats: second request")
    client.close()
    if warm.headers.get("x-cache") != "hit":
        raise HarnessError(f"warm stats: second request was not a hit: {warm.headers}")
    store.set(FLOOR_KEY, body)
    bench.stack.callback(store.delete, FLOOR_KEY)
    floor_client = HttpClient(floor.url)
    if expect(floor_client.get(path), 200, "floor").body != body:
        raise HarnessError("the floor does not serve the stats body")
    floor_client.close()


def _alternate(
    bench: Bench, store: redis.Redis, app: Gunicorn, floor: Gunicorn, path: str
) -> tuple[list[tuple[Round, Round]], str]:
    """The rounds, runstats then the floor in each, and how runstats' cache answered."""
    for url in (app.url, floor.url):  # unmeasured warm-up of every worker
        bench.load.run(url, [path], bench.profile.wrk_connections, duration=1).check("warm-up")
    before = scrape(app.url)
    rounds: list[tuple[Round, Round]] = []
    for number in range(bench.profile.wrk_rounds):
        ours = _round(bench, store, app, path, f"stats round {number + 1}")
        rounds.append((ours, _round(bench, store, floor, path, f"floor round {number + 1}")))
    return rounds, cache_answers(before, scrape(app.url))


def _round(bench: Bench, store: redis.Redis, server: Gunicorn, path: str, what: str) -> Round:
    cpu, redis_cpu = server.cpu_seconds(), redis_cpu_seconds(store)
    profile = bench.profile
    result = bench.load.run(server.url, [path], profile.wrk_connections, profile.wrk_seconds)
    result.check(what)
    return Round(
        result,
        (server.cpu_seconds() - cpu) / result.requests,
        (redis_cpu_seconds(store) - redis_cpu) / result.requests,
    )


def _latency(result: LoadResult) -> str:
    if result.p50_ms is None or result.p99_ms is None:
        return DASH
    return f"{result.p50_ms:.2f} / {result.p99_ms:.2f} ms"


def _table(rounds: list[tuple[Round, Round]], medians: Medians) -> str:
    rows: list[list[Any]] = [
        [
            number + 1,
            per_second(a.load.rps),
            _latency(a.load),
            us(a.cpu),
            per_second(b.load.rps),
            _latency(b.load),
            us(b.cpu),
            times(a.load.rps / b.load.rps),
        ]
        for number, (a, b) in enumerate(rounds)
    ]
    rows.append(
        [
            "**median**",
            f"**{per_second(medians.ours_rps)}**",
            "",
            us(medians.ours_cpu),
            f"**{per_second(medians.floor_rps)}**",
            "",
            us(medians.floor_cpu),
            f"**{times(medians.ratio)}**",
        ]
    )
    return table(HEADER, rows)


def _describe(
    bench: Bench,
    chosen: HomepageFilter,
    rounds: list[tuple[Round, Round]],
    medians: Medians,
    cache: str,
) -> str:
    profile, m = bench.profile, medians
    connections = profile.wrk_connections
    threads = getattr(bench.load, "threads", None)
    tool = bench.load.name + (f" -t{min(threads, connections)}" if threads else "")
    return f"""\
`GET /api/pipeline_runs/stats?filter_query=…&current_user={bench.user}` (URL-encoded).

Filter: created_by = me (`current_user={bench.user}`) and created_at within the last
7 days — `{chosen.filter_query}`. Both servers: `gunicorn -c gunicorn.conf.py
--workers 4` (sync workers), same Redis; the floor (`bench/floor_app.py`) does one
Redis `GET` of the very bytes runstats answered. Load: {tool}, {connections}
connections, {profile.wrk_seconds:g} s per round, {profile.wrk_rounds} rounds
alternating runstats, floor, runstats, floor… after a 1 s unmeasured warm-up of each.
"CPU/req" is the user + system CPU time of the gunicorn master and workers (psutil)
during the round divided by the requests served.

{_table(rounds, medians)}

**Ratio: {times(m.ratio)}** (median of the per-round ratios, each round's two runs
being next to each other in time; ratio of the medians: {times(m.ours_rps / m.floor_rps)}).
CPU per request, medians: runstats' gunicorn processes {us(m.ours_cpu)} vs the
floor's {us(m.floor_cpu)} ({times(m.ours_cpu / m.floor_cpu)}); Redis server
{us(m.ours_redis)} vs {us(m.floor_redis)} (the whole server, from `INFO cpu`). With 2 cores
shared by wrk, Redis and the workers, requests/s follow CPU per request. How runstats'
cache answered during the rounds: {cache}.
"""
