"""bench/RESULTS.md: the run's description, the goals, the sections, the findings kept in notes.

Prose written by people (what was tried, why a goal is out of reach) lives in
bench/notes/*.md and is included verbatim; everything measured is computed here
or by the measurements.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from .context import Bench, Section
from .databases import code_head, demo_data_command, schema_revision
from .harness.formatting import table
from .harness.machine import load_average, machine
from .harness.processes import ROOT

NOTES = Path(__file__).resolve().parent / "notes"
CARRIED_SECTION = "## Demo data load"
QUICK_MODE = (
    "**Quick mode** (`make bench-quick`): small data and short durations, to keep the "
    "harness working in CI. These numbers say nothing about performance at scale; "
    "`bench/RESULTS.md` has the full run. This file is git-ignored.\n"
)
METHOD = (
    "Written by `bench/run.py` (`make bench`); every measurement runs its two sides in "
    "one session, alternating, and reports medians and their ratio. The machine is "
    "shared: other work may run alongside (see the load average), which is why only "
    "ratios of alternating runs are compared.\n"
)


@dataclass
class Run:
    """How this run was started, for the table at the top of the results."""

    command: str
    started: datetime
    load_before: str
    loaded: str | None = None  # what `--load` did, when it did


def note(name: str) -> str:
    """bench/notes/NAME.md, verbatim: findings written by people, not computed by the run."""
    return (NOTES / f"{name}.md").read_text()


def describe_load(runs: int, seconds: float) -> str:
    return (
        f"`{demo_data_command(runs)}` into "
        f"a fresh, migrated database: {seconds:.1f} s, "
        f"{runs / seconds:,.0f} runs/s."
    )


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


def render(bench: Bench, sections: dict[int, Section], run: Run, carried: str | None) -> str:
    numbered = sorted(sections.items())
    parts = ["# Benchmark results\n"]
    if bench.profile.name == "quick":
        parts.append(QUICK_MODE)
    parts.append(METHOD)
    parts.append(describe_run(bench, run) + "\n")
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
    if run.loaded:
        parts.append("## Data loaded by this run (`--load`)\n")
        parts.append(run.loaded + "\n")
    if carried:
        parts.append(carried)
    return "\n".join(parts)


def describe_run(bench: Bench, run: Run) -> str:
    """The command, the machine, PostgreSQL, the data, Redis and the code measured."""
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
    database = make_url(bench.database_url).render_as_string(hide_password=True)
    rows = [
        ["command", f"`{run.command}`"],
        ["date", f"{run.started:%Y-%m-%d %H:%M} UTC, {_elapsed(run.started)} in all"],
        [
            "machine",
            f"{host['cores']} cores (`nproc`), {host['memory']} memory (`free`), "
            f"{host['cpu']}, Linux {host['kernel']}, Python {host['python']}",
        ],
        [
            "load average (1/5/15 min)",
            f"{run.load_before} at the start, {load_average()} at the end",
        ],
        [
            "PostgreSQL",
            f"{version}; " + ", ".join(f"{name} = {value}" for name, value in settings.items()),
        ],
        [
            "data",
            f"{bench.runs_total:,} runs in `{database}` ({size}); schema revision "
            f"{schema_revision(bench.engine)} (code head {code_head()})",
        ],
        ["Redis", f"{_redis_version(bench.redis_url)}, `{bench.redis_url}`"],
        ["code", _code()],
        ["load generator", bench.load.name],
    ]
    return table(["", ""], rows)


def _elapsed(started: datetime) -> str:
    seconds = (datetime.now(UTC) - started).total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _redis_version(url: str) -> str:
    try:
        return str(redis.Redis.from_url(url).info("server")["redis_version"])
    except redis.RedisError:
        return "?"


def _code() -> str:
    """The commit measured, and whether the app's code had uncommitted changes."""
    code = f"`{_git('rev-parse', '--short', 'HEAD') or '?'}`"
    changed = _git("status", "--porcelain", "--", "runstats_app", "migrations", "wsgi.py")
    if changed:
        count = len(changed.splitlines())
        code += (
            f" plus uncommitted changes to {count} paths under `runstats_app/`, "
            "`migrations/` (`git status`)"
        )
    return code


def _git(*args: str) -> str:
    """A read-only git query; empty when git or the repository is missing."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.rstrip("\n")
