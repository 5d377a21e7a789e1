"""What every measurement shares: the profile, the database, Redis, servers, results."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import Engine

from .harness.load import LoadGenerator
from .harness.servers import Gunicorn

CREATED_BY = "system/pipeline_run.created_by"
CREATED_AT = "system/pipeline_run.date.created_at"
NAME = "system/pipeline_run.name"


@dataclass(frozen=True)
class Profile:
    name: str
    wrk_seconds: float
    wrk_rounds: int
    wrk_connections: int
    aggregate_rounds: int
    deep_page: int
    page_repeats: int
    write_clients: int
    runs_per_client: int
    write_rounds: int
    stampede_requests: int
    stampede_rounds: int
    memory_total: int
    memory_chunk: int
    memory_warmup: float  # seconds
    flood_sizes: tuple[int, ...]  # distinct filters fired at once, one round each
    flood_sizing_size: int  # the flood of the rounds that size RUNSTATS_STATS_SCANS_TOTAL
    flood_totals: tuple[int, ...]  # RUNSTATS_STATS_SCANS_TOTAL values sized beside the default
    flood_rounds: int
    flood_baseline: float  # seconds of writes and lists before a flood
    flood_window: float  # seconds a flood's clients keep retrying after a 503
    flood_writers: int
    flood_scan_sleep_ms: int  # RUNSTATS_TEST_SCAN_SLEEP_MS: small data, scans as slow as big
    flood_compare: bool  # also the sync-worker and bounds-off deployments, beside shipped
    list_seconds: float  # one round of one list request against one server
    list_rounds: int


FULL = Profile(
    name="full",
    wrk_seconds=8,
    wrk_rounds=8,
    wrk_connections=16,
    aggregate_rounds=9,
    deep_page=5000,
    page_repeats=15,
    write_clients=8,
    runs_per_client=30,
    write_rounds=5,
    stampede_requests=200,
    stampede_rounds=3,
    memory_total=100_000,
    memory_chunk=10_000,
    memory_warmup=10,
    flood_sizes=(64, 256),
    flood_sizing_size=256,
    flood_totals=(1, 4),
    flood_rounds=2,
    flood_baseline=8,
    flood_window=10,
    flood_writers=4,
    flood_scan_sleep_ms=0,
    flood_compare=True,
    list_seconds=5,
    list_rounds=4,
)
QUICK = Profile(
    name="quick",
    wrk_seconds=2,
    wrk_rounds=2,
    wrk_connections=16,
    aggregate_rounds=3,
    deep_page=100,
    page_repeats=5,
    write_clients=4,
    runs_per_client=10,
    write_rounds=2,
    stampede_requests=200,
    stampede_rounds=1,
    memory_total=3_000,
    memory_chunk=1_000,
    memory_warmup=2,
    flood_sizes=(64,),
    flood_sizing_size=64,
    flood_totals=(),
    flood_rounds=1,
    flood_baseline=1.5,
    flood_window=2,
    flood_writers=2,
    flood_scan_sleep_ms=300,
    flood_compare=True,
    list_seconds=1,
    list_rounds=1,
)


@dataclass(frozen=True)
class Goal:
    what: str
    measured: str
    target: str
    met: bool | None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "not measured"
        return "**met**" if self.met else "**not met**"


@dataclass
class Section:
    """What a measurement reports: its section of the results, and the goals it checked."""

    title: str
    body: str
    goals: list[Goal] = field(default_factory=list)


@dataclass(frozen=True)
class HomepageFilter:
    label: str
    filter_query: str | None
    selective: bool


def and_filter(*predicates: Mapping[str, object]) -> str:
    return json.dumps({"and": list(predicates)}, separators=(",", ":"))


def homepage_filters(since: datetime) -> list[HomepageFilter]:
    """The homepage's filters, "me" unresolved (the caller's user resolves it)."""
    me = {"value_equals": {"key": CREATED_BY, "value": "me"}}
    last_week = {"time_range": {"key": CREATED_AT, "start_time": format_z(since)}}
    return [
        HomepageFilter("none", None, selective=False),
        HomepageFilter("created_by = me", and_filter(me), selective=True),
        HomepageFilter("me + last 7 days", and_filter(me, last_week), selective=True),
        HomepageFilter(
            'name contains "train"',
            and_filter({"value_contains": {"key": NAME, "value_substring": "train"}}),
            selective=False,
        ),
        HomepageFilter(
            "annotation team = ml-platform",
            and_filter({"value_equals": {"key": "team", "value": "ml-platform"}}),
            selective=True,
        ),
    ]


def format_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def week_ago() -> datetime:
    """Seven days ago, to the minute, so every measurement of a run uses one filter."""
    return (datetime.now(UTC) - timedelta(days=7)).replace(second=0, microsecond=0)


def api_path(route: str, filter_query: str | None = None, **params: str | int) -> str:
    query: list[tuple[str, str]] = []
    if filter_query is not None:
        query.append(("filter_query", filter_query))
    query.extend((name, str(value)) for name, value in params.items())
    return f"/api/pipeline_runs/{route}" + (f"?{urlencode(query)}" if query else "")


@dataclass
class Bench:
    """The run in progress: settings, services and whatever must be torn down."""

    profile: Profile
    database_url: str
    redis_url: str
    work_dir: Path
    load: LoadGenerator
    engine: Engine
    stack: ExitStack
    user: str = "alice"
    secret: str = "runstats-bench-secret"
    stampede_db: str = "private"
    counts_small_db: str | None = None  # same cardinalities, fewer runs: "flat" compares
    runs_total: int = 0
    _app: Gunicorn | None = None

    def app_env(self, database_url: str | None = None) -> dict[str, str]:
        return {
            "RUNSTATS_DATABASE_URL": database_url or self.database_url,
            "RUNSTATS_REDIS_URL": self.redis_url,
            "RUNSTATS_SECRET_KEY": self.secret,
        }

    def server(
        self,
        app: str,
        env: dict[str, str],
        name: str,
        workers: int = 4,
        extra_args: Sequence[str] = (),
    ) -> Gunicorn:
        server = Gunicorn(app, env, self.work_dir, name, workers, extra_args).start()
        self.stack.callback(server.stop)
        return server

    def app(self) -> Gunicorn:
        """runstats under gunicorn, 4 workers, on the bench database (started once)."""
        if self._app is None:
            self._app = self.server("wsgi:app", self.app_env(), "runstats")
        return self._app

    def stop_app(self) -> None:
        if self._app is not None:
            self._app.stop()
            self._app = None


@dataclass(frozen=True)
class Measurement:
    """An entry of the run order: the section's number, a name for the log, the function."""

    number: int
    name: str
    measure: Callable[[Bench], Section]
