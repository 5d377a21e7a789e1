"""Demo data generated in Python, for databases that cannot generate it themselves (SQLite)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..ids import new_run_id
from ..models import PipelineRun, RunAnnotation, StatusChange
from ..statuses import RunStatus, is_retry, is_terminal
from .shape import (
    ACTIVE_PATHS,
    ENVIRONMENTS,
    FINISHED_PATHS,
    PIPELINES,
    SPAN,
    TEAMS,
    USERS,
    LifecyclePaths,
    retries_of,
)

BATCH_SIZE = 5000


def _pick(rng: random.Random, paths: LifecyclePaths) -> tuple[RunStatus, ...]:
    weights = [w for w, _ in paths]
    return rng.choices([p for _, p in paths], weights=weights)[0]


def _make_run(
    rng: random.Random, now: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    created_at = now - SPAN * (rng.random() ** 1.5)
    recent = now - created_at < timedelta(hours=6)
    path = _pick(rng, ACTIVE_PATHS if recent and rng.random() < 0.5 else FINISHED_PATHS)
    run_id = new_run_id(int(created_at.timestamp() * 1000))
    retries = retries_of(path)
    status, at, attempt = RunStatus.QUEUED, created_at, 1
    started_at = ended_at = None
    history: list[dict[str, Any]] = []
    for target in path:
        pace = 60 if target is RunStatus.PENDING else 900
        step = timedelta(seconds=rng.expovariate(1 / pace))
        step = min(step, max(timedelta(0), (now - at) / 2))
        new_at = at + step
        if is_retry(status, target):
            attempt += 1
        if target is RunStatus.RUNNING and started_at is None:
            started_at = new_at
        if is_terminal(target):
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


def load_demo_data_in_python(
    session: Session,
    count: int,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> None:
    """Insert `count` runs in batches, one transaction per batch."""
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
