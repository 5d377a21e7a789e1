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
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from runstats_app.database import make_engine
from tests.servers import create_database, drop_database

from .context import FULL, QUICK, Bench, Measurement, Section
from .databases import code_head, database_exists, load_demo_runs, schema_revision
from .harness.errors import HarnessError
from .harness.formatting import table
from .harness.load import load_generator
from .harness.machine import load_average, machine
from .harness.processes import ROOT, flask_cli
from .measure import cold_aggregates, deep_pages, memory, stampede, warm_stats, writes

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1/runstats_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
RESULTS = ROOT / "bench" / "RESULTS.md"
QUICK_RESULTS = ROOT / "bench" / "RESULTS-quick.md"
QUICK_RUNS = 5000
CARRIED_SECTION = "## Demo data load"
STATEMENT_TIMEOUT_MS = 600_000

# Run order: the SQL-only measurement first, the private cluster (a long load) last.
# A new measurement is a module under bench/measure/ and one line here.
ORDER: list[Measurement] = [
    Measurement(2, "cold aggregates", cold_aggregates.measure),
    Measurement(1, "warm stats vs the floor", warm_stats.measure),
    Measurement(3, "deep pages", deep_pages.measure),
    Measurement(4, "writes", writes.measure),
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
        "--user", default="alice", help='the user "me" stands for (a creator in the data)'
    )
    parser.add_argument(
        "--keep-work-dir", action="store_true", help="keep server logs and scripts afterwards"
    )
    return parser.parse_args(argv)


# --- databases ----------------------------------------------------------------


# --- the report -----------------------------------------------------------------


def carried_section(path: Path) -> str | None:
    """The "Demo data load" section of the results file being rewritten, verbatim."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(CARRIED_SECTION)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).rstrip() + "\n"


def _git(*args: str) -> str:
    """A read-only git query; empty when git or the repository is missing."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.rstrip("\n")


def elapsed(started: datetime) -> str:
    seconds = (datetime.now(UTC) - started).total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def describe_run(bench: Bench, command: str, started: datetime, load_before: str) -> str:
    host = machine()
    with bench.engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar()
        settings = {
            name: connection.execute(text(f"SHOW {name}")).scalar()
            for name in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather")
        }
        size = connection.execute(
            text("SELECT pg_size_pretty(pg_database_size(current_database()))")
        ).scalar()
    revision = schema_revision(bench.engine)
    head = code_head()
    try:
        redis_version = redis.Redis.from_url(bench.redis_url).info("server")["redis_version"]
    except redis.RedisError:
        redis_version = "?"
    changed = _git("status", "--porcelain", "--", "runstats_app", "migrations", "wsgi.py")
    code = f"`{_git('rev-parse', '--short', 'HEAD') or '?'}`"
    if changed:
        count = len(changed.splitlines())
        code += (
            f" plus uncommitted changes to {count} paths under `runstats_app/`, "
            "`migrations/` (`git status`)"
        )
    database = make_url(bench.database_url).render_as_string(hide_password=True)
    rows = [
        ["command", f"`{command}`"],
        ["date", f"{started:%Y-%m-%d %H:%M} UTC, {elapsed(started)} in all"],
        [
            "machine",
            f"{host['cores']} cores (`nproc`), {host['memory']} memory (`free`), "
            f"{host['cpu']}, Linux {host['kernel']}, Python {host['python']}",
        ],
        ["load average (1/5/15 min)", f"{load_before} at the start, {load_average()} at the end"],
        [
            "PostgreSQL",
            f"{version}; " + ", ".join(f"{name} = {value}" for name, value in settings.items()),
        ],
        [
            "data",
            f"{bench.runs_total:,} runs in `{database}` ({size}); schema revision "
            f"{revision} (code head {head})",
        ],
        ["Redis", f"{redis_version}, `{bench.redis_url}`"],
        ["code", code],
        ["load generator", bench.load.name],
    ]
    return table(["", ""], rows)


def render(
    bench: Bench,
    sections: dict[int, Section],
    command: str,
    started: datetime,
    load_before: str,
    carried: str | None,
    loaded: str | None,
) -> str:
    quick = bench.profile.name == "quick"
    numbered = sorted(sections.items())
    parts = ["# Benchmark results\n"]
    if quick:
        parts.append(
            "**Quick mode** (`make bench-quick`): small data and short durations, to keep the "
            "harness working in CI. These numbers say nothing about performance at scale; "
            "`bench/RESULTS.md` has the full run. This file is git-ignored.\n"
        )
    parts.append(
        "Written by `bench/run.py` (`make bench`); every measurement runs its two sides in "
        "one session, alternating, and reports medians and their ratio. The machine is "
        "shared: other work may run alongside (see the load average), which is why only "
        "ratios of alternating runs are compared.\n"
    )
    parts.append(describe_run(bench, command, started, load_before) + "\n")
    parts.append("## Goals\n")
    parts.append(
        table(
            ["#", "what", "measured", "goal", "verdict"],
            [
                [number, g.what, g.measured, g.target, g.verdict]
                for number, section in numbered
                for g in section.goals
            ],
        )
        + "\n"
    )
    for number, section in numbered:
        parts.append(f"## {number}. {section.title}\n")
        parts.append(section.body.rstrip() + "\n")
    if loaded:
        parts.append("## Data loaded by this run (`--load`)\n")
        parts.append(loaded + "\n")
    if carried:
        parts.append(carried)
    return "\n".join(parts)


# --- main -------------------------------------------------------------------------


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so servers stop and temporary databases are dropped."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = parse_args(argv)
    profile = QUICK if args.quick else FULL
    selected = {int(n) for n in args.only.split(",") if n.strip()} or set(NUMBERS)
    output = args.output or (QUICK_RESULTS if args.quick else RESULTS)
    command = "make bench-quick" if args.quick else "make bench"
    invocation = shlex.join(
        ["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)]
    )
    command = f"{command} → {invocation}"
    started = datetime.now(UTC)
    load_before = load_average()
    work_dir = Path(tempfile.mkdtemp(prefix="runstats-bench-"))
    failed = True
    try:
        with ExitStack() as stack:
            base_url = os.environ.get("RUNSTATS_BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
            redis_url = os.environ.get("RUNSTATS_BENCH_REDIS_URL") or DEFAULT_REDIS_URL
            loaded = None
            if args.quick:
                url = make_url(base_url).set(
                    database=f"runstats_bench_quick_{uuid.uuid4().hex[:8]}"
                )
                database_url = url.render_as_string(hide_password=False)
                log(f"quick: creating {url.database} with {args.load or QUICK_RUNS:,} runs")
                create_database(database_url)
                stack.callback(drop_database, database_url)
                load_demo_runs(database_url, args.load or QUICK_RUNS)
                if shutil.which("redis-server"):
                    from tests.services import RedisServer

                    server = RedisServer().start()
                    stack.callback(server.stop)
                    redis_url = server.url
            else:
                database_url = base_url
                if args.load:
                    if database_exists(database_url):
                        name = make_url(database_url).database
                        raise HarnessError(
                            f"--load creates a fresh database, but {name} exists: set "
                            "RUNSTATS_BENCH_DATABASE_URL to another one or drop it"
                        )
                    log(f"creating the database and loading {args.load:,} runs")
                    create_database(database_url)
                    seconds = load_demo_runs(database_url, args.load)
                    loaded = (
                        f"`flask --app runstats_app demo-data --runs {args.load} --seed 42` into "
                        f"a fresh, migrated database: {seconds:.1f} s, "
                        f"{args.load / seconds:,.0f} runs/s."
                    )
                elif not database_exists(database_url):
                    raise HarnessError(
                        f"{make_url(database_url).database} does not exist: load it with "
                        "`make bench BENCH_ARGS='--load 1000000'`"
                    )
            engine = make_engine(database_url, STATEMENT_TIMEOUT_MS)
            stack.callback(engine.dispose)
            revision, head = schema_revision(engine), code_head()
            if revision != head and not args.no_migrate:
                log(f"schema {revision} is behind the code ({head}): flask db upgrade")
                flask_cli({"RUNSTATS_DATABASE_URL": database_url}, "db", "upgrade", timeout=3600)
            with engine.connect() as connection:
                runs = int(
                    connection.execute(text("SELECT count(*) FROM pipeline_runs")).scalar_one()
                )
            if runs == 0:
                raise HarnessError("the bench database has no runs: use --load N")
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
                runs_total=runs,
            )
            log(f"{profile.name} run on {runs:,} runs, load generator: {bench.load.name}")
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
            report = render(
                bench, sections, command, started, load_before, carried_section(output), loaded
            )
        output.write_text(report)
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
