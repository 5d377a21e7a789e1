"""3. Deep pages: a page thousands deep by keyset token against page 1, and OFFSET beside it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, text

from runstats_app.timefmt import parse_timestamp

from ..context import Bench, Goal, Section, api_path
from ..harness.client import HttpClient, expect
from ..harness.errors import HarnessError
from ..harness.formatting import X, details, ms, table, times
from ..harness.sql import explain, timed
from ..harness.stats import median

PAGE_SIZE = 20
LIMIT = PAGE_SIZE + 1  # what runstats asks for: one more row says whether a next page exists
GOAL = 1.5
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


@dataclass(frozen=True)
class DeepPage:
    """The page reached by following `next_page_token`, and the way there."""

    number: int
    path: str  # page 1's path with the token of this page
    cursor: dict[str, Any]  # the keyset predicate's values: the previous page's last row
    ids: list[str]
    follow_seconds: float

    @property
    def offset(self) -> int:
        return (self.number - 1) * PAGE_SIZE


@dataclass(frozen=True)
class SqlPages:
    """The same pages in raw SQL: timings, and whether both ways give the deep page's rows."""

    first: list[float]
    keyset: list[float]
    offset: list[float]
    keyset_ids: list[str]
    offset_ids: list[str]
    keyset_plan: str
    offset_plan: str


def measure(bench: Bench) -> Section:
    number = min(bench.profile.deep_page, max(2, bench.runs_total // PAGE_SIZE))
    client = HttpClient(bench.app().url)
    first_path = api_path("", page_size=PAGE_SIZE)
    deep = _follow(client, first_path, number)
    http_first, http_deep = _http_timings(bench, client, first_path, deep)
    client.close()
    sql = _sql_pages(bench, deep)
    same_rows = sql.offset_ids == sql.keyset_ids == deep.ids
    http_ratio = median(http_deep) / median(http_first)
    offset_ratio = median(sql.offset) / median(sql.first)
    goal = Goal(
        f"deep page ({deep.number:,}) vs page 1, keyset over HTTP",
        f"{ms(median(http_deep))} vs {ms(median(http_first))} = {times(http_ratio)} "
        f"(OFFSET: {times(offset_ratio)})",
        f"≤ {GOAL}{X}",
        http_ratio <= GOAL,
    )
    rows = [
        [
            f"HTTP `GET /api/pipeline_runs/?page_size={PAGE_SIZE}`, keyset token",
            ms(median(http_first)),
            ms(median(http_deep)),
            f"**{times(http_ratio)}**",
        ],
        _sql_row("SQL, keyset `WHERE (created_at, id) < (…)`", sql.first, sql.keyset),
        _sql_row(f"SQL, `OFFSET {deep.offset:,}`", sql.first, sql.offset),
    ]
    header = ["what", "page 1 (median)", f"page {deep.number:,} (median)", "ratio"]
    body = _describe(bench, deep, sql, same_rows, table(header, rows))
    if not same_rows:
        body += "\n**The keyset page and the OFFSET page differ** (concurrent writes?).\n"
    return Section("Deep pages: keyset vs OFFSET", body, [goal])


def _follow(client: HttpClient, first_path: str, number: int) -> DeepPage:
    """Page `number`, reached from page 1 by each page's `next_page_token`."""
    started = time.perf_counter()
    previous = expect(client.get(first_path), 200, "list page 1").json()
    for page in range(2, number + 1):
        token = previous["next_page_token"]
        if token is None:
            raise HarnessError(f"the list ended at page {page - 1}, before page {number}")
        if page == number:
            break
        previous = expect(
            client.get(f"{first_path}&page_token={quote(token)}"), 200, f"list page {page}"
        ).json()
    follow_seconds = time.perf_counter() - started
    path = f"{first_path}&page_token={quote(previous['next_page_token'])}"
    last = previous["pipeline_runs"][-1]
    runs = expect(client.get(path), 200, "deep page").json()["pipeline_runs"]
    return DeepPage(
        number=number,
        path=path,
        cursor={"created_at": parse_timestamp(last["created_at"]), "id": last["id"]},
        ids=[run["id"] for run in runs],
        follow_seconds=follow_seconds,
    )


def _http_timings(
    bench: Bench, client: HttpClient, first_path: str, deep: DeepPage
) -> tuple[list[float], list[float]]:
    """Page 1 and the deep page, alternately, each request timed alone."""
    first: list[float] = []
    deep_seconds: list[float] = []
    for _ in range(bench.profile.page_repeats):
        first.append(expect(client.get(first_path), 200, "page 1").seconds)
        deep_seconds.append(expect(client.get(deep.path), 200, f"page {deep.number}").seconds)
    return first, deep_seconds


def _sql_pages(bench: Bench, deep: DeepPage) -> SqlPages:
    """Page 1, the keyset page and the OFFSET page in SQL, alternately; then their plans."""
    offset_sql, keyset_sql = text(OFFSET_SQL), text(KEYSET_SQL)
    first_params = {"limit": LIMIT, "offset": 0}
    keyset_params = {**deep.cursor, "limit": LIMIT}
    offset_params = {"limit": LIMIT, "offset": deep.offset}
    first: list[float] = []
    keyset: list[float] = []
    offset: list[float] = []
    with bench.engine.connect() as connection:
        _, offset_rows = timed(connection, offset_sql, offset_params)
        _, keyset_rows = timed(connection, keyset_sql, keyset_params)
        for _ in range(bench.profile.page_repeats):
            first.append(timed(connection, offset_sql, first_params)[0])
            keyset.append(timed(connection, keyset_sql, keyset_params)[0])
            offset.append(timed(connection, offset_sql, offset_params)[0])
        keyset_plan, offset_plan = _plans(connection, deep)
    return SqlPages(
        first,
        keyset,
        offset,
        keyset_ids=[row[0] for row in keyset_rows][:PAGE_SIZE],
        offset_ids=[row[0] for row in offset_rows][:PAGE_SIZE],
        keyset_plan=keyset_plan,
        offset_plan=offset_plan,
    )


def _plans(connection: Connection, deep: DeepPage) -> tuple[str, str]:
    stamp = f"'{deep.cursor['created_at'].isoformat()}'::timestamptz"
    keyset = explain(
        connection,
        KEYSET_SQL.replace(":created_at", stamp)
        .replace(":id", f"'{deep.cursor['id']}'")
        .replace(":limit", str(LIMIT)),
    )
    offset = explain(
        connection,
        OFFSET_SQL.replace(":limit", str(LIMIT)).replace(":offset", str(deep.offset)),
    )
    return keyset, offset


def _sql_row(what: str, first: list[float], deep: list[float]) -> list[str]:
    return [what, ms(median(first)), ms(median(deep)), times(median(deep) / median(first))]


def _describe(bench: Bench, deep: DeepPage, sql: SqlPages, same_rows: bool, results: str) -> str:
    number, repeats = deep.number, bench.profile.page_repeats
    explained = "<code>EXPLAIN (ANALYZE, BUFFERS)</code>"
    return f"""\
Page {number:,} (page_size {PAGE_SIZE}) was reached by following `next_page_token`
from page 1 ({number - 1:,} requests, {deep.follow_seconds:.0f} s in all); then page 1 and page
{number:,} were requested alternately {repeats} times with that token,
timing each request alone (client side, `http.client`). Beside them, the same ordering in
raw SQL through SQLAlchemy (`ORDER BY created_at DESC, id DESC LIMIT {LIMIT}`, all run
columns): page 1, the keyset predicate from page {number - 1:,}'s last row, and
`OFFSET {deep.offset:,}`, alternately, {repeats} times. Rows on page {number:,}
by keyset (HTTP and SQL) and by OFFSET are the same: **{"yes" if same_rows else "NO"}**.

{results}

{details(f"page {number:,} by keyset: {explained}", sql.keyset_plan)}

{details(f"page {number:,} by OFFSET: {explained}", sql.offset_plan)}
"""
