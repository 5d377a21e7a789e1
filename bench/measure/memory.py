"""6. Memory: the RSS of one gunicorn worker serving a mix of requests, and its growth."""

from __future__ import annotations

from dataclasses import dataclass

import psutil
from sqlalchemy import text

from ..context import Bench, Goal, Section, api_path, homepage_filters, week_ago
from ..harness.errors import HarnessError
from ..harness.formatting import mib, per_second, table
from ..harness.metrics import aggregates_run, cache_answers, scrape
from ..harness.servers import Gunicorn

CONNECTIONS = 4
MAX_CHUNK_SECONDS = 60.0  # the warm-up's rate (cold caches) says little about the next chunk
RSS_LIMIT = 100 * 2**20
GROWTH_LIMIT = 2**20
USERS = ["alice", "bob", "carol"]
HEADER = ["requests served", "worker RSS", "USS", "req/s in the chunk", "non-2xx"]


@dataclass(frozen=True)
class Sample:
    served: int
    rss: int
    uss: int
    rps: float  # in the chunk before it; 0 for the sample after the warm-up
    non_2xx: int


@dataclass(frozen=True)
class Served:
    """What the worker served: warm-up requests, samples after each chunk, the caches' work."""

    warm_up: int
    samples: list[Sample]
    cache: str
    aggregates: int

    @property
    def total(self) -> int:
        return self.samples[-1].served

    def nearest(self, served: int) -> Sample:
        return min(self.samples, key=lambda sample: abs(sample.served - served))


def measure(bench: Bench) -> Section:
    bench.stop_app()
    paths = _mixed_paths(_random_run_ids(bench))
    server = bench.server(
        "wsgi:app", bench.app_env(), "memory", workers=1, extra_args=["--max-requests", "0"]
    )
    (pid,) = server.worker_pids()
    served = _serve(bench, server, pid, paths)
    server.stop()
    middle, end = served.nearest(bench.profile.memory_total // 2), served.samples[-1]
    growth = end.rss - middle.rss
    goals = [
        Goal(
            f"worker RSS after {end.served:,} mixed requests",
            mib(end.rss),
            "≤ 100 MiB",
            end.rss <= RSS_LIMIT,
        ),
        Goal(
            f"worker RSS growth, {middle.served:,} → {end.served:,} requests",
            f"{growth / 2**20:+.2f} MiB",
            "none (≤ 1 MiB)",
            growth <= GROWTH_LIMIT,
        ),
    ]
    return Section("Memory of one worker", _describe(bench, served, pid, len(paths)), goals)


def _random_run_ids(bench: Bench) -> list[str]:
    with bench.engine.connect() as connection:
        return [
            row[0]
            for row in connection.execute(
                text("SELECT id FROM pipeline_runs ORDER BY random() LIMIT 100")
            )
        ]


def _mixed_paths(run_ids: list[str]) -> list[str]:
    """Stats, list page 1 and single runs in turn: the homepage filters, "me" as three users."""
    stats: list[str] = []
    lists: list[str] = []
    for item in homepage_filters(week_ago()):
        users = USERS if item.filter_query and '"me"' in item.filter_query else [""]
        for user in users:
            params: dict[str, str | int] = {"current_user": user} if user else {}
            stats.append(api_path("stats", item.filter_query, **params))
            lists.append(api_path("", item.filter_query, page_size=20, **params))
    gets = [f"/api/pipeline_runs/{run_id}" for run_id in run_ids]
    paths = []
    for index in range(max(len(stats), len(lists), len(gets))):
        paths += [stats[index % len(stats)], lists[index % len(lists)], gets[index % len(gets)]]
    return paths


def _serve(bench: Bench, server: Gunicorn, pid: int, paths: list[str]) -> Served:
    """A warm-up, then chunks until about `memory_total` requests, sampling after each.

    wrk runs are timed, so a chunk of about `memory_chunk` requests is a duration
    from the last chunk's rate; the counts reported are the ones wrk completed.
    """
    profile = bench.profile
    process = psutil.Process(pid)
    warm = bench.load.run(server.url, paths, CONNECTIONS, duration=profile.memory_warmup)
    rate = warm.check("memory warm-up").rps
    samples = [Sample(0, process.memory_info().rss, process.memory_full_info().uss, 0.0, 0)]
    served = 0
    before = scrape(server.url)
    while profile.memory_total - served > 0.02 * profile.memory_total:
        remaining = profile.memory_total - served
        # the last chunk aims 5 % past the total, so that no sliver of a chunk follows it
        last = remaining < 1.5 * profile.memory_chunk
        wanted = remaining * 1.05 if last else profile.memory_chunk
        duration = min(max(1.0, wanted / rate), MAX_CHUNK_SECONDS)
        result = bench.load.run(server.url, paths, CONNECTIONS, duration=duration)
        result.check("memory load")
        served += result.requests
        rate = result.rps
        if server.worker_pids() != [pid]:
            raise HarnessError(f"the memory worker was replaced; see {server.log_path}")
        rss = process.memory_info().rss
        samples.append(Sample(served, rss, process.memory_full_info().uss, rate, result.non_2xx))
    after = scrape(server.url)
    return Served(
        warm.requests, samples, cache_answers(before, after), aggregates_run(before, after)
    )


def _describe(bench: Bench, served: Served, pid: int, paths: int) -> str:
    profile = bench.profile
    rows = [
        [
            f"{s.served:,}",
            mib(s.rss),
            mib(s.uss),
            per_second(s.rps) if s.rps else "(after warm-up)",
            s.non_2xx,
        ]
        for s in served.samples
    ]
    return f"""\
One gunicorn sync worker (`--workers 1 --max-requests 0`, so that the same process
serves every request: the production setting `max_requests = 20000` would recycle it
and hide any growth) on the {bench.runs_total:,}-run database, Redis as configured.
{profile.memory_warmup} s of unmeasured warm-up ({served.warm_up:,} requests), then
{served.total:,} requests in chunks of about {profile.memory_chunk:,} (wrk runs are timed: each
chunk's duration comes from the previous rate), {CONNECTIONS} connections, rotating
through {paths} paths: a third stats (the five homepage filters, "me" as alice, bob
and carol), a third list page 1 of the same filters (page_size 20), a third
`GET /api/pipeline_runs/{{id}}` of 100 random runs. RSS of worker {pid} (psutil) after
each chunk, and its USS (memory no other process shares, e.g. not the pages it still
shares with the gunicorn master since the fork). Stats cache during the run:
{served.cache}; aggregate queries run: {served.aggregates}.

{table(HEADER, rows)}
"""
