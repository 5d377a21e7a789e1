"""The shape of the demo data: the model both loaders follow.

A platform of `teams` teams, `users` creators and `pipelines` pipeline names
(`DemoShape`; catalog.py names them and decides who belongs where):

- Teams own pipelines, people belong to teams. Each team leads with one
  person, the others join teams of varied sizes.
- Popularity is Zipf-skewed with exponent `skew`: the pipeline of rank r
  gets runs in proportion to 1/r^skew, and so does the person of rank r.
  `alice` is rank 1, the most active person, so "me" = alice is the worst
  case of a "my runs" query.
- A run's pipeline is drawn by popularity; its `team` annotation is the team
  that owns the pipeline. Its creator: nobody (a system run) for
  `SYSTEM_SHARE` of runs; a service account (`svc-*`, they run any team's
  pipelines) for `SERVICE_SHARE`; otherwise a person, drawn by activity among
  the owning team's members, or among everyone for `OUTSIDE_TEAM_SHARE` of
  people's runs. Each team owns pipelines carrying the share of runs its
  members' activity calls for, so every person's share of the runs follows
  the Zipf law whichever team they are in.
- Pipeline kinds (train, etl, eval, ...) take `KIND_SHARES` of the runs, so
  "train" is in about 27 % of runs' names whatever the sizes. Names read like
  `<team>-train-<model>-<n>` or `<team>-etl-<source>`.
- `env` is prod, staging or dev by `ENVIRONMENTS`' weights; `git_sha`, on
  `GIT_SHA_SHARE` of runs, is derived from the run id, so it is unique per
  run (a 40-hex-digit hash, like a commit's).
- Runs are created over `SPAN`, more of them recently (the age is
  SPAN * u**RECENCY for a uniform u). Old runs have finished along one of
  `FINISHED_PATHS`; half of the runs of the last six hours are still on one
  of `ACTIVE_PATHS`. Their rules (retries, terminal statuses) come from
  statuses.py.

Both loaders draw from this (python_loader.py in Python, sql_loader.py inside
PostgreSQL); the catalog does not depend on the random seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise

from ..statuses import RunStatus, is_retry

SPAN = timedelta(days=180)
RECENT = timedelta(hours=6)
RECENCY = 1.5
ACTIVE_SHARE_OF_RECENT = 0.5

SYSTEM_SHARE = 0.05
SERVICE_SHARE = 0.15
OUTSIDE_TEAM_SHARE = 0.10
GIT_SHA_SHARE = 1 / 3
GIT_SHA_KEY = "git_sha"
ENVIRONMENTS = (("prod", 60), ("staging", 15), ("dev", 25))
KIND_SHARES = (
    ("train", 27),
    ("etl", 24),
    ("eval", 12),
    ("infer", 10),
    ("backfill", 8),
    ("export", 8),
    ("quality", 7),
    ("deploy", 4),
)
PEOPLE_PER_SERVICE_ACCOUNT = 100
MAX_SERVICE_ACCOUNTS = 5


@dataclass(frozen=True)
class DemoShape:
    """The platform's sizes. The defaults keep `make run`'s data readable.

    `users` counts every creator: one in `PEOPLE_PER_SERVICE_ACCOUNT` of them
    (at least one, at most `MAX_SERVICE_ACCOUNTS`) is a service account.
    """

    users: int = 50
    pipelines: int = 200
    teams: int = 8
    skew: float = 1.05

    def __post_init__(self) -> None:
        if self.teams < 1:
            raise ValueError("teams must be at least 1")
        if self.people < self.teams:
            raise ValueError(
                f"users must be at least teams + service accounts"
                f" ({self.teams} + {self.service_accounts}): every team needs a member"
            )
        if self.pipelines < self.teams:
            raise ValueError("pipelines must be at least teams: every team owns a pipeline")
        if not 0 <= self.skew <= 10:
            raise ValueError("skew must be between 0 (uniform) and 10")

    @property
    def service_accounts(self) -> int:
        return min(MAX_SERVICE_ACCOUNTS, math.ceil(self.users / PEOPLE_PER_SERVICE_ACCOUNT))

    @property
    def people(self) -> int:
        return self.users - self.service_accounts


def zipf_weights(count: int, skew: float) -> list[float]:
    """Weights of ranks 1..count under Zipf's law with exponent `skew`, summing to 1."""
    raw = [rank**-skew for rank in range(1, count + 1)]
    total = sum(raw)
    return [weight / total for weight in raw]


def git_sha(run_id: str) -> str:
    """The demo `git_sha` of a run: 40 hex digits of SHA-256 of its id (sql_loader.py agrees)."""
    return hashlib.sha256(run_id.encode()).hexdigest()[:40]


LifecyclePaths = tuple[tuple[int, tuple[RunStatus, ...]], ...]
S = RunStatus
# (weight, statuses after QUEUED) for runs old enough to have finished.
FINISHED_PATHS: LifecyclePaths = (
    (70, (S.PENDING, S.RUNNING, S.SUCCEEDED)),
    (8, (S.PENDING, S.RUNNING, S.FAILED)),
    (5, (S.PENDING, S.RUNNING, S.PENDING, S.RUNNING, S.SUCCEEDED)),
    (4, (S.PENDING, S.RUNNING, S.CANCELLING, S.CANCELLED)),
    (3, (S.CANCELLED,)),
    (3, (S.SKIPPED,)),
    (2, (S.PENDING, S.RUNNING, S.SYSTEM_ERROR)),
    (2, (S.PENDING, S.SYSTEM_ERROR)),
)
ACTIVE_PATHS: LifecyclePaths = (
    (3, ()),
    (3, (S.PENDING,)),
    (10, (S.PENDING, S.RUNNING)),
    (1, (S.PENDING, S.RUNNING, S.CANCELLING)),
)


def retries_of(path: tuple[RunStatus, ...]) -> int:
    """How many retries a lifecycle path (the statuses after QUEUED) goes through."""
    return sum(1 for a, b in pairwise((RunStatus.QUEUED, *path)) if is_retry(a, b))
