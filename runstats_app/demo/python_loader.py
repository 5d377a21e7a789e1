"""Demo data generated in Python, for databases that cannot generate it themselves (SQLite)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any, Generic, TypeVar

from sqlalchemy import insert
from sqlalchemy.orm import Session

from ..ids import new_run_id
from ..models import PipelineRun, RunAnnotation, StatusChange
from ..statuses import RunStatus, is_retry, is_terminal
from .catalog import Catalog, Member, Pipeline, build_catalog
from .shape import (
    ACTIVE_PATHS,
    ACTIVE_SHARE_OF_RECENT,
    ENVIRONMENTS,
    FINISHED_PATHS,
    GIT_SHA_KEY,
    GIT_SHA_SHARE,
    OUTSIDE_TEAM_SHARE,
    RECENCY,
    RECENT,
    SERVICE_SHARE,
    SPAN,
    SYSTEM_SHARE,
    DemoShape,
    LifecyclePaths,
    git_sha,
    retries_of,
)

BATCH_SIZE = 5000
T = TypeVar("T")


class _Weighted(Generic[T]):
    """Items drawn in proportion to their weights (a bisection on cumulative weights)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative = list(accumulate(weights))

    def draw(self, rng: random.Random) -> T:
        return rng.choices(self.items, cum_weights=self.cumulative)[0]


def _by_weight(items: Sequence[Member] | Sequence[Pipeline]) -> _Weighted[Any]:
    return _Weighted(items, [item.weight for item in items])


@dataclass(frozen=True)
class _Platform:
    """The catalog ready to draw from."""

    pipelines: _Weighted[Pipeline]
    teams: tuple[str, ...]
    people: _Weighted[Member]
    members: tuple[_Weighted[Member], ...]
    service_accounts: _Weighted[Member]
    environments: _Weighted[str]

    @classmethod
    def of(cls, catalog: Catalog) -> _Platform:
        return cls(
            pipelines=_by_weight(catalog.pipelines),
            teams=catalog.teams,
            people=_by_weight(catalog.people),
            members=tuple(_by_weight(catalog.members(t)) for t in range(len(catalog.teams))),
            service_accounts=_by_weight(catalog.service_accounts),
            environments=_Weighted(
                [name for name, _ in ENVIRONMENTS], [weight for _, weight in ENVIRONMENTS]
            ),
        )

    def creator(self, rng: random.Random, team: int) -> str | None:
        draw = rng.random()
        if draw < SYSTEM_SHARE:
            return None
        if draw < SYSTEM_SHARE + SERVICE_SHARE:
            return self.service_accounts.draw(rng).name
        if rng.random() < OUTSIDE_TEAM_SHARE:
            return self.people.draw(rng).name
        return self.members[team].draw(rng).name


def _by_path_weight(paths: LifecyclePaths) -> _Weighted[tuple[RunStatus, ...]]:
    return _Weighted([path for _, path in paths], [weight for weight, _ in paths])


ACTIVE, FINISHED = _by_path_weight(ACTIVE_PATHS), _by_path_weight(FINISHED_PATHS)


def _make_run(
    rng: random.Random, now: datetime, platform: _Platform
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    created_at = now - SPAN * (rng.random() ** RECENCY)
    recent = now - created_at < RECENT
    active = recent and rng.random() < ACTIVE_SHARE_OF_RECENT
    path = (ACTIVE if active else FINISHED).draw(rng)
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
    pipeline = platform.pipelines.draw(rng)
    run = {
        "id": run_id,
        "name": pipeline.name,
        "created_by": platform.creator(rng, pipeline.team),
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
        {"run_id": run_id, "key": "team", "value": platform.teams[pipeline.team]},
        {"run_id": run_id, "key": "env", "value": platform.environments.draw(rng)},
    ]
    if rng.random() < GIT_SHA_SHARE:
        annotations.append({"run_id": run_id, "key": GIT_SHA_KEY, "value": git_sha(run_id)})
    return run, annotations, history


def load_demo_data_in_python(
    session: Session,
    count: int,
    shape: DemoShape,
    seed: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> None:
    """Insert `count` runs in batches, one transaction per batch."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    platform = _Platform.of(build_catalog(shape))
    now = datetime.now(UTC)
    remaining = count
    while remaining:
        size = min(BATCH_SIZE, remaining)
        runs, annotations, history = [], [], []
        for _ in range(size):
            run, run_annotations, run_history = _make_run(rng, now, platform)
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
