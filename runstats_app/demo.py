"""Realistic demo data: runs with plausible lifecycles spread over six months."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from .ids import new_run_id
from .models import PipelineRun, RunAnnotation, StatusChange
from .statuses import RunStatus

BATCH_SIZE = 5000
SPAN = timedelta(days=180)

PIPELINES = (
    "train-resnet50",
    "train-bert-base",
    "train-llm-7b",
    "eval-nightly",
    "etl-events",
    "etl-billing",
    "feature-backfill",
    "data-quality-checks",
    "export-warehouse",
    "retrain-recommender",
    "batch-inference",
    "tokenize-corpus",
    "deploy-canary",
)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
TEAMS = ("ml-platform", "search", "ads", "data-eng", "research")
ENVIRONMENTS = ("prod", "staging", "dev")

S = RunStatus
# (weight, statuses after QUEUED) for runs old enough to have finished.
FINISHED_PATHS: tuple[tuple[int, tuple[RunStatus, ...]], ...] = (
    (70, (S.PENDING, S.RUNNING, S.SUCCEEDED)),
    (8, (S.PENDING, S.RUNNING, S.FAILED)),
    (5, (S.PENDING, S.RUNNING, S.PENDING, S.RUNNING, S.SUCCEEDED)),
    (4, (S.PENDING, S.RUNNING, S.CANCELLING, S.CANCELLED)),
    (3, (S.CANCELLED,)),
    (3, (S.SKIPPED,)),
    (2, (S.PENDING, S.RUNNING, S.SYSTEM_ERROR)),
    (2, (S.PENDING, S.SYSTEM_ERROR)),
)
ACTIVE_PATHS: tuple[tuple[int, tuple[RunStatus, ...]], ...] = (
    (3, ()),
    (3, (S.PENDING,)),
    (10, (S.PENDING, S.RUNNING)),
    (1, (S.PENDING, S.RUNNING, S.CANCELLING)),
)


def _pick(
    rng: random.Random, paths: tuple[tuple[int, tuple[RunStatus, ...]], ...]
) -> tuple[RunStatus, ...]:
    weights = [w for w, _ in paths]
    return rng.choices([p for _, p in paths], weights=weights)[0]


def _make_run(
    rng: random.Random, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    created_at = now - SPAN * (rng.random() ** 1.5)
    recent = now - created_at < timedelta(hours=6)
    path = _pick(rng, ACTIVE_PATHS if recent and rng.random() < 0.5 else FINISHED_PATHS)
    run_id = new_run_id(int(created_at.timestamp() * 1000))
    retries = sum(1 for a, b in pairwise(path) if b is S.PENDING and a is not S.QUEUED)
    status, at, attempt = S.QUEUED, created_at, 1
    started_at = ended_at = None
    history: list[dict[str, Any]] = []
    for target in path:
        step = timedelta(seconds=rng.expovariate(1 / (900 if target is not S.PENDING else 60)))
        step = min(step, max(timedelta(0), (now - at) / 2))
        new_at = at + step
        if target is S.PENDING and status is not S.QUEUED:
            attempt += 1
        if target is S.RUNNING and started_at is None:
            started_at = new_at
        if target in (S.SUCCEEDED, S.FAILED, S.SYSTEM_ERROR, S.CANCELLED, S.SKIPPED):
            ended_at = new_at
        history.append(
            {
                "run_id": run_id,
                "from_status": status.value,
                "to_status": target.value,
                "at": new_at,
                "seconds_in_previous_status": (new_at - at).total_seconds(),
            }
        )
        status, at = target, new_at
    user = rng.choice(USERS) if rng.random() > 0.05 else None
    run = {
        "id": run_id,
        "name": rng.choice(PIPELINES),
        "created_by": user,
        "created_at": created_at,
        "updated_at": at,
        "status": status.value,
        "status_updated_at": at,
        "started_at": started_at,
        "ended_at": ended_at,
        "attempt": attempt,
        "max_attempts": max(attempt, retries + rng.choice((1, 1, 2, 3))),
    }
    annotations = [
        {"run_id": run_id, "key": "team", "value": rng.choice(TEAMS)},
        {"run_id": run_id, "key": "env", "value": rng.choice(ENVIRONMENTS)},
    ]
    if rng.random() < 0.3:
        annotations.append(
            {"run_id": run_id, "key": "git_sha", "value": f"{rng.getrandbits(40):010x}"}
        )
    return run, annotations, history


def load_demo_data(
    session: Session,
    count: int,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
    stage: Callable[[str], Any] | None = None,
) -> None:
    """Insert `count` runs in batches.

    PostgreSQL generates the rows itself (set-based, see demo_sql.py), and
    into an empty database builds the indexes once at the end; `stage` hears
    of the steps after the rows. Other databases get the same shape of data
    generated in Python, one transaction per batch.
    """
    if session.get_bind().dialect.name == "postgresql":
        from .demo_sql import load_demo_data_in_database

        load_demo_data_in_database(session, count, seed, progress, stage)
        return
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    now = datetime.now(UTC)
    remaining = count
    while remaining:
        size = min(BATCH_SIZE, remaining)
        runs, annotations, history = [], [], []
        for _ in range(size):
            run, run_annotations, run_history = _make_run(rng, now)
            runs.append(run)
            annotations.extend(run_annotations)
            history.extend(run_history)
        session.execute(insert(PipelineRun), runs)
        session.execute(insert(RunAnnotation), annotations)
        if history:
            session.execute(insert(StatusChange), history)
        session.commit()
        remaining -= size
        if progress is not None:
            progress(size)
