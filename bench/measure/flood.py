"""7. Stats flood: distinct filters that must scan, fired at once, beside writers and a reader.

Each round starts gunicorn in one configuration, runs paced writers, a list
reader and a health probe for a baseline window, then releases the flood, and
compares the same clients' latencies before and during it; pg_stat_activity is
sampled throughout. The configurations alternate, round after round.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import redis

from runstats_app.auth import Role
from runstats_app.config import Settings
from runstats_app.stats.admission import SLOTS_KEY
from runstats_app.stats.canonical import HISTORY_KEY_PREFIX, KEY_PREFIX

from ..context import CREATED_BY, NAME, Bench, Section, api_path, format_z
from ..harness.client import HttpClient, Reply
from ..harness.clients import run_together
from ..harness.cpu import own_cpu_seconds, postgres_cpu_reader
from ..harness.errors import HarnessError
from ..harness.metrics import scrape
from ..harness.scans import ScanSampler, wait_until_idle
from ..harness.servers import Gunicorn
from ..harness.traffic import PacedClient, Step
from ..harness.users import bearer, remove_users
from .flood_report import FLOOD_TIMEOUT, describe
from .flood_rounds import Answer, AppCounts, Config, Deployment, FloodRound, Mark, Pace, Window

WRITER = "runstats-bench-flood-writer"
CALLERS = tuple(f"runstats-bench-flood-{n}" for n in range(8))
STATUS_UPDATED_AT = "system/pipeline_run.date.status_updated_at"
RUNS = "/api/pipeline_runs/"
PAGE_SIZE = 20
PACE = Pace(
    write_every=0.05,
    list_every=0.1,
    health_every=0.2,
    timeout=10.0,
    callers=len(CALLERS),
    warmup=0.5,
)
IDLE_TIMEOUT = 2 * FLOOD_TIMEOUT  # requests a client gave up on may still be scanning
NEXT_STATUS = {"QUEUED": "RUNNING", "RUNNING": "SUCCEEDED"}
# With more than one thread gunicorn turns a sync worker into a gthread one.
SYNC = {"GUNICORN_WORKER_CLASS": "sync", "GUNICORN_THREADS": "1"}
BOUNDS_OFF = {"RUNSTATS_STATS_SCANS_PER_PROCESS": "64", "RUNSTATS_STATS_SCANS_TOTAL": "1024"}
COMPARED = (
    Config("shipped", "as shipped", {}, main=True),
    Config("sync", "sync workers", SYNC, main=True),
    Config("off", "bounds off", BOUNDS_OFF, main=True),
)


def configs(totals: tuple[int, ...], compare: bool = True) -> list[Config]:
    """The configurations compared (or the shipped one alone), then the shipped one with
    other total bounds."""
    sizing = [
        Config(f"total-{n}", f"total {n}", {"RUNSTATS_STATS_SCANS_TOTAL": str(n)}, main=False)
        for n in totals
    ]
    return [*(COMPARED if compare else COMPARED[:1]), *sizing]


def measure(bench: Bench) -> Section:
    profile = bench.profile
    bench.stop_app()
    users = [WRITER, *CALLERS]
    remove_users(bench.engine, users)
    bench.stack.callback(remove_users, bench.engine, users)
    writer = bearer(bench.engine, WRITER, Role.writer)
    callers = [bearer(bench.engine, caller, Role.reader) for caller in CALLERS]
    store = redis.Redis.from_url(bench.redis_url)
    postgres_cpu = postgres_cpu_reader(bench.database_url, bench.engine)
    rounds: list[FloodRound] = []
    for number in range(profile.flood_rounds):
        for config in configs(profile.flood_totals, profile.flood_compare):
            sizes = profile.flood_sizes if config.main else (profile.flood_sizing_size,)
            server, deployment = _start(bench, config, number)
            for size in sizes:
                flood = Flood(bench, server, writer, callers, postgres_cpu, str(len(rounds)))
                _forget_stats(store)
                wait_until_idle(bench.engine, timeout=30)
                rounds.append(flood.round(config, deployment, size))
            server.stop_soon()
    return describe(bench, rounds, PACE)


def _start(bench: Bench, config: Config, number: int) -> tuple[Gunicorn, Deployment]:
    env = {**bench.app_env(), **config.env}
    if bench.profile.flood_scan_sleep_ms:
        env["RUNSTATS_TEST_SCAN_SLEEP_MS"] = str(bench.profile.flood_scan_sleep_ms)
    server = bench.server("wsgi:app", env, f"flood-{config.key}-{number + 1}")
    server.settle()
    worker_class = server.worker_class()
    if worker_class != env.get("GUNICORN_WORKER_CLASS", worker_class):
        raise HarnessError(f"{config.name}: gunicorn runs {worker_class} workers")
    settings = Settings.from_env(server.env)
    deployment = Deployment(
        worker_class,
        settings.stats_scans_per_process,
        settings.stats_scans_total,
        settings.wait_ms / 1000,
    )
    return server, deployment


def _forget_stats(store: redis.Redis) -> None:
    """Every stats result, lease and scan slot: each round starts from a cold cache."""
    keys = [SLOTS_KEY]
    for prefix in (KEY_PREFIX, HISTORY_KEY_PREFIX):
        keys.extend(store.scan_iter(match=f"{prefix}:*", count=1000))
    store.delete(*keys)


class Flood:
    """One round on a running server: the paced clients, the baseline, the flood beside them."""

    def __init__(
        self,
        bench: Bench,
        server: Gunicorn,
        writer: dict[str, str],
        callers: list[dict[str, str]],
        postgres_cpu: Callable[[], float | None],
        tag: str,
    ) -> None:
        self.bench = bench
        self.server = server
        self.callers = callers
        self.postgres_cpu = postgres_cpu
        self.tag = tag
        self.prefix = f"flood{tag}-"  # of the paced clients' request ids

        def paced(step: Step, every: float, name: str) -> PacedClient:
            return PacedClient(server.url, step, every, PACE.timeout, self.prefix + name)

        self.writers = [
            paced(Writer(writer), PACE.write_every, f"w{n}")
            for n in range(bench.profile.flood_writers)
        ]
        self.reader = paced(ListReader(), PACE.list_every, "list")
        self.health = paced(healthz, PACE.health_every, "health")

    def round(self, config: Config, deployment: Deployment, size: int) -> FloodRound:
        profile = self.bench.profile
        filters = flood_filters(self.tag, size, datetime.now(UTC))
        paths = [api_path("stats", f) for f in filters]
        paced = [*self.writers, self.reader, self.health]
        with ScanSampler(self.bench.engine) as scans:
            for client in paced:
                client.start()
            time.sleep(PACE.warmup)
            began = self._mark()
            time.sleep(profile.flood_baseline)
            before_flood, counted = self._mark(), scrape(self.server.url)
            answers, released_at = _flood(
                self.server.url, paths, self.callers, profile.flood_window
            )
            ended = self._mark()
            for client in paced:
                client.stop()
        wait_until_idle(self.bench.engine, timeout=IDLE_TIMEOUT)
        app = AppCounts.between(counted, scrape(self.server.url))
        released = replace(before_flood, at=released_at)
        return FloodRound(
            config=config,
            deployment=deployment,
            size=size,
            before=self._window(began, released),
            during=self._window(released, ended),
            answers=answers,
            scans=scans.between(released.at, ended.at),
            app=app,
        )

    def _mark(self) -> Mark:
        return Mark(
            time.perf_counter(), self.server.cpu_seconds(), self.postgres_cpu(), own_cpu_seconds()
        )

    def _window(self, start: Mark, end: Mark) -> Window:
        return Window.of(
            self.writers,
            self.reader,
            self.health,
            start,
            end,
            self.server.request_seconds(self.prefix),
        )


def flood_filters(tag: str, size: int, now: datetime) -> list[str]:
    """`size` distinct filters that maintained counts will never answer.

    Each has an `or`, a `not` or a `status_updated_at` range, and a value of
    its own (`tag` and its index), so each is a cache key of its own; all of
    them match a large share of the runs, so at scale each is a real scan.
    """
    filters = []
    for index in range(size):
        mark = f"flood-{tag}-{index}"
        since = {
            "time_range": {
                "key": STATUS_UPDATED_AT,
                "start_time": format_z(now - timedelta(days=90, seconds=index)),
            }
        }
        shapes = [
            {
                "or": [
                    {"not": {"value_equals": {"key": CREATED_BY, "value": "alice"}}},
                    {"value_equals": {"key": "team", "value": mark}},
                ]
            },
            {"and": [since, {"not": {"value_equals": {"key": NAME, "value": mark}}}]},
            {"or": [since, {"value_equals": {"key": "team", "value": mark}}]},
        ]
        filters.append(json.dumps(shapes[index % len(shapes)], separators=(",", ":")))
    return filters


def _flood(
    url: str, paths: list[str], callers: list[dict[str, str]], window: float
) -> tuple[list[Answer], float]:
    """Every path asked at once, one client each; a 503 asked again after its Retry-After
    while the window lasts. The answers, and when the clients were released.

    A client waiting for its Retry-After lets its connection go (gunicorn closes idle
    ones after its keep-alive, 5 s) and asks again on a new one.
    """
    answers: list[list[Answer]] = [[] for _ in paths]

    def work(index: int, barrier: threading.Barrier) -> int:
        client = HttpClient(url, timeout=FLOOD_TIMEOUT)
        headers = callers[index % len(callers)]
        try:
            client.connect()
            barrier.wait(timeout=60)
            deadline = time.perf_counter() + window
            while True:
                answer = _ask(client, paths[index], headers)
                answers[index].append(answer)
                wait = float(answer.retry_after or 0)
                if answer.status != 503 or time.perf_counter() + wait >= deadline:
                    return 0
                client.close()
                time.sleep(wait)
        finally:
            client.close()

    elapsed, _ = run_together(len(paths), work, "flood")
    return [a for mine in answers for a in mine], time.perf_counter() - elapsed


def _ask(client: HttpClient, path: str, headers: dict[str, str]) -> Answer:
    sent = time.perf_counter()
    try:
        reply = client.get(path, headers)
    except (OSError, http.client.HTTPException):
        return Answer(0, None, None, time.perf_counter() - sent)
    return Answer(
        reply.status, reply.headers.get("x-cache"), reply.headers.get("retry-after"), reply.seconds
    )


class Writer:
    """Creates a run, then moves it QUEUED → RUNNING → SUCCEEDED: one request a step.

    A step that fails starts over with a new run, so one failure is counted once.
    """

    def __init__(self, auth: dict[str, str]) -> None:
        self.auth = auth
        self.run: tuple[str, str] | None = None  # (id, status)

    def __call__(self, client: HttpClient, headers: dict[str, str]) -> tuple[Reply, bool]:
        run, self.run = self.run, None
        if run is None:
            reply = client.post_json(RUNS, {"name": "bench-flood"}, {**self.auth, **headers})
            if reply.status == 201:
                self.run = (reply.json()["id"], "QUEUED")
            return reply, reply.status == 201
        run_id, status = run
        target = NEXT_STATUS[status]
        reply = client.post_json(
            f"{RUNS}{run_id}/transitions",
            {"status": target, "expected_status": status},
            {**self.auth, **headers},
        )
        if reply.status == 200 and target in NEXT_STATUS:
            self.run = (run_id, target)
        return reply, reply.status == 200


class ListReader:
    """Pages through the list, 20 runs a page, from the first page again after the last."""

    def __init__(self) -> None:
        self.token: str | None = None

    def __call__(self, client: HttpClient, headers: dict[str, str]) -> tuple[Reply, bool]:
        path = api_path("", page_size=PAGE_SIZE)
        if self.token:
            path = api_path("", page_size=PAGE_SIZE, page_token=self.token)
        reply = client.get(path, headers)
        self.token = reply.json()["next_page_token"] if reply.status == 200 else None
        return reply, reply.status == 200


def healthz(client: HttpClient, headers: dict[str, str]) -> tuple[Reply, bool]:
    reply = client.get("/healthz", headers)
    return reply, reply.status == 200
