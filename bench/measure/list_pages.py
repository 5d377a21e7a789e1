"""8. List pages vs the floor: run pages and single runs against the thinnest honest service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

from ..context import Bench, Goal, Section, api_path, homepage_filters, week_ago
from ..harness.client import HttpClient, expect
from ..harness.errors import HarnessError
from ..harness.formatting import X, per_second, table, times, us
from ..harness.load import LoadResult
from ..harness.servers import Gunicorn
from ..harness.stats import median
from ..report import note

GOAL = 0.6
CONNECTIONS = 8  # as in the issue that set the goal (#15)
CPU_GOAL = 2.5  # a page of 100 against a page of 20, CPU per request
SIZES = (20, 100)
HEADER = [
    "request",
    "runstats req/s",
    "CPU/req",
    "floor req/s",
    "CPU/req",
    "ratio (median of rounds)",
    "runstats CPU 100 / 20",
]


@dataclass(frozen=True)
class Case:
    label: str
    filter_label: str  # the filter, for the page-size comparison; "" for a single run
    path: str


@dataclass(frozen=True)
class Round:
    load: LoadResult
    cpu: float  # gunicorn CPU seconds per request


@dataclass(frozen=True)
class Result:
    case: Case
    rounds: list[tuple[Round, Round]]

    @property
    def ratio(self) -> float:
        return median(a.load.rps / b.load.rps for a, b in self.rounds)

    def rps(self, side: int) -> float:
        return median(pair[side].load.rps for pair in self.rounds)

    def cpu(self, side: int) -> float:
        return median(pair[side].cpu for pair in self.rounds)


def measure(bench: Bench) -> Section:
    app = bench.app()
    floor = bench.server(
        "bench.list_floor_app:app", {"FLOOR_DATABASE_URL": _driver_url(bench)}, "list-floor"
    )
    cases = _cases(bench, app)
    for case in cases:
        _same_runs(app, floor, case)
    results = [_alternate(bench, app, floor, case) for case in cases]
    goals = [
        Goal(
            f"{result.case.label} vs floor, req/s",
            f"{per_second(result.rps(0))} vs {per_second(result.rps(1))}: {times(result.ratio)}",
            f"≥ {GOAL}{X}",
            result.ratio >= GOAL,
        )
        for result in results
    ]
    goals += [
        Goal(
            f"page of 100 vs page of 20 ({label}), CPU/req",
            times(growth),
            f"≤ {CPU_GOAL}{X}",
            growth <= CPU_GOAL,
        )
        for label, growth in _cpu_growth(results).items()
    ]
    return Section("List pages vs the floor", _describe(bench, results), goals)


def _driver_url(bench: Bench) -> str:
    """The bench database as psycopg's own URL (no SQLAlchemy driver name)."""
    return make_url(bench.database_url).set(drivername="postgresql").render_as_string(False)


def _cases(bench: Bench, app: Gunicorn) -> list[Case]:
    filters = homepage_filters(week_ago())
    chosen = [filters[0], filters[2], filters[4]]  # none, me + last 7 days, annotation team
    cases = []
    for item in chosen:
        mentions_me = item.filter_query is not None and '"me"' in item.filter_query
        params: dict[str, str | int] = {"current_user": bench.user} if mentions_me else {}
        for size in SIZES:
            path = api_path("", item.filter_query, page_size=size, **params)
            cases.append(Case(f"page of {size}, {item.label}", item.label, path))
    newest = _newest_run_id(app)
    cases.append(Case("GET /api/pipeline_runs/{id}", "", f"/api/pipeline_runs/{newest}"))
    return cases


def _newest_run_id(app: Gunicorn) -> str:
    client = HttpClient(app.url)
    page = expect(client.get(api_path("", page_size=1)), 200, "list pages: newest run").json()
    client.close()
    if not page["pipeline_runs"]:
        raise HarnessError("list pages: the bench database holds no runs")
    return str(page["pipeline_runs"][0]["id"])


def _runs_of(body: Any) -> Any:
    return body["pipeline_runs"] if isinstance(body, dict) and "pipeline_runs" in body else body


def _same_runs(app: Gunicorn, floor: Gunicorn, case: Case) -> None:
    """Both servers must answer the same runs, field for field, or nothing is compared."""
    answers = []
    for server in (app, floor):
        client = HttpClient(server.url)
        answers.append(_runs_of(expect(client.get(case.path), 200, case.label).json()))
        client.close()
    if answers[0] != answers[1]:
        raise HarnessError(f"list pages: the floor answers other runs for {case.label}")


def _alternate(bench: Bench, app: Gunicorn, floor: Gunicorn, case: Case) -> Result:
    """After an unmeasured second of each, rounds of runstats then the floor."""
    profile = bench.profile
    for server in (app, floor):
        bench.load.run(server.url, [case.path], CONNECTIONS, 1).check("warm-up")
    rounds = []
    for number in range(profile.list_rounds):
        rounds.append(
            (
                _round(bench, app, case, f"{case.label}, round {number + 1}"),
                _round(bench, floor, case, f"floor {case.label}, round {number + 1}"),
            )
        )
    return Result(case, rounds)


def _round(bench: Bench, server: Gunicorn, case: Case, what: str) -> Round:
    cpu = server.cpu_seconds()
    profile = bench.profile
    result = bench.load.run(server.url, [case.path], CONNECTIONS, profile.list_seconds)
    result.check(what)
    return Round(result, (server.cpu_seconds() - cpu) / result.requests)


def _cpu_growth(results: list[Result]) -> dict[str, float]:
    """runstats' CPU per request of a page of 100 over a page of 20, by filter."""
    by_filter: dict[str, dict[int, float]] = {}
    for result in results:
        if result.case.filter_label:
            size = 100 if "page of 100" in result.case.label else 20
            by_filter.setdefault(result.case.filter_label, {})[size] = result.cpu(0)
    return {label: sizes[100] / sizes[20] for label, sizes in by_filter.items()}


def _table(results: list[Result]) -> str:
    growth = _cpu_growth(results)
    rows = []
    for result in results:
        label = result.case.filter_label
        shown = "page of 100" in result.case.label and label in growth
        rows.append(
            [
                result.case.label,
                per_second(result.rps(0)),
                us(result.cpu(0)),
                per_second(result.rps(1)),
                us(result.cpu(1)),
                f"**{times(result.ratio)}**",
                times(growth[label]) if shown else "",
            ]
        )
    return table(HEADER, rows)


def _describe(bench: Bench, results: list[Result]) -> str:
    profile = bench.profile
    threads = getattr(bench.load, "threads", None)
    connections = CONNECTIONS
    tool = bench.load.name + (f" -t{min(threads, connections)}" if threads else "")
    paths = "\n".join(f"- {result.case.label}: `{result.case.path}`" for result in results)
    return f"""\
Both servers: `gunicorn -c gunicorn.conf.py --workers 4` on the bench database
({bench.runs_total:,} runs). The floor (`bench/list_floor_app.py`): Flask, one psycopg
connection per thread, one keyset query for the runs and one `run_id = ANY(...)`
query for their annotations, `json.dumps`, the same fields and timestamp format, no
validation, auth, logging, metrics or signed page tokens. Before measuring, both
answer each request with the same runs, field for field. Load: {tool},
{connections} connections, {profile.list_seconds:g} s per round, {profile.list_rounds}
rounds per request alternating runstats, floor, runstats, floor… after an unmeasured
second of each. "CPU/req" is the user + system CPU of the gunicorn master and workers
(psutil) during a round divided by its requests (PostgreSQL's is not counted: both
sides send it the same statements). Medians of the rounds.

{paths}

{_table(results)}

{note("list_floor")}"""
