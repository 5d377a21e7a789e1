"""The stats flood's section (7): how it was run, its tables, and the goals checked on them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..context import Bench, Goal, Section
from ..harness.formatting import DASH, X, ms, table, times
from ..harness.stats import median
from ..report import note
from .flood_rounds import REFUSAL_SCOPES, Deployment, FloodRound, Pace, Window

RATIO_GOAL = 3.0
FLOOD_TIMEOUT = 60.0  # seconds a flood client waits for an answer: past gunicorn's timeout
FAST_503 = 0.5  # seconds: the median a refused scan is answered in, as the functional test asks


def describe(bench: Bench, rounds: list[FloodRound], pace: Pace) -> Section:
    profile = bench.profile
    shipped = [r for r in rounds if r.config.key == "shipped"]
    totals = sorted({r.deployment.total for r in rounds if not r.config.main})
    sizing = (
        f"; and, to size the bound, the shipped configuration with "
        f"`RUNSTATS_STATS_SCANS_TOTAL` {' and '.join(map(str, totals))} (N = "
        f"{profile.flood_sizing_size} only)"
        if totals
        else ""
    )
    hook = (
        f"Scans are made slow with the test hook `RUNSTATS_TEST_SCAN_SLEEP_MS="
        f"{profile.flood_scan_sleep_ms}` (a tagged `pg_sleep` in each scan's session): on "
        f"{bench.runs_total:,} runs a scan takes milliseconds, at a million runs about as "
        "long as the hook holds it. The hook makes scans long, not busy: what real scans "
        "take from writes in CPU is measured only by a run at scale."
        if profile.flood_scan_sleep_ms
        else f"No test hook: every scan reads the {bench.runs_total:,} runs."
    )
    body = f"""\
Each round runs runstats under gunicorn (4 workers) in one configuration, with the
stats results, leases and scan slots flushed from Redis, and paced clients
throughout: {profile.flood_writers} writers (each one request every
{pace.write_every * 1000:.0f} ms: create a run, move it to RUNNING, then to SUCCEEDED),
a reader paging the list (page size 20, every {pace.list_every * 1000:.0f} ms) and
`GET /healthz` every {pace.health_every * 1000:.0f} ms. After {pace.warmup:g} s of warm-up
and a {profile.flood_baseline:g} s baseline the flood is released: N distinct filters
(each an `or`, a `not` or a `status_updated_at` range, which maintained counts will
never answer), one client each, all at once, spread over {pace.callers} reader tokens
(so that the share of the slots one caller may hold does not hide the total bound). A
client answered 503 asks again after its `Retry-After` until it gets a 200 or
{profile.flood_window:g} s have passed. "During" runs from the release to the last stats
answer. A write, list or health request unanswered after {pace.timeout:g} s timed out.
`pg_stat_activity` is sampled every 20 ms: stats scans running (`state = 'active' AND
leader_pid IS NULL AND query LIKE '/* runstats:stats-scan */%'`, this database). {hook}

{_configurations(profile.flood_rounds, shipped[0].deployment, profile.flood_compare, sizing)}
The warm stats and the same-key stampede (sections 1 and 5) are measured against the
configuration as shipped.

**Writes, lists and health**, before and during the flood (latency per request, as
the client saw it):

{_traffic_table(rounds)}

**Where writes wait**: a write's p99 as the client saw it and as the app measured it
(its access log's `duration_ms`, from the first to the last line of Flask's handling;
the difference is time queued in gunicorn or on the way), and the CPU cores busy in
gunicorn, in PostgreSQL (the whole cluster, whatever else it serves) and in the harness
(every client is a thread of it); the stats answers' rate, and gunicorn's CPU per stats
answer (what it used during the flood beyond its rate before, over the answers; a dash
where it used less):

{_wait_table(rounds)}

**Stats answers and scans**, as the flood's clients saw them (200: computed by a scan
for this request; 503 with `Retry-After`; none: no answer within {FLOOD_TIMEOUT:g} s; the
slowest answer against the wait budget) and as the app counted them (`/metrics`: scans
run, those that gave no result, their mean duration, and scans refused by the bound
that was full); scans at once: the largest `pg_stat_activity` sample, and the share of
samples at each count:

{_stats_table(rounds)}

**Sizing `RUNSTATS_STATS_SCANS_TOTAL`** (N = {profile.flood_sizing_size}, gthread, one scan
per process; medians over rounds): scans completed per second, against what they cost
writes.

{_sizing_table(rounds, profile.flood_sizing_size)}

**Verdicts** per configuration (the write p99 ratio is the median over rounds, per N):

{_verdict_table(rounds)}
"""
    body += "\n" + note("flood-findings")
    return Section("Stats flood: distinct scans beside writes and lists", body, _goals(shipped))


def _configurations(rounds: int, shipped: Deployment, compare: bool, sizing: str) -> str:
    if not compare:
        return (
            f"Configuration: **as shipped** ({_shape(shipped)}) alone, {rounds} round(s) "
            "(`--flood-shipped-only`: the sync-worker, bounds-off and sizing rounds of a "
            "full run were not run)."
        )
    return f"""\
Configurations, alternating round after round ({rounds} round(s)): **as
shipped** ({_shape(shipped)}); **sync workers**, the same bounds
(`GUNICORN_WORKER_CLASS=sync GUNICORN_THREADS=1`: with more threads gunicorn runs
gthread workers whatever the class says); **bounds off**
(`RUNSTATS_STATS_SCANS_PER_PROCESS=64 RUNSTATS_STATS_SCANS_TOTAL=1024`){sizing}."""


def _shape(deployment: Deployment) -> str:
    return (
        f"{deployment.worker_class} workers, {deployment.per_process} scan per process, "
        f"{deployment.total} in all, wait budget {deployment.budget:g} s"
    )


def _failures(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[k]} {k}" for k in sorted(counts)) if counts else "0"


def _p99s(r: FloodRound, kind: str) -> str:
    """The p99 of `kind` before and during the flood."""
    return f"{ms(r.before.p(kind, 0.99))} / {ms(r.during.p(kind, 0.99))}"


def _spread(window: Window) -> str:
    return " / ".join(ms(window.p("writes", f)) for f in (0.5, 0.99, 1.0))


def _round_table(
    rounds: list[FloodRound], columns: list[str], cells: Callable[[FloodRound], list[object]]
) -> str:
    """One row a round: its configuration, its N, then `cells`."""
    rows = [[r.config.name, r.size, *cells(r)] for r in rounds]
    return table(["configuration", "N", *columns], rows)


def _traffic_table(rounds: list[FloodRound]) -> str:
    columns = [
        "writes before: p50 / p99 / max",
        "during: p50 / p99 / max",
        "p99 during / before",
        "lists p99 before / during",
        "health p99 before / during",
        "failed or timed out",
    ]
    return _round_table(
        rounds,
        columns,
        lambda r: [
            _spread(r.before),
            _spread(r.during),
            f"**{times(r.write_ratio)}**",
            _p99s(r, "lists"),
            _p99s(r, "health"),
            f"{_failures(r.failures)} of {r.requests:,}",
        ],
    )


def _cores(before: float | None, during: float | None) -> str:
    if before is None or during is None:
        return DASH
    return f"{before:.2f} → {during:.2f}"


def _wait_table(rounds: list[FloodRound]) -> str:
    columns = [
        "write p99 before / during: client",
        "in the app",
        "gunicorn cores before → during",
        "PostgreSQL cores before → during",
        "harness cores before → during",
        "stats answers/s",
        "gunicorn CPU per stats answer",
    ]
    return _round_table(
        rounds,
        columns,
        lambda r: [
            _p99s(r, "writes"),
            _p99s(r, "writes_in_app"),
            _cores(r.before.gunicorn_cores, r.during.gunicorn_cores),
            _cores(r.before.postgres_cores, r.during.postgres_cores),
            _cores(r.before.harness_cores, r.during.harness_cores),
            f"{r.answers_per_second:,.0f}",
            DASH if r.gunicorn_cpu_per_answer is None else ms(r.gunicorn_cpu_per_answer),
        ],
    )


def _stats_cells(r: FloodRound) -> list[object]:
    refused, app = r.refused, r.app
    return [
        f"{r.computed} / {len(refused)} / {sum(a.status == 0 for a in r.answers)}",
        f"{ms(median(refused))} / {ms(max(refused))}" if refused else DASH,
        f"{ms(max(a.seconds for a in r.answers))} ({r.deployment.budget:g} s)",
        f"{app.scans} ({r.failed_scans})",
        ms(app.scan_seconds / app.scans) if app.scans else DASH,
        " / ".join(str(app.refused[scope]) for scope in REFUSAL_SCOPES),
        f"**{max(r.scans)}** ({_distribution(r.scans)})",
        f"{r.scans_per_second:.1f}",
    ]


def _stats_table(rounds: list[FloodRound]) -> str:
    columns = [
        "answers: 200 / 503 / none",
        "503 p50 / max",
        "slowest (budget)",
        "scans run (no result)",
        "scan mean",
        "refused: process / hosts / client",
        "scans at once: max (samples)",
        "scans/s",
    ]
    return _round_table(rounds, columns, _stats_cells)


def _distribution(scans: Counter[int]) -> str:
    total = sum(scans.values())
    return ", ".join(f"{n}: {scans[n] / total:.0%}" for n in sorted(scans))


def _sizing_table(rounds: list[FloodRound], size: int) -> str:
    by_total: dict[int, list[FloodRound]] = {}
    for r in rounds:
        if r.size == size and (r.config.key == "shipped" or not r.config.main):
            by_total.setdefault(r.deployment.total, []).append(r)
    header = [
        "total",
        "write p99 before → during",
        "ratio",
        "list p99 during",
        "scan mean",
        "scans/s",
        "503s",
        "scans at once (max)",
    ]
    rows = [
        [
            total,
            f"{ms(median(r.before.p('writes', 0.99) for r in group))} → "
            f"{ms(median(r.during.p('writes', 0.99) for r in group))}",
            times(median(r.write_ratio for r in group)),
            ms(median(r.during.p("lists", 0.99) for r in group)),
            ms(median(r.app.scan_seconds / max(r.app.scans, 1) for r in group)),
            f"{median(r.scans_per_second for r in group):.1f}",
            f"{median(len(r.refused) for r in group):.0f}",
            max(max(r.scans) for r in group),
        ]
        for total, group in sorted(by_total.items())
    ]
    return table(header, rows)


@dataclass(frozen=True)
class _Check:
    """One goal, checked over a configuration's rounds: (what was measured, met)."""

    what: str
    target: str
    measure: Callable[[list[FloodRound]], tuple[str, bool]]


def _ratio(rounds: list[FloodRound]) -> tuple[str, bool]:
    sizes = sorted({r.size for r in rounds})
    ratios = {n: median(r.write_ratio for r in rounds if r.size == n) for n in sizes}
    text = ", ".join(f"N={n}: {times(v)}" for n, v in ratios.items())
    return text, all(v <= RATIO_GOAL for v in ratios.values())


def _no_failures(rounds: list[FloodRound]) -> tuple[str, bool]:
    counts = sum((r.failures for r in rounds), Counter[str]())
    return f"{_failures(counts)} of {sum(r.requests for r in rounds):,}", not counts


def _answered(rounds: list[FloodRound]) -> tuple[str, bool]:
    answers = [a for r in rounds for a in r.answers]
    refused = [seconds for r in rounds for seconds in r.refused]
    late = sum(r.late for r in rounds)
    fast = not refused or median(refused) <= FAST_503
    text = (
        f"{late} of {len(answers):,} late or neither 200 nor 503; slowest "
        f"{ms(max(a.seconds for a in answers))} (budget {rounds[0].deployment.budget:g} s); "
        f"503 median {ms(median(refused)) if refused else DASH}"
    )
    return text, late == 0 and fast


def _bounded(rounds: list[FloodRound]) -> tuple[str, bool]:
    highest = max(max(r.scans) for r in rounds)
    total = rounds[0].deployment.total
    return f"{highest} (total {total})", highest <= total


CHECKS = (
    _Check("write p99 during the flood / before", f"≤ {RATIO_GOAL:g}{X}", _ratio),
    _Check("writes, lists, health failed or timed out", "none", _no_failures),
    _Check(
        "stats answers: 200 or 503, within the wait budget, 503s fast",
        f"all; 503 median ≤ {FAST_503 * 1000:.0f} ms",
        _answered,
    ),
    _Check(
        "stats scans at once (pg_stat_activity, leaders)",
        "≤ RUNSTATS_STATS_SCANS_TOTAL",
        _bounded,
    ),
)


def _goals(shipped: list[FloodRound]) -> list[Goal]:
    goals = []
    for check in CHECKS:
        measured, met = check.measure(shipped)
        goals.append(Goal(f"flood, as shipped: {check.what}", measured, check.target, met))
    return goals


def _verdict_table(rounds: list[FloodRound]) -> str:
    names = list(dict.fromkeys(r.config.name for r in rounds if r.config.main))
    rows = []
    for check in CHECKS:
        cells = [f"{check.what} ({check.target})"]
        for name in names:
            measured, met = check.measure([r for r in rounds if r.config.name == name])
            cells.append(f"{measured}: **{'met' if met else 'not met'}**")
        rows.append(cells)
    return table(["goal", *names], rows)
