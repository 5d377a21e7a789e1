"""Hold the counts against the GROUP BY over the runs, for random filters, in one snapshot.

Both sides read the same REPEATABLE READ snapshot, so writes going on meanwhile
cause no false difference. The filters are drawn from the data, of the kinds
the counts answer: creators ("me"), names and substrings of them, a tracked
annotation's values, statuses, created_at ranges with bounds off the hour, and
conjunctions of these.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ...filters import nodes
from ...filters.nodes import FilterNode
from ...statuses import STATUS_NAMES
from ..history import resolve_range
from ..scan import count_by_bucket, count_by_status
from .choice import history_rollup, history_unit
from .planner import plan
from .reader import count_buckets, count_statuses
from .state import read_state


class CountsNotReady(Exception):
    """The counts are not exact yet (a rebuild has not finished): nothing to verify."""


@dataclass(frozen=True)
class Difference:
    filter: str
    counts: object
    scan: object


@dataclass(frozen=True)
class Sample:
    tree: FilterNode | None
    statuses: tuple[str, ...] | None

    def describe(self) -> str:
        return f"filter={self.tree!r} status={list(self.statuses or [])}"


class _Draws:
    """Values that occur in the data, for filters that match something."""

    def __init__(self, session: Session, rng: random.Random, untracked: frozenset[str]) -> None:
        self.rng = rng
        rows = session.execute(
            text(
                "SELECT created_by, name, created_at FROM pipeline_runs"
                " ORDER BY id DESC LIMIT 2000"
            )
        ).all()
        older = session.execute(
            text("SELECT created_by, name, created_at FROM pipeline_runs ORDER BY id LIMIT 500")
        ).all()
        self.rows: list[tuple[str | None, str, datetime]] = [
            (row[0], row[1], row[2]) for row in [*rows, *older]
        ] or [(None, "x", datetime.now(UTC))]
        self.annotations = [
            (key, value)
            for key, value in session.execute(
                text("SELECT key, value FROM run_annotations ORDER BY run_id DESC LIMIT 2000")
            ).all()
            if key not in untracked
        ]

    def leaf(self) -> FilterNode:
        created_by, name, created_at = self.rng.choice(self.rows)
        kind = self.rng.randrange(7)
        if kind == 0:
            return nodes.ValueEquals(nodes.CREATED_BY, created_by or "nobody")
        if kind == 1:
            start = self.rng.randrange(max(1, len(name) - 2))
            return nodes.ValueContains(nodes.NAME, name[start : start + self.rng.randint(2, 5)])
        if kind == 2:
            return nodes.ValueEquals(nodes.NAME, name)
        if kind == 3 and self.annotations:
            key, value = self.rng.choice(self.annotations)
            choices: list[FilterNode] = [
                nodes.ValueEquals(key, value),
                nodes.KeyExists(key),
                nodes.ValueContains(key, value[: max(1, len(value) // 2)] or "a"),
            ]
            return self.rng.choice(choices)
        if kind == 4:
            return nodes.ValueIn(nodes.STATUS, tuple(self.rng.sample(STATUS_NAMES, 3)))
        shift = timedelta(seconds=self.rng.randint(-200_000, 200_000))
        bound = created_at + shift
        if kind == 5:
            return nodes.TimeRange(nodes.CREATED_AT, bound, None)
        return nodes.TimeRange(
            nodes.CREATED_AT, bound, bound + timedelta(hours=self.rng.randint(1, 900))
        )

    def sample(self) -> Sample:
        count = self.rng.choice([0, 1, 1, 2, 3])
        leaves: list[FilterNode] = []
        annotation_keys: set[str] = set()
        for _ in range(count):
            leaf = self.leaf()
            key = getattr(leaf, "key", "")
            if not key.startswith(nodes.SYSTEM_PREFIX):
                if annotation_keys and key not in annotation_keys:
                    continue
                annotation_keys.add(key)
            leaves.append(leaf)
        statuses = tuple(self.rng.sample(STATUS_NAMES, 2)) if self.rng.random() < 0.2 else None
        return Sample(nodes.And(tuple(leaves)) if leaves else None, statuses)


def verify(engine: Engine, samples: int, seed: int | None = None) -> list[Difference]:
    """Differences between counts and scans for `samples` random filters (and their history)."""
    rng = random.Random(seed)  # noqa: S311 - sampling filters, not secrets
    snapshot = engine.execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    differences: list[Difference] = []
    with Session(bind=snapshot) as session:
        state = read_state(session)
        if not state.ready:
            raise CountsNotReady("the counts are not ready: run `flask stats rebuild` first")
        draws = _Draws(session, rng, state.untracked_keys)
        for _ in range(samples):
            differences += _compare(session, draws.sample(), state.untracked_keys, rng)
        session.rollback()
    return differences


def _compare(
    session: Session, sample: Sample, untracked: frozenset[str], rng: random.Random
) -> Sequence[Difference]:
    query = plan(sample.tree, sample.statuses, untracked)
    if query is None:
        return [Difference(sample.describe(), "not answerable from the counts", None)]
    found: list[Difference] = []
    counted = count_statuses(session, query, sample.tree, sample.statuses)
    scanned = count_by_status(session, sample.tree, sample.statuses)
    if counted != scanned:
        found.append(Difference(sample.describe(), counted, scanned))
    bucket = rng.choice(["hour", "day"])
    span = resolve_range(bucket, None, None, datetime.now(UTC))
    if history_rollup(query, history_unit(span)) is None:
        return found
    counted_buckets = count_buckets(session, query, sample.tree, sample.statuses, span)
    scanned_buckets = count_by_bucket(session, sample.tree, sample.statuses, span)
    if counted_buckets != scanned_buckets:
        found.append(
            Difference(f"{sample.describe()} history={bucket}", counted_buckets, scanned_buckets)
        )
    return found
