"""2. Cold aggregates: the stats query of each homepage filter against a bare full count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, text

from runstats_app.filters.nodes import FilterNode, resolve_me
from runstats_app.filters.schema import parse_filter_query
from runstats_app.filters.sql import build_run_filter
from runstats_app.models import PipelineRun

from ..context import Bench, Goal, Section, homepage_filters, week_ago
from ..harness.formatting import DASH, X, details, ms, table, times
from ..harness.sql import estimated_cost, explain, literal_sql, plan_summary, timed
from ..harness.stats import median
from ..report import note

BARE_SQL = "SELECT status, count(*) FROM pipeline_runs GROUP BY status"
NAME_CONTAINS = 'name contains "train"'
TRIGRAM_FORCED = f"{NAME_CONTAINS}, trigram forced"
TRIGRAM_INDEX = "ix_pipeline_runs_name_trgm"
GOAL = 0.05
HEADER = [
    "filter",
    "runs matched",
    "first run",
    "median",
    "vs bare",
    "fraction",
    "scans in the plan",
]


@dataclass
class AggregateQuery:
    label: str
    filter_query: str | None
    statement: Any
    sql: str
    selective: bool
    setting: str | None = None  # a SET LOCAL run before it, in its transaction


@dataclass(frozen=True)
class Observed:
    """Every query's first run, timed rounds and plan, and the name filter's two costs."""

    first: dict[str, float]
    matched: dict[str, int]
    timings: dict[str, list[float]]
    plans: dict[str, str]
    seq_cost: float
    trigram_cost: float

    def median(self, label: str) -> float:
        return median(self.timings[label])


def measure(bench: Bench) -> Section:
    queries = _queries(bench)
    observed = _observe(bench, queries)
    bare = observed.median(queries[0].label)
    goals, misses = _ratio_goals(queries, observed, bare)
    name_plan = observed.plans[NAME_CONTAINS]
    uses_trigram = TRIGRAM_INDEX in name_plan
    goals.append(
        Goal(
            'cold aggregate, name contains "train": trigram index',
            "used" if uses_trigram else "not used: " + plan_summary(name_plan),
            f"{TRIGRAM_INDEX} in the plan",
            uses_trigram,
        )
    )
    estimates = _estimates(observed)
    if not uses_trigram:
        misses.append(
            f'- name contains "train": the plan does not use `{TRIGRAM_INDEX}`; ' + estimates
        )
    body = _describe(bench, estimates, _table(queries, observed, bare))
    if misses:
        body += "\nGoals missed:\n\n" + "\n".join(misses) + "\n\n" + note("cold-aggregates-tried")
        if not uses_trigram:
            body += "\n" + note("cold-aggregates-trigram-declined")
    body += "\n" + _plan_blocks(queries, observed) + "\n"
    return Section(f"Cold aggregates at {bench.runs_total:,} runs", body, goals)


def aggregate_statement(tree: FilterNode | None) -> Any:
    """The aggregate as runstats.stats.service.count_by_status builds it."""
    return (
        select(PipelineRun.status, func.count())
        .where(*build_run_filter(tree, None))
        .group_by(PipelineRun.status)
    )


def _queries(bench: Bench) -> list[AggregateQuery]:
    queries = [AggregateQuery("bare `GROUP BY status`", None, text(BARE_SQL), BARE_SQL, False)]
    for item in homepage_filters(week_ago()):
        tree = (
            None
            if item.filter_query is None
            else resolve_me(parse_filter_query(item.filter_query), bench.user)
        )
        statement = aggregate_statement(tree)
        sql = literal_sql(statement)
        queries.append(
            AggregateQuery(item.label, item.filter_query, statement, sql, item.selective)
        )
        if item.label == NAME_CONTAINS:
            # Not what runstats runs: the same query with sequential scans disabled,
            # to show what the trigram index would cost when the planner declines it.
            queries.append(
                AggregateQuery(
                    TRIGRAM_FORCED,
                    item.filter_query,
                    statement,
                    sql,
                    selective=False,
                    setting="enable_seqscan = off",
                )
            )
    return queries


def _observe(bench: Bench, queries: list[AggregateQuery]) -> Observed:
    """One untimed round, then every query once a round; plans and costs last."""
    first: dict[str, float] = {}
    matched: dict[str, int] = {}
    timings: dict[str, list[float]] = {q.label: [] for q in queries}
    with bench.engine.connect() as connection:
        for number in range(bench.profile.aggregate_rounds + 1):
            for query in queries:
                seconds, rows = _run(connection, query)
                if number == 0:
                    first[query.label] = seconds
                    matched[query.label] = sum(int(count) for _, count in rows)
                else:
                    timings[query.label].append(seconds)
        plans = {q.label: explain(connection, q.sql, q.setting) for q in queries}
        name_sql = next(q for q in queries if q.label == NAME_CONTAINS).sql
        return Observed(
            first,
            matched,
            timings,
            plans,
            seq_cost=estimated_cost(connection, name_sql, "enable_bitmapscan = off"),
            trigram_cost=estimated_cost(connection, name_sql, "enable_seqscan = off"),
        )


def _run(connection: Connection, query: AggregateQuery) -> tuple[float, Sequence[Any]]:
    if query.setting:
        connection.execute(text(f"SET LOCAL {query.setting}"))
    return timed(connection, query.statement)


def _ratio_goals(
    queries: list[AggregateQuery], observed: Observed, bare: float
) -> tuple[list[Goal], list[str]]:
    """A goal for each selective filter, and a line for each one missed."""
    goals: list[Goal] = []
    misses: list[str] = []
    for query in (q for q in queries if q.selective):
        value = observed.median(query.label)
        ratio = value / bare
        goals.append(
            Goal(
                f"cold aggregate, {query.label}",
                f"{ms(value)} = {times(ratio)} of the bare scan ({ms(bare)})",
                f"≤ 1/20 ({GOAL}{X})",
                ratio <= GOAL,
            )
        )
        if ratio > GOAL:
            misses.append(
                f"- {query.label}: {times(ratio)} of the bare scan, "
                f"{ratio / GOAL:.1f}{X} over the 1/20 goal"
            )
    return goals, misses


def _estimates(observed: Observed) -> str:
    """How close the planner found the name filter's two plans, and what they took."""
    seq, trigram = observed.seq_cost, observed.trigram_cost
    return (
        f"the planner's estimates: {seq:,.0f} for the sequential scan, {trigram:,.0f} "
        f"for the trigram plan ({abs(seq - trigram) / min(seq, trigram):.1%} "
        f"apart); measured, {ms(observed.median(NAME_CONTAINS))} as planned vs "
        f"{ms(observed.median(TRIGRAM_FORCED))} with the trigram index forced"
    )


def _table(queries: list[AggregateQuery], observed: Observed, bare: float) -> str:
    rows: list[list[Any]] = []
    for query in queries:
        value = observed.median(query.label)
        ratio = value / bare
        rows.append(
            [
                query.label,
                f"{observed.matched[query.label]:,}",
                ms(observed.first[query.label]),
                f"**{ms(value)}**",
                times(ratio) if query is not queries[0] else "1",
                f"1/{1 / ratio:.0f}" if ratio < 1 else DASH,
                plan_summary(observed.plans[query.label]),
            ]
        )
    return table(HEADER, rows)


def _plan_blocks(queries: list[AggregateQuery], observed: Observed) -> str:
    return "\n\n".join(
        details(
            f"{query.label}: <code>EXPLAIN (ANALYZE, BUFFERS)</code>",
            f"{'SET LOCAL ' + query.setting + ';' + chr(10) if query.setting else ''}"
            f"{query.sql}\n\n{observed.plans[query.label]}",
        )
        for query in queries
    )


def _describe(bench: Bench, estimates: str, results: str) -> str:
    rounds = bench.profile.aggregate_rounds
    return f"""\
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

{results}
"""
