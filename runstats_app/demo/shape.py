"""The shape of the demo data: pipelines, users, teams, and the lifecycles runs follow.

Both loaders draw from these (python_loader.py in Python, sql_loader.py inside
PostgreSQL), and take the lifecycle's rules (retries, terminal statuses) from
statuses.py.
"""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from ..statuses import RunStatus, is_retry

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
