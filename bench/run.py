"""Run the benchmark suite and rewrite bench/RESULTS.md (or bench/RESULTS-quick.md).

    make bench                       # the million-run database that already exists
    make bench BENCH_ARGS="--load 1000000"   # create and load a fresh database first
    make bench-quick                 # CI: a fresh 5,000-run database, ~1 minute

Environment: RUNSTATS_BENCH_DATABASE_URL (default
postgresql+psycopg://postgres@127.0.0.1/runstats_bench) and RUNSTATS_BENCH_REDIS_URL
(default redis://127.0.0.1:6379/14; the stampede measurement flushes that database).

Exit status: non-zero when the harness breaks; a missed performance goal is
reported in the results, never an error.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from runstats_app.database import make_engine
from tests.support.databases import create_database, drop_database

from .context import FULL, QUICK, Bench, Measurement, Profile, Section
from .databases import code_head, database_exists, load_demo_runs, schema_revision
from .harness.errors import HarnessError
from .harness.load import load_generator
from .harness.machine import load_average
from .harness.processes import ROOT, flask_cli
from .measure import (
    cold_aggregates,
    counts_reads,
    counts_writes,
    deep_pages,
    flood,
    list_pages,
    memory,
    stampede,
    warm_stats,
    writes,
)
from .report import Run, carried_section, describe_load, render

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1/runstats_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
RESULTS = ROOT / "bench" / "RESULTS.md"
QUICK_RESULTS = ROOT / "bench" / "RESULTS-quick.md"
QUICK_RUNS = 5000
STATEMENT_TIMEOUT_MS = 600_000

# Run order: the SQL-only measurement first, the private cluster (a long load) last.
# A new measurement is a module under bench/measure/ and one line here.
ORDER: list[Measurement] = [
    Measurement(2, "cold aggregates", cold_aggregates.measure),
    Measurement(1, "warm stats vs the floor", warm_stats.measure),
    Measurement(8, "list pages vs the floor", list_pages.measure),
    Measurement(3, "deep pages", deep_pages.measure),
    Measurement(4, "writes", writes.measure),
    Measurement(9, "maintained counts: reads", counts_reads.measure),
    Measurement(10, "maintained counts: writes", counts_writes.measure),
    Measurement(7, "stats flood", flood.measure),
    Measurement(6, "memory", memory.measure),
    Measurement(5, "stampede", stampede.measure),
]
NUMBERS = sorted(measurement.number for measurement in ORDER)


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small data ({QUICK_RUNS:,} runs in a fresh temporary database), short "
        f"durations; writes {QUICK_RESULTS.name}",
    )
    parser.add_argument(
        "--load",
        type=int,
        metavar="N",
        help="create the database named by RUNSTATS_BENCH_DATABASE_URL (it must not exist) "
        "and load N demo runs into it first",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated measurement numbers ({NUMBERS[0]}-{NUMBERS[-1]}) to run; "
        "default: all",
    )
    parser.add_argument("--output", type=Path, help="results file to (re)write")
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not run `flask db upgrade` on an existing database behind the code's head",
    )
    parser.add_argument(
        "--stampede-db",
        choices=("private", "bench"),
        default="private",
        help="private: count aggregate queries with pg_stat_statements on a private cluster "
        "loaded for it (default); bench: the bench database, counted by the app's metrics",
    )
    parser.add_argument(
        "--counts-small-db",
        metavar="URL",
        help="a smaller database of the same cardinalities (e.g. 1M runs beside 10M): the "
        "maintained counts' reads are timed on both in the same rounds (flatness)",
    )
    parser.add_argument(
        "--flood-rounds", type=int, metavar="N", help="rounds of the stats flood (7)"
    )
    parser.add_argument(
        "--flood-shipped-only",
        action="store_true",
        help="flood only the shipped deployment: no sync-worker or bounds-off rounds, and "
        "sizing rounds only for --flood-totals",
    )
    parser.add_argument(
        "--flood-totals",
        metavar="N,…",
        help="RUNSTATS_STATS_SCANS_TOTAL values to size beside the default (flood rounds at "
        "the largest N)",
    )
    parser.add_argument(
        "--user", default="alice", help='the user "me" stands for (a creator in the data)'
    )
    parser.add_argument(
        "--keep-work-dir", action="store_true", help="keep server logs and scripts afterwards"
    )
    return parser.parse_args(argv)


# --- databases ----------------------------------------------------------------


# --- what is measured ------------------------------------------------------------


def quick_database(stack: ExitStack, base_url: str, runs: int) -> str:
    """A fresh database beside `base_url`'s with `runs` demo runs, dropped afterwards."""
    url = make_url(base_url).set(database=f"runstats_bench_quick_{uuid.uuid4().hex[:8]}")
    database_url = url.render_as_string(hide_password=False)
    log(f"quick: creating {url.database} with {runs:,} runs")
    create_database(database_url)
    stack.callback(drop_database, database_url)
    load_demo_runs(database_url, runs)
    return database_url


def named_database(url: str, load: int | None) -> str | None:
    """Check the database named by the environment; with `--load N`, create and load it.

    Returns what the load did, for the report.
    """
    name = make_url(url).database
    if not load:
        if not database_exists(url):
            raise HarnessError(
                f"{name} does not exist: load it with `make bench BENCH_ARGS='--load 1000000'`"
            )
        return None
    if database_exists(url):
        raise HarnessError(
            f"--load creates a fresh database, but {name} exists: set "
            "RUNSTATS_BENCH_DATABASE_URL to another one or drop it"
        )
    log(f"creating the database and loading {load:,} runs")
    create_database(url)
    return describe_load(load, load_demo_runs(url, load))


def quick_redis(stack: ExitStack, default: str) -> str:
    """A redis-server of our own when one is installed, else `default`."""
    if not shutil.which("redis-server"):
        return default
    from tests.support.services import RedisServer

    server = RedisServer().start()
    stack.callback(server.stop)
    return server.url


def open_engine(stack: ExitStack, database_url: str, migrate: bool) -> tuple[Engine, int]:
    """The engine measurements use, the schema at the code's head, and how many runs there are."""
    engine = make_engine(database_url, STATEMENT_TIMEOUT_MS)
    stack.callback(engine.dispose)
    revision, head = schema_revision(engine), code_head()
    if revision != head and migrate:
        log(f"schema {revision} is behind the code ({head}): flask db upgrade")
        flask_cli({"RUNSTATS_DATABASE_URL": database_url}, "db", "upgrade", timeout=3600)
    with engine.connect() as connection:
        runs = int(connection.execute(text("SELECT count(*) FROM pipeline_runs")).scalar_one())
    if runs == 0:
        raise HarnessError("the bench database has no runs: use --load N")
    return engine, runs


def flood_profile(profile: Profile, args: argparse.Namespace) -> Profile:
    """The profile, with the flood's rounds and deployments as the arguments ask."""
    if args.flood_rounds:
        profile = replace(profile, flood_rounds=args.flood_rounds)
    if args.flood_shipped_only:
        profile = replace(profile, flood_compare=False, flood_totals=())
    if args.flood_totals:
        totals = tuple(int(n) for n in args.flood_totals.split(",") if n.strip())
        profile = replace(profile, flood_totals=totals)
    return profile


def measure_all(bench: Bench, selected: set[int]) -> dict[int, Section]:
    """The selected measurements in ORDER, their goals logged as they come."""
    sections: dict[int, Section] = {}
    for measurement in ORDER:
        if measurement.number not in selected:
            continue
        log(f"{measurement.number}. {measurement.name}…")
        began = time.perf_counter()
        section = sections[measurement.number] = measurement.measure(bench)
        for goal in section.goals:
            log(f"   {goal.what}: {goal.measured} (goal {goal.target}) {goal.verdict}")
        log(f"   done in {time.perf_counter() - began:.0f} s")
    return sections


# --- main -------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so servers stop and temporary databases are dropped."""
    raise SystemExit(128 + signum)


def _started(args: argparse.Namespace, argv: list[str] | None) -> Run:
    command = "make bench-quick" if args.quick else "make bench"
    invocation = shlex.join(
        ["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]
    )
    return Run(f"{command} → {invocation}", datetime.now(UTC), load_average())


def report(args: argparse.Namespace, run: Run, work_dir: Path, output: Path) -> str:
    """Set up what the arguments ask for, measure, and render the results; tear down after."""
    selected = {int(n) for n in args.only.split(",") if n.strip()} or set(NUMBERS)
    with ExitStack() as stack:
        base_url = os.environ.get("RUNSTATS_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
        redis_url = os.environ.get("RUNSTATS_BENCH_REDIS_URL") or DEFAULT_REDIS_URL
        if args.quick:
            database_url = quick_database(stack, base_url, args.load or QUICK_RUNS)
            redis_url = quick_redis(stack, redis_url)
        else:
            database_url = base_url
            run.loaded = named_database(database_url, args.load)
        engine, runs = open_engine(stack, database_url, migrate=not args.no_migrate)
        profile = flood_profile(QUICK if args.quick else FULL, args)
        bench = Bench(
            profile=profile,
            database_url=database_url,
            redis_url=redis_url,
            work_dir=work_dir,
            load=load_generator(work_dir, install=True),
            engine=engine,
            stack=stack,
            user=args.user,
            stampede_db=args.stampede_db,
            counts_small_db=args.counts_small_db,
            runs_total=runs,
        )
        log(f"{profile.name} run on {runs:,} runs, load generator: {bench.load.name}")
        sections = measure_all(bench, selected)
        return render(bench, sections, run, carried_section(output))


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    run = _started(args, argv)
    work_dir = Path(tempfile.mkdtemp(prefix="runstats-bench-"))
    failed = True
    try:
        output.write_text(report(args, run, work_dir, output))
        log(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
        failed = False
    except Exception:
        traceback.print_exc()
        print(f"bench: the harness broke; logs are in {work_dir}", file=sys.stderr)
        return 1
    finally:
        if not failed and not args.keep_work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif args.keep_work_dir:
            log(f"work directory kept: {work_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
