"""4. Writes: status transitions over HTTP against a bare psycopg loop doing the same SQL."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from runstats_app.auth import Role
from runstats_app.ids import new_run_id
from runstats_app.models import PipelineRun, StatusChange

from ..context import Bench, Goal, Section
from ..harness.client import HttpClient
from ..harness.clients import Work, run_together
from ..harness.cpu import own_cpu_seconds, postgres_cpu_reader
from ..harness.errors import HarnessError
from ..harness.formatting import X, maybe_us, per_second, table, times, us
from ..harness.servers import Gunicorn
from ..harness.stats import median
from ..harness.users import bearer, remove_users
from ..report import note

WRITER = "runstats-bench-writer"
GOAL = 0.5
STEPS = (("RUNNING", "QUEUED", "started_at"), ("SUCCEEDED", "RUNNING", "ended_at"))
HEADER = [
    "round",
    "runstats transitions/s",
    "gunicorn CPU/transition",
    "PostgreSQL CPU/transition",
    "bare psycopg transitions/s",
    "bare loop CPU/transition",
    "PostgreSQL CPU/transition",
    "ratio",
]

Batch = list[list[str]]
"""Run ids by client: what one side moves in one round."""


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


@dataclass(frozen=True)
class Meter:
    """Runs the clients of one round and divides the time and CPU they took by transitions."""

    app: Gunicorn
    postgres: Callable[[], float | None]
    clients: int
    transitions: int

    def round(self, work: Work) -> WriteRound:
        cpu, own, pg = self.app.cpu_seconds(), own_cpu_seconds(), self.postgres()
        seconds, failed = run_together(self.clients, work, "writes")
        if failed:
            raise HarnessError(f"writes: {failed} transitions failed")
        pg_after = self.postgres()
        return WriteRound(
            rate=self.transitions / seconds,
            server_cpu=(self.app.cpu_seconds() - cpu) / self.transitions,
            harness_cpu=(own_cpu_seconds() - own) / self.transitions,
            postgres_cpu=None
            if pg is None or pg_after is None
            else (pg_after - pg) / self.transitions,
        )


def measure(bench: Bench) -> Section:
    profile = bench.profile
    clients, per_client = profile.write_clients, profile.runs_per_client
    app = bench.app()
    remove_users(bench.engine, [WRITER])
    bench.stack.callback(remove_users, bench.engine, [WRITER])
    auth = bearer(bench.engine, WRITER, Role.writer)
    now = datetime.now(UTC)
    # the first two batches: an unmeasured warm-up of each side
    batches = _insert_queued_runs(bench, profile.write_rounds * 2 + 2, clients, per_client, now)
    transitions = clients * per_client * 2
    meter = Meter(app, postgres_cpu_reader(bench.database_url, bench.engine), clients, transitions)
    conninfo = _psycopg_conninfo(bench.database_url)
    meter.round(through_app(app.url, auth, batches[0]))
    meter.round(_bare(conninfo, batches[1], now))
    results = [
        (
            meter.round(through_app(app.url, auth, batches[2 * number])),
            meter.round(_bare(conninfo, batches[2 * number + 1], now)),
        )
        for number in range(1, profile.write_rounds + 1)
    ]
    healthz = meter.round(_healthz(app.url, transitions // clients))
    runs = sum(len(ids) for batch in batches for ids in batch)
    _check_all_moved(bench, runs)

    ours, bare = WriteRound.median(a for a, _ in results), WriteRound.median(b for _, b in results)
    ratio = median(a.rate / b.rate for a, b in results)
    goal = Goal(
        "transitions/s, HTTP (4 workers) vs bare psycopg",
        f"{per_second(ours.rate)} vs {per_second(bare.rate)}: {times(ratio)}",
        f"≥ {GOAL}{X}",
        ratio >= GOAL,
    )
    body = _describe(bench, runs, transitions, _table(results, ours, bare, ratio))
    body += "\n" + _ratio(ours, bare, ratio)
    if not goal.met:
        body += (
            f"\n**Goal not met**: {times(ratio)}, {GOAL / ratio:.1f}{X} short of {GOAL}{X}.\n\n"
        )
        body += _write_budget(ours, bare.rate, healthz, clients) + "\n" + note("writes-tried")
    return Section("Writes: status transitions", body, [goal])


def _insert_queued_runs(
    bench: Bench, count: int, clients: int, per_client: int, now: datetime
) -> list[Batch]:
    """`count` batches of QUEUED runs owned by the writer, `per_client` for each client."""
    batches = [
        [[new_run_id() for _ in range(per_client)] for _ in range(clients)] for _ in range(count)
    ]
    values = [
        queued_run(run_id, "bench-writes", WRITER, now)
        for batch in batches
        for ids in batch
        for run_id in ids
    ]
    with Session(bench.engine) as session:
        session.execute(insert(PipelineRun), values)
        session.commit()
    return batches


def queued_run(run_id: str, name: str, created_by: str, now: datetime) -> dict[str, Any]:
    """The row of a QUEUED run created `now`, for a bulk insert."""
    return {
        "id": run_id,
        "name": name,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
        "status": "QUEUED",
        "status_updated_at": now,
        "attempt": 1,
        "max_attempts": 1,
    }


def through_app(url: str, auth: dict[str, str], batch: Batch) -> Work:
    """Clients moving their runs through `POST …/transitions` with `expected_status`."""

    def work(index: int, barrier: threading.Barrier) -> int:
        client = HttpClient(url)
        barrier.wait(timeout=120)
        failed = 0
        for run_id in batch[index]:
            for target, expected, _ in STEPS:
                reply = client.post_json(
                    f"/api/pipeline_runs/{run_id}/transitions",
                    {"status": target, "expected_status": expected},
                    auth,
                )
                failed += reply.status != 200
        client.close()
        return failed

    return work


def _psycopg_conninfo(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _bare(conninfo: str, batch: Batch, queued_at: datetime) -> Work:
    """Clients doing only the guarded UPDATE, the history INSERT and COMMIT, on psycopg."""

    def work(index: int, barrier: threading.Barrier) -> int:
        failed = 0
        with psycopg.connect(conninfo) as connection:
            barrier.wait(timeout=120)
            for run_id in batch[index]:
                changed_at = queued_at
                for target, previous, column in STEPS:
                    at = _bare_transition(connection, run_id, target, previous, column, changed_at)
                    if at is None:
                        failed += 1
                    else:
                        changed_at = at
        return failed

    return work


def _bare_transition(
    connection: psycopg.Connection[Any],
    run_id: str,
    target: str,
    previous: str,
    column: str,
    changed_at: datetime,
) -> datetime | None:
    """One transition committed, and when; None when the guard matched no row."""
    at = datetime.now(UTC)
    cursor = connection.execute(
        "UPDATE pipeline_runs SET status = %s, status_updated_at = %s, "
        f"updated_at = %s, {column} = %s "
        "WHERE id = %s AND status = %s AND attempt = %s",
        (target, at, at, at, run_id, previous, 1),
    )
    if cursor.rowcount != 1:
        connection.rollback()
        return None
    connection.execute(
        "INSERT INTO run_status_history (run_id, from_status, to_status, "
        "at, seconds_in_previous_status) VALUES (%s, %s, %s, %s, %s)",
        (run_id, previous, target, at, (at - changed_at).total_seconds()),
    )
    connection.commit()
    return at


def _healthz(url: str, requests: int) -> Work:
    """The write clients' shape, asking `GET /healthz`: what the stack costs before any work."""

    def work(index: int, barrier: threading.Barrier) -> int:
        client = HttpClient(url)
        barrier.wait(timeout=120)
        failed = sum(client.get("/healthz").status != 200 for _ in range(requests))
        client.close()
        return failed

    return work


def _check_all_moved(bench: Bench, runs: int) -> None:
    """Every inserted run SUCCEEDED, with two history rows: both sides did all their work."""
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
    if done != runs or history != 2 * runs:
        raise HarnessError(
            f"writes: {done} runs succeeded and {history} history rows, "
            f"expected {runs} and {2 * runs}"
        )


def _table(
    results: list[tuple[WriteRound, WriteRound]], ours: WriteRound, bare: WriteRound, ratio: float
) -> str:
    rows: list[list[Any]] = [
        [
            n + 1,
            per_second(a.rate),
            us(a.server_cpu),
            maybe_us(a.postgres_cpu),
            per_second(b.rate),
            us(b.harness_cpu),
            maybe_us(b.postgres_cpu),
            times(a.rate / b.rate),
        ]
        for n, (a, b) in enumerate(results)
    ]
    rows.append(
        [
            "**median**",
            f"**{per_second(ours.rate)}**",
            us(ours.server_cpu),
            maybe_us(ours.postgres_cpu),
            f"**{per_second(bare.rate)}**",
            us(bare.harness_cpu),
            maybe_us(bare.postgres_cpu),
            f"**{times(ratio)}**",
        ]
    )
    return table(HEADER, rows)


def _describe(bench: Bench, runs: int, transitions: int, results: str) -> str:
    profile = bench.profile
    clients, per_client, rounds = (
        profile.write_clients,
        profile.runs_per_client,
        profile.write_rounds,
    )
    return f"""\
{runs:,} QUEUED runs were inserted first (owner `{WRITER}`, a writer token). In
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

{results}
"""


def _ratio(ours: WriteRound, bare: WriteRound, ratio: float) -> str:
    return f"""\
**Ratio: {times(ratio)}** (median of the per-round ratios; ratio of the medians
{times(ours.rate / bare.rate)}). The HTTP clients themselves used {us(ours.harness_cpu)} of CPU per
transition. PostgreSQL's CPU is that of the postmaster and all its processes (backends
that exited included, psutil) while the clients ran.
"""


def _write_budget(ours: WriteRound, bare_rate: float, healthz: WriteRound, clients: int) -> str:
    """Where the CPU of a transition goes, against what half the bare loop's rate would allow."""
    cores = os.cpu_count() or 1
    budget = cores / (GOAL * bare_rate)
    busy = (ours.server_cpu + ours.harness_cpu + (ours.postgres_cpu or 0.0)) * ours.rate / cores
    if ours.postgres_cpu is None:
        return (
            f"PostgreSQL is not on this machine, so its CPU was not measured; at {GOAL}{X} the "
            f"bare loop the {cores} cores here would have {us(budget)} per transition for "
            f"gunicorn and the clients, and gunicorn alone used {us(ours.server_cpu)}.\n"
        )
    left = budget - ours.postgres_cpu - ours.harness_cpu
    share = "more than all" if left <= 0 else f"{healthz.server_cpu / left:.0%}"
    return f"""\
Where the CPU goes. During runstats' rounds gunicorn, PostgreSQL and the clients kept
{busy:.0%} of the {cores} cores busy. At {GOAL}{X} the bare loop ({per_second(GOAL * bare_rate)})
the machine has at most {us(budget)} of CPU per transition for everything, every core
busy. runstats' transitions cost PostgreSQL {us(ours.postgres_cpu)}
each and the HTTP clients {us(ours.harness_cpu)}, which leaves {us(max(left, 0))} for gunicorn;
gunicorn used {us(ours.server_cpu)}. Answering `GET /healthz` — no database, no body, no
token — the same gunicorn costs {us(healthz.server_cpu)} per request under the same
{clients} clients ({per_second(healthz.rate)}): the web stack alone, before any work of a
transition, takes {share} of what the goal leaves it.
"""
