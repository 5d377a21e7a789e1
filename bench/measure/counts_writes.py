"""10. Maintained counts, writes: what the counting triggers cost a transition, and hot rows.

On a database of its own (the counting triggers are switched off for some rounds,
which leaves its counts wrong; it is dropped afterwards), three sides alternate
round after round, each with 16 concurrent clients moving their own runs
QUEUED → RUNNING → SUCCEEDED through gunicorn:

- counted, spread: every client's runs have their own creator and pipeline;
- uncounted, spread: the same with the counting triggers disabled;
- counted, hot: every run has one creator, one pipeline and one hour: every change
  lands on the same counters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from runstats_app.auth import Role
from runstats_app.ids import new_run_id
from runstats_app.models import PipelineRun
from tests.support.databases import create_database, drop_database

from ..context import Bench, Goal, Section
from ..databases import load_demo_runs
from ..harness.cpu import postgres_cpu_reader
from ..harness.errors import HarnessError
from ..harness.formatting import X, per_second, table, times, us
from ..harness.stats import median
from ..harness.users import bearer
from .writes import Batch, Meter, WriteRound, queued_run, through_app

WRITER = "runstats-bench-counts-writer"
CLIENTS = 16
GOAL = 0.8
LOADED_RUNS = {"full": 20_000, "quick": 2_000}
COUNTING_TRIGGERS = {
    "pipeline_runs": (
        "run_counts_runs_inserted",
        "run_counts_runs_updated",
        "run_counts_run_deleted",
    ),
    "run_annotations": (
        "run_counts_annotations_inserted",
        "run_counts_annotations_updated",
        "run_counts_annotations_deleted",
    ),
}
SIDES = ("counted, spread", "uncounted, spread", "counted, hot")


@dataclass(frozen=True)
class Side:
    name: str
    counted: bool
    hot: bool


def measure(bench: Bench) -> Section:
    profile = bench.profile
    url = make_url(bench.database_url).set(
        database=f"runstats_bench_counts_{uuid.uuid4().hex[:8]}"
    )
    database_url = url.render_as_string(hide_password=False)
    create_database(database_url)
    bench.stack.callback(drop_database, database_url)
    load_demo_runs(database_url, LOADED_RUNS[profile.name])
    engine = create_engine(database_url)
    bench.stack.callback(engine.dispose)
    app = bench.server("wsgi:app", bench.app_env(database_url), "counts-writes")
    app.settle()
    auth = bearer(engine, WRITER, Role.admin)  # spread runs have other creators
    meter = Meter(
        app,
        postgres_cpu_reader(database_url, engine),
        CLIENTS,
        CLIENTS * profile.runs_per_client * 2,
    )
    sides = [Side(SIDES[0], True, False), Side(SIDES[1], False, False), Side(SIDES[2], True, True)]
    deadlocks = _deadlocks(engine)
    results: dict[str, list[WriteRound]] = {side.name: [] for side in sides}
    for number in range(profile.write_rounds + 1):
        for side in sides:
            _set_counting(engine, side.counted)
            batch = _queued_runs(engine, profile.runs_per_client, side.hot)
            measured = meter.round(through_app(app.url, auth, batch))
            if number > 0:
                results[side.name].append(measured)
    _set_counting(engine, True)
    deadlocks = _deadlocks(engine) - deadlocks
    if deadlocks:
        raise HarnessError(f"counts writes: {deadlocks} deadlocks during the rounds")
    return _section(bench, results, deadlocks)


def _set_counting(engine: Engine, on: bool) -> None:
    verb = "ENABLE" if on else "DISABLE"
    with engine.begin() as connection:
        for table_name, triggers in COUNTING_TRIGGERS.items():
            for trigger in triggers:
                connection.execute(text(f"ALTER TABLE {table_name} {verb} TRIGGER {trigger}"))


def _queued_runs(engine: Engine, per_client: int, hot: bool) -> Batch:
    """QUEUED runs for each client: all on one creator and pipeline when `hot`."""
    now = datetime.now(UTC)
    batch = [[new_run_id() for _ in range(per_client)] for _ in range(CLIENTS)]
    values = [
        queued_run(
            run_id,
            "bench-counts-hot" if hot else f"bench-counts-{client}",
            WRITER if hot else f"{WRITER}-{client}",
            now,
        )
        for client, ids in enumerate(batch)
        for run_id in ids
    ]
    with Session(engine) as session:
        session.execute(insert(PipelineRun), values)
        session.commit()
    return batch


def _deadlocks(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        )


def _section(bench: Bench, results: dict[str, list[WriteRound]], deadlocks: int) -> Section:
    counted, uncounted, hot = (results[name] for name in SIDES)
    cost = median(a.rate / b.rate for a, b in zip(counted, uncounted, strict=True))
    heat = median(h.rate / a.rate for h, a in zip(hot, counted, strict=True))
    goals = [
        Goal(
            "transitions/s with the counts maintained / without",
            _rates(counted, uncounted, cost),
            f"≥ {GOAL}{X}",
            cost >= GOAL,
        ),
        Goal(
            f"{CLIENTS} writers on one creator + pipeline + hour / {CLIENTS} spread out",
            _rates(hot, counted, heat),
            f"≥ {GOAL}{X}; no deadlock, no serialization error",
            heat >= GOAL and deadlocks == 0,
        ),
    ]
    rows: list[list[Any]] = []
    for number in range(len(counted)):
        rows.append(
            [number + 1]
            + [per_second(results[name][number].rate) for name in SIDES]
            + [us(results[name][number].server_cpu) for name in SIDES]
        )
    header = ["round", *[f"{name}, transitions/s" for name in SIDES]]
    header += [f"{name}, gunicorn CPU/transition" for name in SIDES]
    body = (
        f"""\
{__doc__.split(chr(10) + chr(10), 1)[1]}
One unmeasured round of each side, then {bench.profile.write_rounds} rounds, on a fresh
database of {LOADED_RUNS[bench.profile.name]:,} demo runs (the triggers' work does not grow
with the table: they append one delta row per statement's group). Every transition is a
`POST /api/pipeline_runs/{{id}}/transitions` with `expected_status`; a failure of any
(a deadlock or a serialization error among them) stops the harness. Deadlocks in
`pg_stat_database` during the rounds: {deadlocks}.

"""
        + table(header, rows)
        + "\n"
    )
    return Section("Maintained counts: writes", body, goals)


def _rates(ours: list[WriteRound], theirs: list[WriteRound], ratio: float) -> str:
    mine, other = (median(r.rate for r in rounds) for rounds in (ours, theirs))
    return f"{per_second(mine)} vs {per_second(other)}: {times(ratio)} (median of rounds)"
