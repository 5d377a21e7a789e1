"""9. Maintained counts, reads: the homepage's cold stats against the bare `GROUP BY status`.

Each question is answered cold twice a round: in process (the app's own computation,
no HTTP and no cache: what the server spends) and through gunicorn with the shared
cache emptied first (what a client waits). With a second, smaller database of the
same cardinalities (`--counts-small-db`), its in-process times are taken in the same
rounds, so "flat" compares neighbours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import Flask
from sqlalchemy import Engine, create_engine, text

from runstats_app import create_app
from runstats_app.auth import Role
from runstats_app.filters.nodes import FilterNode, resolve_me
from runstats_app.filters.schema import parse_filter_query
from runstats_app.stats.history import resolve_range
from runstats_app.stats.service import HistoryComputation, StatsComputation

from ..context import CREATED_AT, CREATED_BY, NAME, Bench, Goal, Section, and_filter, api_path
from ..harness.client import HttpClient
from ..harness.errors import HarnessError
from ..harness.formatting import DASH, X, ms, table, times
from ..harness.stats import median
from ..harness.users import bearer
from .counts_size import counts_size

BARE_SQL = "SELECT status, count(*) FROM pipeline_runs GROUP BY status"
GOAL = 1 / 50
FLAT = 2.0
HEADER = [
    "question",
    "source",
    "in process",
    "vs bare",
    "HTTP, cache empty",
    "vs bare",
    "smaller database, in process",
    "ratio",
]


@dataclass(frozen=True)
class Question:
    label: str
    filter_query: str | None
    statuses: tuple[str, ...] | None = None
    bucket: str | None = None  # a history question when set

    @property
    def path(self) -> str:
        params: dict[str, str] = {}
        if self.statuses:
            params["status"] = self.statuses[0]
        if self.bucket:
            params["bucket"] = self.bucket
        route = "stats/history" if self.bucket else "stats"
        return api_path(route, self.filter_query, **params)


def questions(now: datetime) -> list[Question]:
    """The homepage's questions of issue 13, "me" unresolved."""
    me = {"value_equals": {"key": CREATED_BY, "value": "me"}}
    train = {"value_contains": {"key": NAME, "value_substring": "train"}}
    team = {"value_equals": {"key": "team", "value": "ml-platform"}}

    def since(days: int) -> dict[str, Any]:
        start = (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"time_range": {"key": CREATED_AT, "start_time": start}}

    return [
        Question("none", None),
        Question("created_by = me", and_filter(me)),
        Question("me + last 7 days", and_filter(me, since(7))),
        Question('name contains "train"', and_filter(train)),
        Question("team = ml-platform", and_filter(team)),
        Question("status = FAILED", None, statuses=("FAILED",)),
        Question('me ∧ "train" ∧ last 30 days', and_filter(me, train, since(30))),
        Question("history, 30 daily buckets", None, bucket="day"),
        Question("history, 48 hourly buckets, me", and_filter(me), bucket="hour"),
    ]


class InProcess:
    """The app's own computation of a question, without HTTP or the cache."""

    def __init__(self, database_url: str, user: str) -> None:
        self.app: Flask = create_app({"database_url": database_url, "redis_url": None})
        self.user = user

    def tree(self, question: Question) -> FilterNode | None:
        if question.filter_query is None:
            return None
        return resolve_me(parse_filter_query(question.filter_query), self.user)

    def answer(self, question: Question) -> tuple[float, str]:
        """Seconds the computation took, and where it read from (counts or scan)."""
        tree = self.tree(question)
        with self.app.app_context():
            started = time.perf_counter()
            if question.bucket:
                span = resolve_range(question.bucket, None, None, datetime.now(UTC))
                computed = HistoryComputation(tree, question.statuses, span)()
            else:
                computed = StatsComputation(tree, question.statuses)()
            return time.perf_counter() - started, computed.source


@dataclass
class Side:
    """One database's timings: the bare aggregate and each question in process."""

    engine: Engine
    in_process: InProcess
    bare: list[float]
    seconds: dict[str, list[float]]
    sources: dict[str, str]

    @staticmethod
    def of(database_url: str, user: str, labels: list[str]) -> Side:
        return Side(
            create_engine(database_url),
            InProcess(database_url, user),
            [],
            {label: [] for label in labels},
            {},
        )

    def round(self, asked: list[Question], timed: bool) -> None:
        with self.engine.connect() as connection:
            started = time.perf_counter()
            connection.execute(text(BARE_SQL)).all()
            connection.rollback()
            if timed:
                self.bare.append(time.perf_counter() - started)
        for question in asked:
            seconds, source = self.in_process.answer(question)
            self.sources[question.label] = source
            if timed:
                self.seconds[question.label].append(seconds)

    def median(self, label: str) -> float:
        return median(self.seconds[label])


def measure(bench: Bench) -> Section:
    asked = questions(datetime.now(UTC))
    labels = [q.label for q in asked]
    big = Side.of(bench.database_url, bench.user, labels)
    small = Side.of(bench.counts_small_db, bench.user, labels) if bench.counts_small_db else None
    http = _Http(bench)
    http_seconds: dict[str, list[float]] = {label: [] for label in labels}
    for number in range(bench.profile.aggregate_rounds + 1):
        timed = number > 0
        big.round(asked, timed)
        if small is not None:
            small.round(asked, timed)
        for question in asked:
            seconds = http.cold(question)
            if timed:
                http_seconds[question.label].append(seconds)
    http.close()
    bare = median(big.bare)
    goals = _goals(asked, big, small, http_seconds, bare)
    sizes = counts_size(big.engine)
    goals.append(sizes.goal())
    body = _describe(bench, big, small, bare) + _table(asked, big, small, http_seconds, bare)
    body += "\n" + sizes.describe()
    for side in (big, small):
        if side is not None:
            side.engine.dispose()
    return Section(f"Maintained counts: cold stats at {bench.runs_total:,} runs", body, goals)


class _Http:
    """Cold requests through gunicorn: the bench's Redis database emptied before each."""

    def __init__(self, bench: Bench) -> None:
        self.client = HttpClient(bench.app().url)
        self.redis = redis.Redis.from_url(bench.redis_url)
        self.auth = bearer(bench.engine, bench.user, Role.reader)

    def cold(self, question: Question) -> float:
        self.redis.flushdb()
        reply = self.client.get(question.path, self.auth)
        if reply.status != 200:
            raise HarnessError(f"counts: {question.label}: HTTP {reply.status}: {reply.body!r}")
        if reply.headers.get("x-cache") not in ("miss", "bypass"):
            raise HarnessError(f"counts: {question.label} was not cold: {reply.headers}")
        return reply.seconds

    def close(self) -> None:
        self.client.close()
        self.redis.close()


def _goals(
    asked: list[Question],
    big: Side,
    small: Side | None,
    http_seconds: dict[str, list[float]],
    bare: float,
) -> list[Goal]:
    goals: list[Goal] = []
    for question in asked:
        label = question.label
        inside, outside = big.median(label), median(http_seconds[label])
        goals.append(
            Goal(
                f"cold stats from the counts, {label}, in process / HTTP",
                f"{ms(inside)} / {ms(outside)} = {times(inside / bare)} / "
                f"{times(outside / bare)} of the bare GROUP BY ({ms(bare)}); "
                f"source {big.sources[label]}",
                f"≤ 1/50 ({GOAL:.2f}{X}), from the counts",
                inside <= GOAL * bare
                and outside <= GOAL * bare
                and big.sources[label] == "counts",
            )
        )
        if small is not None:
            ratio = inside / small.median(label)
            goals.append(
                Goal(
                    f"flat, {label}",
                    f"{times(ratio)} of its time on the smaller database",
                    f"≤ {FLAT:g}{X}",
                    ratio <= FLAT,
                )
            )
    return goals


def _table(
    asked: list[Question],
    big: Side,
    small: Side | None,
    http_seconds: dict[str, list[float]],
    bare: float,
) -> str:
    rows: list[list[Any]] = []
    for question in asked:
        label = question.label
        inside, outside = big.median(label), median(http_seconds[label])
        smaller = small.median(label) if small is not None else None
        rows.append(
            [
                label,
                big.sources[label],
                ms(inside),
                times(inside / bare),
                ms(outside),
                times(outside / bare),
                DASH if smaller is None else ms(smaller),
                DASH if smaller is None else times(inside / smaller),
            ]
        )
    return table(HEADER, rows) + "\n"


def _describe(bench: Bench, big: Side, small: Side | None, bare: float) -> str:
    rounds = bench.profile.aggregate_rounds
    smaller = (
        f"The smaller database (same cardinalities, `--counts-small-db`): bare `GROUP BY` "
        f"{ms(median(small.bare))}, timed in the same rounds."
        if small is not None
        else "No smaller database was given (`--counts-small-db`), so flatness was not measured."
    )
    return f"""\
Every question of the homepage (issue 13) asked cold: **in process** is the app's
own computation (`StatsComputation` / `HistoryComputation`: the readiness check,
the plan and the counts read, or the scan), **HTTP** is `GET` through gunicorn (4
workers) as user `{bench.user}` with the bench's Redis database emptied before each
request. One untimed round, then {rounds} rounds; medians. The bare
`SELECT status, count(*) FROM pipeline_runs GROUP BY status` over all
{bench.runs_total:,} runs took **{ms(bare)}** (median, same rounds). {smaller}

"""
