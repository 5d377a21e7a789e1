"""demo-data: plausible runs whose fields, history and annotations agree."""

from __future__ import annotations

import re
from itertools import pairwise

from flask import Flask
from sqlalchemy import Connection, func, select

from runstats_app.demo import load_demo_data
from runstats_app.extensions import db
from runstats_app.models import PipelineRun, RunAnnotation, StatusChange
from runstats_app.statuses import STATUS_NAMES, TERMINAL_STATUSES

RUNS = 600


def _load(app: Flask) -> None:
    with app.app_context():
        load_demo_data(db.session(), RUNS, seed=3)


def test_loads_the_requested_number_of_runs_with_known_statuses(
    app: Flask, connection: Connection
) -> None:
    _load(app)
    with app.app_context():
        session = db.session()
        counts = dict(
            session.execute(
                select(PipelineRun.status, func.count()).group_by(PipelineRun.status)
            ).all()
        )
    assert sum(counts.values()) == RUNS
    assert set(counts) <= set(STATUS_NAMES)
    assert counts.get("SUCCEEDED", 0) > RUNS / 2
    assert len(counts) >= 5


def test_every_run_is_consistent_with_its_history(app: Flask, connection: Connection) -> None:
    _load(app)
    with app.app_context():
        session = db.session()
        runs = session.scalars(select(PipelineRun)).all()
        changes: dict[str, list[StatusChange]] = {}
        for change in session.scalars(select(StatusChange).order_by(StatusChange.id)):
            changes.setdefault(change.run_id, []).append(change)
    for run in runs:
        assert re.fullmatch(r"[0-9a-hjkmnp-tv-z]{26}", run.id)
        history = changes.get(run.id, [])
        if history:
            assert history[0].from_status == "QUEUED"
            assert history[-1].to_status == run.status
            assert history[-1].at == run.status_updated_at
            for earlier, later in pairwise(history):
                assert later.from_status == earlier.to_status
                assert later.at >= earlier.at
        else:
            assert run.status == "QUEUED"
            assert run.status_updated_at == run.created_at
        assert 1 <= run.attempt <= run.max_attempts <= 10
        assert (run.ended_at is not None) == (run.status in TERMINAL_STATUSES)
        if run.started_at is not None and run.ended_at is not None:
            assert run.started_at <= run.ended_at
        assert run.created_at <= run.status_updated_at


def test_ids_sort_like_creation_times(app: Flask, connection: Connection) -> None:
    _load(app)
    with app.app_context():
        rows = db.session().execute(select(PipelineRun.id, PipelineRun.created_at)).all()
    by_time = [run_id for run_id, _ in sorted(rows, key=lambda r: r[1])]
    by_id = sorted(run_id for run_id, _ in rows)
    assert [i[:10] for i in by_time] == [i[:10] for i in by_id]


def test_every_run_has_team_and_env_annotations(app: Flask, connection: Connection) -> None:
    _load(app)
    with app.app_context():
        keys = (
            db.session()
            .execute(select(RunAnnotation.key, func.count()).group_by(RunAnnotation.key))
            .all()
        )
    counts = dict(keys)
    assert counts["team"] == RUNS
    assert counts["env"] == RUNS
